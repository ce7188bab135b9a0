"""What a grader may see of others once the blind rules allow it (`annotate.work.visibility`):
other experts' grades, imported grades and the model's scores of a proof, with the
disagreement badge.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import User

from annotate.issues import issue_snapshot
from annotate.models import CampaignItem, Grade


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def others_for(item: CampaignItem, user: User) -> dict[str, Any]:
    """Other experts' grades, imported grades and model scores of the item.

    Only for callers that checked `can_see_others`. `disagreement` is true when two expert
    grades (this campaign's or imported) differ, or when the model's mean automatic rating
    is at least 0.5 away from an expert grade of this campaign.
    """
    from verification.models import Analysis

    proof = item.proof
    grades = list(
        Grade.objects.made_in_app()
        .filter(campaign_id=item.campaign_id, proof_id=item.proof_id)
        .select_related("grader")
        .prefetch_related("issues")
        .order_by("created_at", "id")
    )
    imported = list(Grade.objects.imported().filter(proof_id=item.proof_id).order_by("id"))
    mean = proof.metadata.get("average_automatic_rating") if proof.metadata else None
    if isinstance(mean, bool) or not isinstance(mean, int | float):
        mean = None
    expert_scores = {g.score for g in grades} | {g.score for g in imported}
    disagreement = len(expert_scores) > 1 or (
        mean is not None and any(abs(float(g.score) - mean) >= 0.5 for g in grades)
    )
    return {
        "grades": [
            {
                "id": g.pk,
                # Grades made in the app always have a grader (a check constraint).
                "grader": cast(User, g.grader).get_username(),
                "mine": g.grader_id == user.pk,
                "score": _num(g.score),
                "comment": g.comment,
                "issues": issue_snapshot(list(g.issues.all())),
                "created_at": g.created_at.isoformat(),
            }
            for g in grades
        ],
        "imported_grades": [
            {
                "grader": g.external_grader,
                "source": g.import_source,
                "score": _num(g.score),
                "raw_score": _num(g.raw_score),
                "raw_scale_max": _num(g.raw_scale_max),
                "comment": g.comment,
            }
            for g in imported
        ],
        "model": {
            "average_automatic_rating": mean,
            "analyses": Analysis.objects.filter(proof_id=item.proof_id).count(),
            "self_score": _num(proof.self_score),
            "self_evaluation": proof.self_evaluation,
        },
        "disagreement": disagreement,
    }
