"""Adjudication, the third kind of expert work: an adjudicator reads every grade, analysis and
review of a proof and sets its gold score, 0 / 0.5 / 1, with a reason.

The latest adjudication of a proof decides its gold label (annotate/gold.py) and resolves
its open disagreements (verification/, where they are recorded). An
adjudicator who graded the proof (a grade made in Proofdesk, in any campaign) may not
adjudicate it: the queue never hands them such a proof (`Adjudicating.done_by`), the page
refuses it (`annotate.access.get_adjudication_item`), and so does committing
(`Adjudicating.create`), whatever the path.

Like annotate/grading.py and annotate/review.py, only adjudication's own content lives
here; the queue, leases, drafts, submit, edits, history and blind rules are annotate/work/.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet

from annotate.grading import score_json
from annotate.inputs import MAX_COMMENT_CHARS, InputError, parse_comment, parse_score, parse_text
from annotate.models import (
    Adjudication,
    AdjudicationHistory,
    Campaign,
    CampaignItem,
    Grade,
    Role,
)
from annotate.work.kinds import WorkKind, register

GRADED_IT = "You graded this proof yourself, so you cannot adjudicate it."


def graded_by(expert: User) -> QuerySet[Grade]:
    """Grades made in Proofdesk by `expert` of the proof `OuterRef("proof")` (or filter it)."""
    return Grade.objects.made_in_app().filter(grader=expert)


def refuse_own_grade(item: CampaignItem, expert: User) -> None:
    """PermissionDenied when `expert` graded the item's proof, in any campaign."""
    if graded_by(expert).filter(proof_id=item.proof_id).exists():
        raise PermissionDenied(GRADED_IT)


def _resolve_disagreements(proof_id: int) -> None:
    """The proof's open disagreements are resolved by its adjudication (where verification
    records disagreements); in the adjudication's transaction."""
    try:
        disagreement = apps.get_model("verification", "Disagreement")
    except LookupError:
        return
    disagreement._default_manager.filter(proof_id=proof_id).resolve("adjudicated")


@dataclass(frozen=True)
class AdjudicationContent:
    score: Decimal | None
    reason: str
    comment: str


class Adjudicating(WorkKind[Adjudication, AdjudicationContent]):
    campaign_kind = Campaign.Kind.ADJUDICATE
    model = Adjudication
    expert_field = "adjudicator"
    expert_role = Role.ADJUDICATOR
    noun = "adjudication"
    already_done = "You have already adjudicated this proof; edit that adjudication."
    json_history = (AdjudicationHistory, "adjudication")

    def parse(self, item: CampaignItem, raw: dict[str, Any], *, draft: bool) -> AdjudicationContent:
        score = parse_score(raw.get("score"), required=not draft)
        reason = parse_text(raw.get("reason"), "reason", "The reason", MAX_COMMENT_CHARS)
        if not draft and not reason.strip():
            raise InputError("reason", "Say why the proof gets this gold score.")
        return AdjudicationContent(score, reason, parse_comment(raw.get("comment")))

    def to_json(self, content: AdjudicationContent) -> dict[str, Any]:
        return {
            "score": score_json(content.score),
            "reason": content.reason,
            "comment": content.comment,
        }

    def snapshot(self, record: Adjudication) -> dict[str, Any]:
        return {
            "score": score_json(record.score),
            "reason": record.reason,
            "comment": record.comment,
        }

    def create(
        self, item: CampaignItem, expert: User, content: AdjudicationContent, **work: Any
    ) -> Adjudication:
        """`work`: the submission key and active seconds of `CommittedWork`."""
        # Checked here too, under the item's lock: the page and the queue are not the only
        # ways to commit work.
        refuse_own_grade(item, expert)
        _resolve_disagreements(item.proof_id)
        return Adjudication.objects.create(
            campaign_id=item.campaign_id,
            item=item,
            proof_id=item.proof_id,
            adjudicator=expert,
            score=content.score,
            reason=content.reason,
            comment=content.comment,
            **work,
        )

    def update(self, record: Adjudication, content: AdjudicationContent) -> dict[str, Any]:
        return {"score": content.score, "reason": content.reason, "comment": content.comment}

    def done_by(self, campaign: Campaign, expert: User) -> QuerySet[CampaignItem]:
        """The item `OuterRef("pk")` when the expert adjudicated it or graded its proof:
        either way the queue never hands it to them."""
        adjudicated = Adjudication.objects.filter(item=OuterRef("pk"), adjudicator=expert)
        graded = graded_by(expert).filter(proof=OuterRef("proof"))
        return CampaignItem.objects.filter(pk=OuterRef("pk")).filter(
            Exists(adjudicated) | Exists(graded)
        )

    def own_records(self, item: CampaignItem, expert: User) -> QuerySet[Adjudication]:
        return Adjudication.objects.filter(item_id=item.pk, adjudicator=expert)

    def belongs_to(self, record: Adjudication, item: CampaignItem) -> bool:
        return record.item_id == item.pk


ADJUDICATING = register(Adjudicating())


def form(score: Any, reason: Any, comment: Any = "") -> dict[str, Any]:
    """The adjudication form as `Adjudicating.parse` reads it, for `work.commit.submit`,
    `work.commit.edit` and `work.drafts.save_draft` (the entry points of every kind)."""
    return {"score": score, "reason": reason, "comment": comment}


def item_of(adjudication: Adjudication) -> CampaignItem:
    """The item an adjudication was made on, as `work.commit.edit` takes it."""
    return CampaignItem.objects.select_related("campaign", "proof").get(pk=adjudication.item_id)


def own_adjudication(item: CampaignItem, adjudicator: User) -> Adjudication | None:
    return ADJUDICATING.own_records(item, adjudicator).first()
