"""Builders shared by the review tests: proofs, analyses of them with claims, reviewers."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

from annotate.anchoring import AnchorMethod
from annotate.models import Campaign, CampaignItem, Problem, Proof, Role
from tests.work_race import add_experts
from verification.models import Analysis, Claim


def add_proofs(count: int, *, problem: Problem | None = None, category: str = "") -> list[Proof]:
    """`count` new proofs of one new problem (unless given)."""
    if problem is None:
        problem = Problem.objects.create(
            external_id=f"PB-Review-{uuid.uuid4().hex[:8]}",
            statement="Show that $1+1=2$.",
            category=category,
        )
    texts = [f"Proof {i}: since $1+1=2$, we are done. {uuid.uuid4().hex}" for i in range(count)]
    return Proof.objects.bulk_create(
        [Proof(problem=problem, text=t, content_hash=hashlib.sha256(t.encode()).hexdigest())
         for t in texts]
    )  # fmt: skip


def add_analyses(
    proofs: list[Proof],
    *,
    model: str = "verifier-a",
    score: str | None = "1",
    claims: int = 0,
) -> list[Analysis]:
    """One analysis per proof by `model`, with `score` (None: parse status "no score")
    and `claims` unanchored claimed issues each."""
    rows = []
    for proof in proofs:
        text = f"{model} on proof {proof.pk}: score {score}. {uuid.uuid4().hex}"
        rows.append(
            Analysis(
                proof=proof,
                text=text,
                text_hash=hashlib.sha256(text.encode()).hexdigest(),
                model=model,
                score=None if score is None else Decimal(score),
                parse_status="ok" if score is not None else "no_score",
            )
        )
    analyses = Analysis.objects.bulk_create(rows)
    Claim.objects.bulk_create(
        [
            Claim(
                analysis=a,
                order=n,
                text=f"Step {n} is not justified.",
                anchor_method=AnchorMethod.UNANCHORED,
            )
            for a in analyses
            for n in range(1, claims + 1)
        ]
    )
    return analyses


def add_reviewers(campaign: Campaign, count: int, *, prefix: str = "reviewer") -> list:
    """`count` reviewers of `campaign` without usable passwords."""
    return add_experts(campaign, count, role=Role.REVIEWER, prefix=prefix)


def all_real(item: CampaignItem) -> list[dict]:
    return [
        {"claim": pk, "verdict": "real", "note": ""}
        for pk in item.analysis.claims.order_by("order").values_list("pk", flat=True)
    ]
