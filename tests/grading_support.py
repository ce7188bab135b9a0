"""Builders shared by the grading tests: many proofs in a campaign, many graders."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from annotate import grading
from annotate.models import (
    Campaign,
    CampaignItem,
    Grade,
    Problem,
    Proof,
    Role,
    content_hash,
    order_key_for,
)
from tests.work_race import add_experts
from verification.models import Analysis


def submit_data(**extra) -> dict:
    """The grading form's fields for a valid submit, with `extra` replacing some."""
    return {
        "score": "0.5",
        "comment": "",
        "issues": "[]",
        "active_seconds": "42",
        "submission_key": str(uuid.uuid4()),
        **extra,
    }


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
    """`count` graders of `campaign` without usable passwords."""
    return add_experts(campaign, count, role=Role.GRADER, prefix=prefix)


def add_others_ratings(item: CampaignItem, count: int, *, prefix: str) -> None:
    """`count` other graders' committed grades of `item` (two issues each, made through
    `submit_grade`), and as many imported grades and verifier analyses of its proof: what
    the page or API shows once the viewer may see others' ratings, so that a query per
    grade, issue or analysis shows up in a query count.

    The item's lease is handed to each grader in turn for their submission, then given back
    to whoever held it before.
    """
    before = CampaignItem.objects.values("lease_holder", "lease_expires_at").get(pk=item.pk)
    for grader in add_graders(item.campaign, count, prefix=prefix):
        # Leased directly: the queue would offer this grader another item first.
        CampaignItem.objects.filter(pk=item.pk).update(
            lease_holder=grader, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        grading.submit_grade(
            CampaignItem.objects.select_related("campaign", "proof").get(pk=item.pk),
            grader,
            score="0.5",
            comment=f"{grader.username} finds a gap",
            issues=[
                {"start": 0, "end": 5, "note": "unclear", "severity": "minor"},
                {"note": "overall too terse", "severity": "fatal"},
            ],
            active_seconds=5,
            submission_key=uuid.uuid4(),
        )
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=before["lease_holder"], lease_expires_at=before["lease_expires_at"]
    )
    Grade.objects.bulk_create(
        [
            Grade(
                proof_id=item.proof_id,
                origin=Grade.Origin.IMPORTED,
                external_grader=f"{prefix}jury{i}",
                import_source="tests/grading_support.py",
                score=Decimal("1"),
            )
            for i in range(count)
        ]
    )
    texts = [f"{prefix} analysis {i}: the proof is fine." for i in range(count)]
    Analysis.objects.bulk_create(
        [
            Analysis(
                proof_id=item.proof_id,
                text=t,
                text_hash=hashlib.sha256(t.encode()).hexdigest(),
                model="verifier",
            )
            for t in texts
        ]
    )
