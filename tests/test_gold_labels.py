"""Gold labels (annotate/gold.py): one current label per proof, its provenance for each
case, the evidence it came from, its history, set-based recomputation, and recomputation
when a grade or an adjudication is committed or edited, and after an import."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from annotate import gold, grading
from annotate.importers import import_path
from annotate.models import (
    Adjudication,
    Campaign,
    CampaignItem,
    GoldLabel,
    GoldLabelHistory,
    Grade,
    Proof,
    Provenance,
)
from annotate.work import queue
from tests.import_support import native_line, write_jsonl

pytestmark = pytest.mark.django_db


def app_grade(proof, grader, score, campaign) -> Grade:
    return Grade.objects.create(
        proof=proof, campaign=campaign, grader=grader, origin=Grade.Origin.APP, score=score
    )


def imported_grade(proof, who, score, source="contest.jsonl") -> Grade:
    return Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader=who,
        import_source=source,
        score=score,
    )


def adjudicate(proof, adjudicator, score, reason, name="Adjudication") -> Adjudication:
    campaign, _ = Campaign.objects.get_or_create(name=name, kind=Campaign.Kind.ADJUDICATE)
    item, _ = CampaignItem.objects.get_or_create(campaign=campaign, proof=proof)
    return Adjudication.objects.create(
        campaign=campaign,
        item=item,
        proof=proof,
        adjudicator=adjudicator,
        score=score,
        reason=reason,
    )


def label(proof) -> GoldLabel | None:
    return GoldLabel.objects.filter(proof=proof).first()


def test_one_expert_gives_a_single_expert_label_with_the_grade_as_evidence(proof, expert, campaign):
    grade = app_grade(proof, expert, Decimal("1"), campaign)
    assert gold.recompute_gold_labels([proof.pk]) == 1
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("1"), Provenance.SINGLE_EXPERT)
    assert found.evidence["grades"] == [
        {"id": grade.pk, "origin": "app", "score": "1", "grader": expert.pk}
    ]


def test_experts_who_all_agree_give_a_unanimous_label(proof, expert, expert2, campaign):
    app_grade(proof, expert, Decimal("0.5"), campaign)
    imported_grade(proof, "IMO coordinator", Decimal("0.5"))
    app_grade(proof, expert2, Decimal("0.5"), campaign)
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("0.5"), Provenance.UNANIMOUS_EXPERTS)
    assert found.evidence["counts"] == {"0.5": 3}
    assert [g["origin"] for g in found.evidence["grades"]] == ["app", "imported", "app"]


def test_a_strict_majority_gives_a_majority_label(proof, expert, expert2, campaign):
    app_grade(proof, expert, Decimal("1"), campaign)
    app_grade(proof, expert2, Decimal("1"), campaign)
    imported_grade(proof, "coordinator", Decimal("0"))
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("1"), Provenance.MAJORITY_EXPERTS)
    assert found.evidence["counts"] == {"0": 1, "1": 2}


def test_a_tie_gives_no_label_and_removes_the_one_there_was(proof, expert, expert2, campaign):
    app_grade(proof, expert, Decimal("1"), campaign)
    gold.recompute_gold_labels([proof.pk])
    assert label(proof).provenance == Provenance.SINGLE_EXPERT
    app_grade(proof, expert2, Decimal("0"), campaign)
    assert gold.recompute_gold_labels([proof.pk]) == 1
    assert label(proof) is None
    last = GoldLabelHistory.objects.filter(proof=proof).order_by("id").last()
    assert last.old["provenance"] == "single_expert" and last.new is None


def test_two_against_two_with_a_fifth_score_is_no_majority(proof, campaign, expert, expert2):
    app_grade(proof, expert, Decimal("1"), campaign)
    app_grade(proof, expert2, Decimal("1"), campaign)
    imported_grade(proof, "a", Decimal("0"))
    imported_grade(proof, "b", Decimal("0"))
    imported_grade(proof, "c", Decimal("0.5"))
    gold.recompute_gold_labels([proof.pk])
    assert label(proof) is None


def test_only_imported_grades_give_an_imported_label_naming_the_rule(proof):
    imported_grade(proof, "marker A", Decimal("0"))
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("0"), Provenance.IMPORTED)
    assert found.evidence["rule"] == "single_expert"
    imported_grade(proof, "marker B", Decimal("0"))
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.provenance, found.evidence["rule"]) == (Provenance.IMPORTED, "unanimous_experts")


def test_an_experts_later_grade_in_another_campaign_replaces_their_earlier_one(
    proof, expert, campaign, owner
):
    other = Campaign.objects.create(name="Second pass", created_by=owner)
    app_grade(proof, expert, Decimal("0"), campaign)
    later = app_grade(proof, expert, Decimal("1"), other)
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("1"), Provenance.SINGLE_EXPERT)
    assert [g["id"] for g in found.evidence["grades"]] == [later.pk]


def test_the_latest_adjudication_wins_over_any_agreement(
    proof, expert, expert2, owner, outsider, campaign
):
    grades = [app_grade(proof, u, Decimal("1"), campaign) for u in (expert, expert2)]
    first = adjudicate(proof, owner, Decimal("0"), "Step 3 divides by zero.")
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.provenance) == (Decimal("0"), Provenance.ADJUDICATED)
    assert found.reason == "Step 3 divides by zero."
    assert found.evidence["adjudication"] == first.pk
    assert [g["id"] for g in found.evidence["grades"]] == [g.pk for g in grades]

    second = adjudicate(proof, outsider, Decimal("0.5"), "A gap, not an error.", name="Round 2")
    gold.recompute_gold_labels([proof.pk])
    found = label(proof)
    assert (found.score, found.reason) == (Decimal("0.5"), "A gap, not an error.")
    assert found.evidence["adjudication"] == second.pk


def test_a_proof_without_evidence_has_no_label_but_an_auto_label_stands(proof, problem):
    assert gold.recompute_gold_labels([proof.pk]) == 0
    assert label(proof) is None
    other = Proof.objects.create(problem=problem, text="Another proof.")
    GoldLabel.objects.create(
        proof=other,
        score=Decimal("1"),
        provenance=Provenance.AUTO_LABEL,
        evidence={"n": 8, "m": 7, "k": 6},
    )
    assert gold.recompute_gold_labels([other.pk]) == 0
    assert label(other).provenance == Provenance.AUTO_LABEL


def test_history_is_written_on_every_change_and_only_then(proof, expert, expert2, campaign):
    grade = app_grade(proof, expert, Decimal("1"), campaign)
    gold.recompute_gold_labels([proof.pk])
    assert gold.recompute_gold_labels([proof.pk]) == 0  # nothing changed: nothing written
    assert GoldLabelHistory.objects.filter(proof=proof).count() == 1
    Grade.objects.filter(pk=grade.pk).update(score=Decimal("0.5"))
    gold.recompute_gold_labels([proof.pk])
    rows = list(GoldLabelHistory.objects.filter(proof=proof).order_by("id"))
    assert [(r.old and r.old["score"], r.new["score"]) for r in rows] == [(None, "1"), ("1", "0.5")]


def _graded_proofs(problem, campaign, experts, n: int, name: str) -> list[int]:
    ids = []
    for i in range(n):
        proof = Proof.objects.create(problem=problem, text=f"{name} proof number {i}.")
        for j, expert in enumerate(experts):
            app_grade(proof, expert, Decimal("1") if (i + j) % 3 else Decimal("0"), campaign)
        imported_grade(proof, "coordinator", Decimal("1"))
        ids.append(proof.pk)
    return ids


def test_recomputation_is_set_based(
    problem, campaign, expert, expert2, django_assert_max_num_queries
):
    few = _graded_proofs(problem, campaign, [expert, expert2], 2, "few")
    many = _graded_proofs(problem, campaign, [expert, expert2], 60, "many")
    # savepoint, lock, three reads, upsert, delete, history, release: the same for 2 or 60.
    with django_assert_max_num_queries(9):
        gold.recompute_gold_labels(few)
    with django_assert_max_num_queries(9):
        gold.recompute_gold_labels(many)
    assert GoldLabel.objects.filter(proof_id__in=many).count() == 60


def test_a_grade_commit_and_its_edit_recompute_the_label(
    proof, campaign, expert, django_capture_on_commit_callbacks
):
    item = queue.claim_next_item(campaign, expert)
    with django_capture_on_commit_callbacks(execute=True):
        grade, _ = grading.submit_grade(
            item,
            expert,
            score="1",
            comment="",
            issues=[],
            active_seconds=5,
            submission_key="8a4f0a51-2a4e-4c55-9d8e-3d6a3b0b9f11",
        )
    assert (label(proof).score, label(proof).provenance) == (Decimal("1"), "single_expert")
    with django_capture_on_commit_callbacks(execute=True):
        grading.edit_grade(
            grade, expert, expected_version=1, score="0", comment="Wrong after all.", issues=[]
        )
    assert label(proof).score == Decimal("0")
    assert GoldLabelHistory.objects.filter(proof=proof).count() == 2


def test_imported_grades_get_labels_once_the_import_commits(
    tmp_path, django_capture_on_commit_callbacks
):
    line = native_line(
        "NT-001", grades=[{"grader": "alice", "score": 1}, {"grader": "bob", "score": 1}]
    )
    tie = native_line(
        "NT-002", grades=[{"grader": "alice", "score": 1}, {"grader": "bob", "score": 0}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = import_path(write_jsonl(tmp_path, [line, tie]), "native")
    assert result.ok, result.errors
    found = GoldLabel.objects.get()
    assert found.proof.problem.external_id == "NT-001"
    assert (found.score, found.provenance) == (Decimal("1"), Provenance.IMPORTED)
    assert found.evidence["rule"] == "unanimous_experts"


def test_the_command_recomputes_every_proof(proof, expert, campaign, capsys):
    app_grade(proof, expert, Decimal("0"), campaign)
    call_command("recompute_gold_labels")
    assert label(proof).provenance == Provenance.SINGLE_EXPERT
    assert "1 changed" in capsys.readouterr().out


def test_the_admin_shows_gold_labels_but_never_changes_them(client, proof, expert, campaign):
    app_grade(proof, expert, Decimal("1"), campaign)
    gold.recompute_gold_labels([proof.pk])
    staff = type(expert).objects.create_superuser("sam_staff", password="x")
    client.force_login(staff)
    url = f"/admin/annotate/goldlabel/{label(proof).pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"score": "0", "provenance": "adjudicated", "reason": "hand"})
    assert response.status_code == 403
    assert label(proof).score == Decimal("1")


def test_the_item_page_shows_owners_the_label_with_provenance_reason_and_evidence(
    client, proof, owner, expert, campaign
):
    adjudication = adjudicate(proof, owner, Decimal("0.5"), "The *gap* in step 2.")
    gold.recompute_gold_labels([proof.pk])
    item = CampaignItem.objects.get(campaign=campaign, proof=proof)
    client.force_login(owner)
    html = client.get(f"/campaigns/{campaign.pk}/items/{item.pk}/").content.decode()
    assert 'id="gold-label"' in html and "Adjudicated" in html
    assert "<em>gap</em>" in html  # the reason, rendered
    assert f"adjudication {adjudication.pk}" in html
    # A grader of a blind campaign does not see it (it would reveal the grades).
    client.force_login(expert)
    assert 'id="gold-label"' not in client.get(f"/campaigns/{campaign.pk}/items/{item.pk}/")


def test_a_grader_who_sees_the_grades_still_never_sees_the_label(
    client, proof, expert, expert2, campaign
):
    item = CampaignItem.objects.get(campaign=campaign, proof=proof)
    app_grade(proof, expert2, Decimal("1"), campaign)
    app_grade(proof, expert, Decimal("1"), campaign)
    gold.recompute_gold_labels([proof.pk])
    client.force_login(expert)
    html = client.get(f"/campaigns/{campaign.pk}/items/{item.pk}/").content.decode()
    assert 'id="grade-' in html  # their grade is in: the grades are shown
    assert 'id="gold-label"' not in html
