"""Database constraints: a bug in any code path cannot write a bad row.

Rows are written with `.objects.create()` / `.update()`, which skip model validation, so
what rejects them here is the database itself.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.models import (
    Campaign,
    CampaignItem,
    Draft,
    Grade,
    GradeHistory,
    GradeIssue,
    Membership,
    Problem,
    Proof,
    Role,
    content_hash,
)
from verification.models import Analysis

pytestmark = pytest.mark.django_db

OFF_SCALE = [Decimal("0.7"), Decimal("2"), Decimal("-0.5")]


def rejected(write) -> bool:
    """True when the database refuses the write (and the test transaction survives)."""
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


def app_grade(campaign: Campaign, proof: Proof, grader, score: str = "1", **extra) -> Grade:
    return Grade.objects.create(
        proof=proof, campaign=campaign, grader=grader, score=Decimal(score), **extra
    )


# --- the 0 / 0.5 / 1 scale ----------------------------------------------------------------


@pytest.mark.parametrize("score", ["0", "0.5", "1"])
def test_it_accepts_every_score_on_the_scale(campaign, proof, expert, score):
    grade = app_grade(campaign, proof, expert, score)
    grade.refresh_from_db()
    assert grade.score == Decimal(score)


@pytest.mark.parametrize("score", OFF_SCALE)
def test_it_rejects_grade_outside_scale(campaign, proof, expert, score):
    assert rejected(lambda: app_grade(campaign, proof, expert, str(score)))


@pytest.mark.parametrize("score", OFF_SCALE)
def test_it_rejects_grade_updated_outside_scale(campaign, proof, expert, score):
    grade = app_grade(campaign, proof, expert, "1")
    assert rejected(lambda: Grade.objects.filter(pk=grade.pk).update(score=score))
    grade.refresh_from_db()
    assert grade.score == Decimal("1")


@pytest.mark.parametrize("score", OFF_SCALE)
def test_it_rejects_self_score_outside_scale(proof, score):
    assert rejected(lambda: Proof.objects.filter(pk=proof.pk).update(self_score=score))


def test_it_allows_a_missing_self_score(proof):
    Proof.objects.filter(pk=proof.pk).update(self_score=None)
    Proof.objects.filter(pk=proof.pk).update(self_score=Decimal("0.5"))


@pytest.mark.parametrize("field", ["old_score", "new_score"])
def test_it_rejects_history_score_outside_scale(campaign, proof, expert, field):
    grade = app_grade(campaign, proof, expert)
    scores = {"old_score": Decimal("1"), "new_score": Decimal("0"), field: Decimal("0.7")}
    assert rejected(
        lambda: GradeHistory.objects.create(grade=grade, version=2, changed_by=expert, **scores)
    )


# --- proofs and problems --------------------------------------------------------------------


def test_it_rejects_the_same_proof_text_twice_for_one_problem(proof):
    assert rejected(lambda: Proof.objects.create(problem=proof.problem, text=proof.text))


def test_it_accepts_the_same_proof_text_for_another_problem(proof):
    other = Problem.objects.create(external_id="PB-Test-002", statement="Another.")
    Proof.objects.create(problem=other, text=proof.text)


def test_it_rejects_a_hash_that_is_not_sha256(proof):
    assert rejected(lambda: Proof.objects.filter(pk=proof.pk).update(content_hash="x"))


def test_it_rejects_duplicate_text_smuggled_in_by_update(proof):
    second = Proof.objects.create(problem=proof.problem, text="A different argument.")
    assert rejected(
        lambda: Proof.objects.filter(pk=second.pk).update(
            text=proof.text, content_hash=content_hash(proof.text)
        )
    )


def test_it_rejects_an_empty_statement_or_proof(proof):
    assert rejected(lambda: Problem.objects.create(external_id="E-1", statement=""))
    assert rejected(lambda: Proof.objects.filter(pk=proof.pk).update(text=""))


# --- campaigns and memberships ----------------------------------------------------------------


def test_it_rejects_the_same_role_twice(campaign, expert):
    assert rejected(
        lambda: Membership.objects.create(campaign=campaign, user=expert, role=Role.GRADER)
    )


def test_it_accepts_a_second_role_for_one_person(campaign, expert):
    Membership.objects.create(campaign=campaign, user=expert, role=Role.REVIEWER)
    assert Membership.objects.roles_of(expert, campaign) == {"grader", "reviewer"}


def test_it_rejects_an_unknown_role(campaign, outsider):
    assert rejected(lambda: Membership.objects.create(campaign=campaign, user=outsider, role="god"))


def test_it_rejects_overlap_zero(campaign):
    assert rejected(lambda: Campaign.objects.create(name="No experts", overlap=0))
    assert rejected(lambda: Campaign.objects.filter(pk=campaign.pk).update(overlap=0))


def test_it_rejects_the_same_proof_twice_in_a_campaign(campaign, proof):
    assert rejected(lambda: CampaignItem.objects.create(campaign=campaign, proof=proof))


def test_it_rejects_a_lease_without_a_holder(campaign, expert):
    item = campaign.items.get()
    soon = timezone.now() + timedelta(minutes=5)
    assert rejected(lambda: CampaignItem.objects.filter(pk=item.pk).update(lease_expires_at=soon))
    assert rejected(lambda: CampaignItem.objects.filter(pk=item.pk).update(lease_holder=expert))
    CampaignItem.objects.filter(pk=item.pk).update(lease_holder=expert, lease_expires_at=soon)


# --- grades: app versus imported --------------------------------------------------------------


def test_it_rejects_an_app_grade_without_a_grader(campaign, proof):
    assert rejected(lambda: Grade.objects.create(proof=proof, campaign=campaign, score=1))


def test_it_rejects_an_app_grade_without_a_campaign(proof, expert):
    assert rejected(lambda: Grade.objects.create(proof=proof, grader=expert, score=1))


def test_it_rejects_an_imported_grade_without_a_source(proof):
    assert rejected(
        lambda: Grade.objects.create(
            proof=proof, origin=Grade.Origin.IMPORTED, external_grader="IMO jury", score=1
        )
    )


def test_it_rejects_an_imported_grade_without_a_grader_name(proof):
    assert rejected(
        lambda: Grade.objects.create(
            proof=proof, origin=Grade.Origin.IMPORTED, import_source="IMO2025.jsonl", score=1
        )
    )


def test_it_rejects_an_imported_grade_claiming_a_user(proof, expert):
    assert rejected(
        lambda: Grade.objects.create(
            proof=proof,
            origin=Grade.Origin.IMPORTED,
            grader=expert,
            external_grader="IMO jury",
            import_source="IMO2025.jsonl",
            score=1,
        )
    )


def test_it_accepts_an_imported_grade_with_grader_name_and_source(proof):
    Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader="IMO jury",
        import_source="IMO2025.jsonl",
        score=Decimal("0.5"),
        raw_score=Decimal("5"),
        raw_scale_max=Decimal("7"),
    )
    assert Grade.objects.imported().count() == 1
    assert Grade.objects.made_in_app().count() == 0


def test_it_rejects_a_second_app_grade_by_one_grader_in_one_campaign(campaign, proof, expert):
    app_grade(campaign, proof, expert, "1")
    assert rejected(lambda: app_grade(campaign, proof, expert, "0"))


def test_it_accepts_grades_by_other_graders_and_in_other_campaigns(
    campaign, proof, expert, expert2
):
    app_grade(campaign, proof, expert)
    app_grade(campaign, proof, expert2)
    other = Campaign.objects.create(name="Second round")
    app_grade(other, proof, expert)
    assert Grade.objects.for_campaign(campaign).count() == 2


def test_it_rejects_reusing_a_submission_key(campaign, proof, expert, expert2):
    key = "6f1c1f64-5f4e-4b8e-9a51-0d4a6d2b7c11"
    app_grade(campaign, proof, expert, submission_key=key)
    assert rejected(lambda: app_grade(campaign, proof, expert2, submission_key=key))


# --- issues and history ---------------------------------------------------------------------


def test_it_rejects_an_issue_span_ending_before_it_starts(campaign, proof, expert):
    grade = app_grade(campaign, proof, expert, "0.5")
    assert rejected(lambda: GradeIssue.objects.create(grade=grade, start=10, end=9))
    GradeIssue.objects.create(grade=grade, start=10, end=10)  # an empty span is a caret


def test_it_rejects_an_issue_span_with_only_one_end(campaign, proof, expert):
    grade = app_grade(campaign, proof, expert, "0.5")
    assert rejected(lambda: GradeIssue.objects.create(grade=grade, start=3))
    GradeIssue.objects.create(grade=grade, note="general remark")  # no anchor at all


def test_it_rejects_an_unknown_issue_severity(campaign, proof, expert):
    grade = app_grade(campaign, proof, expert, "0.5")
    assert rejected(lambda: GradeIssue.objects.create(grade=grade, severity="cosmic"))


def test_it_rejects_two_history_rows_with_one_version(campaign, proof, expert):
    grade = app_grade(campaign, proof, expert)
    GradeHistory.objects.create(grade=grade, version=1, changed_by=expert, new_score=1)
    assert rejected(
        lambda: GradeHistory.objects.create(grade=grade, version=1, changed_by=expert, new_score=0)
    )


def test_it_rejects_a_second_draft_by_one_grader_on_one_item(campaign, expert):
    item = campaign.items.get()
    Draft.objects.create(item=item, expert=expert)
    assert rejected(lambda: Draft.objects.create(item=item, expert=expert))


# --- analyses -----------------------------------------------------------------------------------


def test_it_rejects_an_empty_analysis(proof):
    assert rejected(lambda: Analysis.objects.create(proof=proof, text="", text_hash="0" * 64))


def test_it_rejects_the_same_imported_analysis_twice(proof):
    def create() -> Analysis:
        return Analysis.objects.create(
            proof=proof, text="Fine. \\boxed{1}", text_hash="a" * 64, model="m", prompt_version="v1"
        )

    create()
    assert rejected(create)
