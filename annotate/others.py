"""What a grader may see of others once the blind rules allow it (`annotate.work.visibility`):
other experts' grades, imported grades and the model's scores of a proof, with the
disagreement badge (from the open disagreement records).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce

from annotate.issues import issue_snapshot
from annotate.models import CampaignItem, Grade, Proof


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def others_for(item: CampaignItem, user: User) -> dict[str, Any]:
    """Other experts' grades, imported grades and model scores of the item.

    Only for callers that checked `can_see_others`. `disagreement` is true when the proof
    (or the item's analysis) has an open disagreement on record
    (`verification.disagreements`: experts among themselves, experts against a verifier,
    a review against a model's meta-assessment).
    """
    from verification.disagreements import open_about, release_mean
    from verification.models import Analysis, Claim

    proof = item.proof
    grades = list(
        Grade.objects.made_in_app()
        .filter(campaign_id=item.campaign_id, proof_id=item.proof_id)
        .select_related("grader")
        .prefetch_related("issues")
        .order_by("created_at", "id")
    )
    imported = list(Grade.objects.imported().filter(proof_id=item.proof_id).order_by("id"))
    mean = release_mean(proof.metadata)
    # The number of analyses and the badge in one query.
    analyses = (
        Analysis.objects.filter(proof=OuterRef("pk"))
        .order_by()
        .values("proof")
        .annotate(n=Count("pk"))
        .values("n")
    )
    # And whether any claims an issue (annotate/suggestions.py shows them then).
    claims = Claim.objects.filter(analysis__proof=OuterRef("pk"))
    analysis_count, any_claims, disagreement = (
        Proof.objects.filter(pk=item.proof_id)
        .annotate(
            n=Coalesce(Subquery(analyses), 0),
            any_claims=Exists(claims),
            disagreement=Exists(open_about(OuterRef("pk"), item.analysis_id)),
        )
        .values_list("n", "any_claims", "disagreement")
        .get()
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
            "analyses": analysis_count,
            "claims": any_claims,
            "self_score": _num(proof.self_score),
            "self_evaluation": proof.self_evaluation,
        },
        "disagreement": disagreement,
    }
