"""Builders shared by the grading tests: many proofs in a campaign, many graders."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model

from annotate.models import (
    Campaign,
    CampaignItem,
    Membership,
    Problem,
    Proof,
    Role,
    content_hash,
    order_key_for,
)


def add_items(
    campaign: Campaign, count: int, *, problem: Problem | None = None
) -> list[CampaignItem]:
    """`count` new proofs (of one new problem unless given) as items of `campaign`."""
    if problem is None:
        problem = Problem.objects.create(
            external_id=f"PB-Load-{uuid.uuid4().hex[:8]}", statement="Show that $1+1=2$."
        )
    texts = [
        f"Proof number {i}: since $1+1=2$, we are done. {uuid.uuid4().hex}" for i in range(count)
    ]
    proofs = Proof.objects.bulk_create(
        [Proof(problem=problem, text=t, content_hash=content_hash(t)) for t in texts]
    )
    return CampaignItem.objects.bulk_create(
        [
            CampaignItem(campaign=campaign, proof=p, order_key=order_key_for(campaign.seed, p.pk))
            for p in proofs
        ]
    )


def add_graders(campaign: Campaign, count: int, *, prefix: str = "grader") -> list:
    """`count` graders without usable passwords (hashing 32 passwords would cost seconds)."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i:03d}") for i in range(count)]
    )
    Membership.objects.bulk_create(
        [Membership(campaign=campaign, user=u, role=Role.GRADER) for u in users]
    )
    return users
