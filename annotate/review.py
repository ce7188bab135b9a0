"""Review (meta-verification), the second kind of expert work: a reviewer judges one
verifier analysis of a proof, claim by claim (real / not real / unsure, with a note), and
rates the analysis 0 / 0.5 / 1.

The rubric (docs/work.md): 0 if every claimed defect is unreasonable; 0.5 if some are real
and some not, or all are real but the analysis misstates or mis-scores; 1 otherwise;
praise in the analysis is out of scope. `suggest_score` applies what of it follows from
the verdicts; the reviewer confirms the suggestion or overrides it with a reason.

Like annotate/grading.py, only review's own content lives here; the queue, leases,
drafts, submit, edits, history and blind rules are annotate/work/.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import OuterRef, QuerySet

from annotate.grading import score_json
from annotate.inputs import (
    MAX_COMMENT_CHARS,
    MAX_NOTE_CHARS,
    InputError,
    parse_comment,
    parse_score,
    parse_text,
)
from annotate.models import (
    Campaign,
    CampaignItem,
    ClaimVerdict,
    Draft,
    Review,
    ReviewHistory,
    Role,
    Verdict,
)
from annotate.work import commit, drafts
from annotate.work.kinds import WorkKind, register

ZERO, HALF, ONE = Decimal("0"), Decimal("0.5"), Decimal("1")


def suggest_score(verdicts: Iterable[str], analysis_score: Decimal | None) -> Decimal | None:
    """The quality score the rubric implies, or None when the verdicts do not decide it
    (a claim unsure or not yet judged: the reviewer chooses, no reason needed).

    - no claims: 1 if the analysis gives the proof full marks (nothing to check), 0.5 if
      it gives less (a score below 1 that no claimed issue justifies is a mis-score), and
      no suggestion when it gives no score at all (the Open Proof Corpus judge never
      does: whether its silence is right is the reviewer's call);
    - every claim not real: 0;
    - some real and some not: 0.5;
    - all real: 0.5 if the analysis still gives full marks (mis-scored), else 1 (whether it
      misstates them is the reviewer's call: an override).
    """
    verdicts = list(verdicts)
    if any(v not in (Verdict.REAL, Verdict.NOT_REAL) for v in verdicts):
        return None
    if not verdicts:
        if analysis_score is None:
            return None
        return ONE if analysis_score == ONE else HALF
    real = sum(v == Verdict.REAL for v in verdicts)
    if real == 0:
        return ZERO
    if real < len(verdicts):
        return HALF
    return HALF if analysis_score == ONE else ONE


@dataclass(frozen=True)
class ClaimJudgement:
    claim_id: int
    verdict: str  # "" while a draft has not judged the claim yet
    note: str


@dataclass(frozen=True)
class ReviewContent:
    verdicts: list[ClaimJudgement]  # in claim order, one per claim of the analysis
    score: Decimal | None
    suggested_score: Decimal | None
    override_reason: str
    comment: str


def _verdict_entries(raw: Any) -> list[Any]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InputError("verdicts", "The verdicts are not valid JSON.") from None
    if not isinstance(raw, list):
        raise InputError("verdicts", "Verdicts must be a list.")
    return raw


def parse_verdicts(raw: Any, claim_ids: list[int], *, complete: bool) -> list[ClaimJudgement]:
    """`[{"claim": id, "verdict": "real" | "not_real" | "unsure", "note": ...}]`, one per
    claim of the analysis at most; with `complete`, every claim needs a verdict."""
    known = set(claim_ids)
    given: dict[int, ClaimJudgement] = {}
    for i, entry in enumerate(_verdict_entries(raw)):
        where = f"verdicts[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"claim", "verdict", "note"}:
            raise InputError(where, "Each verdict is an object with claim, verdict and note.")
        claim = entry.get("claim")
        if isinstance(claim, bool) or not isinstance(claim, int) or claim not in known:
            raise InputError(f"{where}.claim", "This claim is not part of the analysis.")
        if claim in given:
            raise InputError(f"{where}.claim", "This claim has two verdicts.")
        verdict = entry.get("verdict") or ""
        if verdict not in Verdict.values and not (verdict == "" and not complete):
            raise InputError(f"{where}.verdict", "A verdict is real, not_real or unsure.")
        note = parse_text(entry.get("note"), f"{where}.note", "The note", MAX_NOTE_CHARS)
        given[claim] = ClaimJudgement(claim, verdict, note)
    if complete:
        judged = {cid for cid, judgement in given.items() if judgement.verdict}
        missing = [str(n) for n, cid in enumerate(claim_ids, 1) if cid not in judged]
        if missing:
            raise InputError(
                "verdicts", f"Give a verdict on every claim (missing: {', '.join(missing)})."
            )
    return [given[cid] for cid in claim_ids if cid in given]


class Reviewing(WorkKind[Review, ReviewContent]):
    campaign_kind = Campaign.Kind.REVIEW_ANALYSES
    model = Review
    expert_field = "reviewer"
    expert_role = Role.REVIEWER
    noun = "review"
    already_done = "You have already reviewed this analysis; edit that review."
    json_history = (ReviewHistory, "review")

    def parse(self, item: CampaignItem, raw: dict[str, Any], *, draft: bool) -> ReviewContent:
        analysis = item.analysis
        if analysis is None:
            raise InputError("item", "This item has no analysis to review.")
        claim_ids = list(analysis.claims.order_by("order").values_list("pk", flat=True))
        verdicts = parse_verdicts(raw.get("verdicts"), claim_ids, complete=not draft)
        score = parse_score(raw.get("score"), required=not draft)
        reason = parse_text(
            raw.get("override_reason"), "override_reason", "The reason", MAX_COMMENT_CHARS
        )
        suggested = None
        if len(verdicts) == len(claim_ids):
            suggested = suggest_score((v.verdict for v in verdicts), analysis.score)
        if not draft and suggested is not None and score != suggested and not reason.strip():
            raise InputError(
                "override_reason",
                f"The rubric suggests {score_json(suggested)} from your verdicts; say why you "
                f"give {score_json(score)}.",
            )
        if score == suggested:
            reason = ""  # a confirmed suggestion needs no reason; a stale one is dropped
        return ReviewContent(verdicts, score, suggested, reason, parse_comment(raw.get("comment")))

    def to_json(self, content: ReviewContent) -> dict[str, Any]:
        return {
            "verdicts": [
                {"claim": v.claim_id, "verdict": v.verdict, "note": v.note}
                for v in content.verdicts
            ],
            "score": score_json(content.score),
            "suggested_score": score_json(content.suggested_score),
            "override_reason": content.override_reason,
            "comment": content.comment,
        }

    def snapshot(self, record: Review) -> dict[str, Any]:
        return {
            "verdicts": [
                {"claim": v.claim_id, "verdict": v.verdict, "note": v.note}
                for v in record.verdicts.order_by("claim__order")
            ],
            "score": score_json(record.score),
            "suggested_score": score_json(record.suggested_score),
            "override_reason": record.override_reason,
            "comment": record.comment,
        }

    def create(
        self,
        item: CampaignItem,
        expert: User,
        content: ReviewContent,
        *,
        submission_key: uuid.UUID,
        active_seconds: int,
    ) -> Review:
        review = Review.objects.create(
            campaign_id=item.campaign_id,
            item=item,
            analysis_id=cast(int, item.analysis_id),  # `parse` refused an item without one
            reviewer=expert,
            score=content.score,
            suggested_score=content.suggested_score,
            override_reason=content.override_reason,
            comment=content.comment,
            submission_key=submission_key,
            active_seconds=active_seconds,
        )
        self._write_verdicts(review, content)
        return review

    def _write_verdicts(self, review: Review, content: ReviewContent) -> None:
        ClaimVerdict.objects.bulk_create(
            ClaimVerdict(review=review, claim_id=v.claim_id, verdict=v.verdict, note=v.note)
            for v in content.verdicts
        )

    def update(self, record: Review, content: ReviewContent) -> dict[str, Any]:
        ClaimVerdict.objects.filter(review=record).delete()
        self._write_verdicts(record, content)
        return {
            "score": content.score,
            "suggested_score": content.suggested_score,
            "override_reason": content.override_reason,
            "comment": content.comment,
        }

    def done_by(self, campaign: Campaign, expert: User) -> QuerySet[Review]:
        return Review.objects.filter(campaign=campaign, reviewer=expert, item=OuterRef("pk"))

    def own_records(self, item: CampaignItem, expert: User) -> QuerySet[Review]:
        return Review.objects.filter(item_id=item.pk, reviewer=expert)

    def belongs_to(self, record: Review, item: CampaignItem) -> bool:
        return record.item_id == item.pk


REVIEWING = register(Reviewing())


def _form(verdicts: Any, score: Any, override_reason: Any, comment: Any) -> dict[str, Any]:
    """The review form as `Reviewing.parse` reads it."""
    return {
        "verdicts": verdicts,
        "score": score,
        "override_reason": override_reason,
        "comment": comment,
    }


def submit_review(
    item: CampaignItem,
    reviewer: User,
    *,
    verdicts: Any,
    score: Any,
    override_reason: Any = "",
    comment: Any = "",
    active_seconds: Any = 0,
    submission_key: Any,
) -> tuple[Review, bool]:
    """Commit a review: (the review, whether this call created it); see `work.commit`."""
    content = _form(verdicts, score, override_reason, comment)
    return commit.submit(
        item, reviewer, content, active_seconds=active_seconds, submission_key=submission_key
    )


def edit_review(
    review: Review,
    editor: User,
    *,
    expected_version: Any,
    verdicts: Any,
    score: Any,
    override_reason: Any = "",
    comment: Any = "",
) -> Review:
    content = _form(verdicts, score, override_reason, comment)
    item = CampaignItem.objects.select_related("campaign", "proof", "analysis").get(
        pk=review.item_id
    )
    return commit.edit(
        REVIEWING, review, editor, content, expected_version=expected_version, item=item
    )


def save_review_draft(
    item: CampaignItem,
    reviewer: User,
    *,
    verdicts: Any = None,
    score: Any = None,
    override_reason: Any = "",
    comment: Any = "",
    active_seconds: Any = 0,
    revision: Any = None,
    base_revision: Any = None,
    tab: Any = "",
) -> Draft:
    content = _form(verdicts, score, override_reason, comment)
    return drafts.save_draft(
        item,
        reviewer,
        content,
        active_seconds=active_seconds,
        revision=revision,
        base_revision=base_revision,
        tab=tab,
    )


def own_review(item: CampaignItem, reviewer: User) -> Review | None:
    return REVIEWING.own_records(item, reviewer).prefetch_related("verdicts").first()
