"""Grading, the first kind of expert work: a 0 / 0.5 / 1 score of a proof, a comment and
issues anchored in the proof.

This module is only what grading has of its own (docs/work.md): how a grade's form is
parsed and stored, its history row, and the typed entry points that views, the API and
tests call. The queue, leases, drafts, idempotent submit, 409 on a stale edit and the
blind rules are the shared machinery of annotate/work/.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import OuterRef, QuerySet

from annotate import suggestions
from annotate.inputs import parse_comment, parse_score
from annotate.issues import IssueInput, issue_rows, issue_snapshot, parse_issues
from annotate.models import (
    Campaign,
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    GradeIssue,
    Role,
)
from annotate.work import commit, drafts
from annotate.work.kinds import WorkKind, register


def score_json(score: Decimal | None) -> str | None:
    """A score as JSON text: "0", "0.5" or "1" (a stored 1.0 and a typed 1 are equal)."""
    return None if score is None else str(score.normalize())


@dataclass(frozen=True)
class GradeContent:
    score: Decimal | None
    comment: str
    issues: list[IssueInput]
    # Accepted or dismissed verifier claims (annotate/suggestions.py); `checked` is False
    # while a blind campaign's form could not be checked against the proof's claims yet.
    decisions: list[suggestions.DecisionInput] = field(default_factory=list)
    checked: bool = True


class Grading(WorkKind[Grade, GradeContent]):
    campaign_kind = Campaign.Kind.GRADE_PROOFS
    model = Grade
    expert_field = "grader"
    expert_role = Role.GRADER
    noun = "grade"
    already_done = "You have already graded this proof; edit that grade."

    def parse(self, item: CampaignItem, raw: dict[str, Any], *, draft: bool) -> GradeContent:
        issues = parse_issues(raw.get("issues"), item.proof.text)
        decisions = suggestions.parse_decisions(raw.get("suggestions"))
        checked = True
        if item.campaign.blind:
            # A draft is work before commit: blind. A submission may be an edit of a
            # committed grade: `create` refuses, `update` checks (suggestions.py).
            if draft:
                suggestions.refuse_if_blind(item, decisions, issues)
            checked = not suggestions.involved(decisions, issues)
        else:
            issues = suggestions.check(item, decisions, issues)
        return GradeContent(
            score=parse_score(raw.get("score"), required=not draft),
            comment=parse_comment(raw.get("comment")),
            issues=issues,
            decisions=decisions,
            checked=checked,
        )

    def to_json(self, content: GradeContent) -> dict[str, Any]:
        return {
            "score": score_json(content.score),
            "comment": content.comment,
            "issues": issue_snapshot(content.issues),
            "suggestions": suggestions.decisions_json(content.decisions),
        }

    def snapshot(self, record: Grade) -> dict[str, Any]:
        return {
            "score": score_json(record.score),
            "comment": record.comment,
            "issues": issue_snapshot(list(record.issues.all())),
            "suggestions": suggestions.decisions_json(suggestions.stored_decisions(record)),
        }

    def create(
        self,
        item: CampaignItem,
        expert: User,
        content: GradeContent,
        *,
        submission_key: uuid.UUID,
        active_seconds: int,
    ) -> Grade:
        if not content.checked:
            suggestions.refuse_if_blind(item, content.decisions, content.issues)
        grade = Grade.objects.create(
            proof_id=item.proof_id,
            campaign_id=item.campaign_id,
            grader=expert,
            origin=Grade.Origin.APP,
            score=content.score,
            comment=content.comment,
            active_seconds=active_seconds,
            submission_key=submission_key,
        )
        GradeIssue.objects.bulk_create(issue_rows(grade, content.issues))
        if content.decisions:
            suggestions.write_decisions(grade, content.decisions)
        return grade

    def update(self, record: Grade, content: GradeContent) -> dict[str, Any]:
        if not content.checked:
            # An edit of a committed grade in a blind campaign: the grader sees the
            # analyses now, so the decisions are checked like any others.
            item = CampaignItem(proof_id=record.proof_id)  # `check` reads the proof only
            content = replace(
                content, issues=suggestions.check(item, content.decisions, content.issues)
            )
        GradeIssue.objects.filter(grade=record).delete()
        GradeIssue.objects.bulk_create(issue_rows(record, content.issues))
        suggestions.write_decisions(record, content.decisions)
        return {"score": content.score, "comment": content.comment}

    def write_history(
        self,
        record: Grade,
        version: int,
        editor: User,
        old: dict[str, Any] | None,
        new: dict[str, Any],
    ) -> None:
        GradeHistory.objects.create(
            grade=record,
            version=version,
            changed_by=editor,
            old_score=None if old is None else Decimal(old["score"]),
            new_score=Decimal(new["score"]),
            old_comment="" if old is None else old["comment"],
            new_comment=new["comment"],
            old_issues=[] if old is None else old["issues"],
            new_issues=new["issues"],
        )

    def done_by(self, campaign: Campaign, expert: User) -> QuerySet[Grade]:
        # Grading items are one per proof in a campaign, so "graded this proof here" is
        # "worked on this item"; the grades table has an index on (campaign, proof, grader).
        return Grade.objects.filter(
            campaign=campaign, grader=expert, origin=Grade.Origin.APP, proof=OuterRef("proof")
        )

    def own_records(self, item: CampaignItem, expert: User) -> QuerySet[Grade]:
        """The grader's committed grade of the item (at most one, by a constraint)."""
        return Grade.objects.made_in_app().filter(
            campaign_id=item.campaign_id, proof_id=item.proof_id, grader=expert
        )

    def belongs_to(self, record: Grade, item: CampaignItem) -> bool:
        return record.proof_id == item.proof_id and record.campaign_id == item.campaign_id


GRADING = register(Grading())


# -- the entry points of views, API and tests -----------------------------------------------


def _form(score: Any, comment: Any, issues: Any, decisions: Any = None) -> dict[str, Any]:
    """The grading form as `Grading.parse` reads it (`decisions`: annotate/suggestions.py)."""
    return {"score": score, "comment": comment, "issues": issues, "suggestions": decisions}


def submit_grade(
    item: CampaignItem,
    grader: User,
    *,
    score: Any,
    comment: Any,
    issues: Any,
    active_seconds: Any,
    submission_key: Any,
    suggestions: Any = None,
) -> tuple[Grade, bool]:
    """Commit a grade: (the grade, whether this call created it); see `work.commit.submit`."""
    return commit.submit(
        item,
        grader,
        _form(score, comment, issues, suggestions),
        active_seconds=active_seconds,
        submission_key=submission_key,
    )


def edit_grade(
    grade: Grade,
    editor: User,
    *,
    expected_version: Any,
    score: Any,
    comment: Any,
    issues: Any,
    suggestions: Any = None,
) -> Grade:
    """Change a committed grade if it is still at the version the editor saw (else
    `StaleEdit`); only its grader may. See `work.commit.edit`."""
    item = CampaignItem.objects.select_related("campaign", "proof").get(
        # A grade made in the app always has a campaign (a check constraint).
        campaign_id=cast(int, grade.campaign_id),
        proof_id=grade.proof_id,
        analysis__isnull=True,
    )
    return commit.edit(
        GRADING,
        grade,
        editor,
        _form(score, comment, issues, suggestions),
        expected_version=expected_version,
        item=item,
    )


def save_draft(
    item: CampaignItem,
    grader: User,
    *,
    score: Any,
    comment: Any,
    issues: Any,
    active_seconds: Any,
    revision: Any = None,
    base_revision: Any = None,
    tab: Any = "",
    suggestions: Any = None,
) -> Draft:
    """Autosave a grade in progress; see `work.drafts.save_draft`."""
    return drafts.save_draft(
        item,
        grader,
        _form(score, comment, issues, suggestions),
        active_seconds=active_seconds,
        revision=revision,
        base_revision=base_revision,
        tab=tab,
    )


def draft_values(draft: Draft) -> tuple[Decimal | None, str, list[dict[str, Any]]]:
    """A grade draft's (score, comment, issues), as the form shows them."""
    content = draft.content or {}
    score = content.get("score")
    return (
        None if score is None else Decimal(score),
        content.get("comment", ""),
        content.get("issues", []),
    )


def own_grade(item: CampaignItem, grader: User) -> Grade | None:
    return GRADING.own_records(item, grader).prefetch_related("issues").first()


def has_graded(item: CampaignItem, grader: User) -> bool:
    return GRADING.own_records(item, grader).exists()
