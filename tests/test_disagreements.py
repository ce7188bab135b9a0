"""Disagreements as records (verification/disagreements.py): detection of every kind, their
recomputation, the priority they give campaign items, the command and the owners' list."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from annotate import grading
from annotate.models import Campaign, CampaignItem, Grade, Membership, Problem, Proof, Role
from annotate.others import others_for
from annotate.work import queue
from tests.conftest import PASSWORD
from verification.disagreements import item_priority, record_disagreements, run_outputs_stored
from verification.models import Analysis, Disagreement
from verification.parsing import ParseStatus
from workers.models import ModelOutput, ModelRun

Kind = Disagreement.Kind
D = Decimal


# --- builders -------------------------------------------------------------------------------


def app_grade(proof: Proof, campaign: Campaign, grader, score: str) -> Grade:
    return Grade.objects.create(
        proof=proof, campaign=campaign, grader=grader, origin=Grade.Origin.APP, score=D(score)
    )


def imported_grade(proof: Proof, score: str, name: str = "contest jury") -> Grade:
    return Grade.objects.create(
        proof=proof,
        origin=Grade.Origin.IMPORTED,
        external_grader=name,
        import_source="contest.jsonl",
        score=D(score),
    )


def analysis(proof: Proof, score: str | None, model: str = "verifier-a") -> Analysis:
    text = f"Analysis {uuid.uuid4().hex}"
    return Analysis.objects.create(
        proof=proof,
        text=text,
        text_hash=uuid.uuid4().hex,
        model=model,
        score=None if score is None else D(score),
        parse_status=ParseStatus.OK if score is not None else ParseStatus.NO_SCORE,
    )


def meta_run(model: str = "meta-model") -> ModelRun:
    return ModelRun.objects.create(
        kind="meta_verify",
        target={"campaign": "x"},
        target_description="x",
        backend="replay",
        model=model,
        sampling={"n": 1},
        template_text="t",
        template_hash="0" * 64,
        template_version="v1",
    )


def meta(run: ModelRun, of: Analysis, score: str, index: int = 0) -> ModelOutput:
    return ModelOutput.objects.create(
        run=run,
        target_id=of.pk,
        sample_index=index,
        text="meta",
        backend="replay",
        model=run.model,
        template_version="v1",
        score=D(score),
        parse_status=ParseStatus.OK,
    )


def review(of: Analysis, reviewer, score: str, owner=None) -> object:
    from annotate.models import Review

    campaign, _ = Campaign.objects.get_or_create(
        name="Review campaign", defaults={"kind": Campaign.Kind.REVIEW_ANALYSES}
    )
    if owner is not None:
        Membership.objects.get_or_create(campaign=campaign, user=owner, role=Role.OWNER)
    item, _ = CampaignItem.objects.get_or_create(campaign=campaign, analysis=of, proof=of.proof)
    return Review.objects.create(
        campaign=campaign, item=item, analysis=of, reviewer=reviewer, score=D(score)
    )


def open_of(proof: Proof, kind: str | None = None):
    found = Disagreement.objects.open().filter(proof=proof)
    return found.filter(kind=kind) if kind else found


def new_proof(problem: Problem, text: str = "", **fields) -> Proof:
    return Proof.objects.create(problem=problem, text=text or f"p {uuid.uuid4().hex}", **fields)


@pytest.fixture
def item(campaign, proof) -> CampaignItem:
    return CampaignItem.objects.get(campaign=campaign, proof=proof)


# --- expert vs expert -----------------------------------------------------------------------


def test_two_experts_half_a_point_apart_disagree(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0.5")
    result = record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERT_VS_EXPERT)
    assert result.opened == 1
    assert found.gap == 0.5
    assert sorted((p["who"], p["score"]) for p in found.parties) == [
        ("david_expert", 0.5),
        ("emmy_expert", 1.0),
    ]
    assert list(found.campaigns.all()) == [campaign]


def test_experts_who_agree_do_not_disagree(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "0.5")
    app_grade(proof, campaign, expert2, "0.5")
    record_disagreements([proof.pk])
    assert not Disagreement.objects.exists()


def test_a_single_expert_never_disagrees_with_anyone(proof, campaign, expert):
    """Overlap 1: one grade, nobody to disagree with (and no verifier to compare)."""
    app_grade(proof, campaign, expert, "0")
    record_disagreements([proof.pk])
    assert not Disagreement.objects.exists()


def test_an_imported_grade_counts_as_an_expert(proof, campaign, expert):
    app_grade(proof, campaign, expert, "1")
    imported_grade(proof, "0")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERT_VS_EXPERT)
    assert found.gap == 1.0
    assert {p["who"] for p in found.parties} == {"emmy_expert", "imported: contest jury"}


def test_two_imported_grades_disagree_without_any_campaign(proof):
    imported_grade(proof, "1", "jury a")
    imported_grade(proof, "0.5", "jury b")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERT_VS_EXPERT)
    assert list(found.campaigns.all()) == []


# --- experts vs verifier --------------------------------------------------------------------


def test_experts_against_the_verifier_mean(proof, campaign, expert):
    app_grade(proof, campaign, expert, "0")
    analysis(proof, "1")
    analysis(proof, "0.5")
    analysis(proof, None)  # no parsed score: not counted
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    verifier = next(p for p in found.parties if p["side"] == "verifier")
    assert (verifier["who"], verifier["score"], verifier["majority"]) == ("verifier-a", 0.75, 0.5)
    assert len(verifier["analyses"]) == 2
    assert found.gap == 0.75  # |0 - mean 0.75| is larger than |0 - majority 0.5|
    assert "\nverifier-a\n" in found.model_names


def test_a_tied_majority_goes_to_the_lowest_score(proof, campaign, expert):
    """Analyses 0 and 1: mean 0.5 (gap 0.5 from an expert's 1), majority 0 (gap 1)."""
    app_grade(proof, campaign, expert, "1")
    analysis(proof, "0")
    analysis(proof, "1")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    verifier = next(p for p in found.parties if p["side"] == "verifier")
    assert verifier["majority"] == 0.0 and found.gap == 1.0


def test_the_consensus_is_the_mean_of_all_expert_grades(proof, campaign, expert, expert2):
    """Experts 1, 0.5 and imported 0: consensus 0.5, a verifier at 1 is exactly 0.5 away
    (a tie with the threshold disagrees), one at 0.5 would not be."""
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0.5")
    imported_grade(proof, "0")
    analysis(proof, "1")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    consensus = next(p for p in found.parties if p["side"] == "consensus")
    assert (consensus["score"], consensus["grades"], found.gap) == (0.5, 3, 0.5)


def test_a_verifier_that_agrees_with_the_consensus_is_no_disagreement(proof, campaign, expert):
    app_grade(proof, campaign, expert, "1")
    analysis(proof, "1")
    analysis(proof, "1", model="verifier-b")
    record_disagreements([proof.pk])
    assert not open_of(proof, Kind.EXPERTS_VS_VERIFIER).exists()


def test_a_verifier_without_experts_is_no_disagreement(proof):
    analysis(proof, "0")
    record_disagreements([proof.pk])
    assert not Disagreement.objects.exists()


def test_the_release_verifier_mean_counts_as_a_verifier(proof):
    """The DeepSeekMath-V2 case: an imported human 0 against a release mean of 0.9."""
    proof.metadata = {"average_automatic_rating": 0.9}
    proof.save()
    imported_grade(proof, "0", "deepseek-math-v2 human expert")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    assert found.gap == 0.9
    assert {p["who"] for p in found.parties} >= {"release verifier mean", "expert consensus"}


def test_each_verifier_model_is_judged_on_its_own(proof, campaign, expert):
    app_grade(proof, campaign, expert, "1")
    analysis(proof, "1", model="verifier-a")
    analysis(proof, "0", model="verifier-b")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    assert found.gap == 1.0
    assert found.model_names == "\ndeepseek-math-v2\nverifier-a\nverifier-b\n"


# --- review vs meta-assessment --------------------------------------------------------------


def test_a_review_that_contradicts_a_meta_assessment(proof, reviewer):
    judged = analysis(proof, "0")
    review(judged, reviewer, "1")
    meta(meta_run(), judged, "0")
    record_disagreements([proof.pk])
    (found,) = open_of(proof, Kind.REVIEW_VS_META)
    assert found.analysis == judged and found.gap == 1.0
    sides = sorted((p["side"], p["who"], p["score"]) for p in found.parties)
    assert sides == [("meta", "meta-model", 0.0), ("review", "rita_reviewer", 1.0)]
    assert [c.name for c in found.campaigns.all()] == ["Review campaign"]


def test_a_models_samples_are_one_meta_assessment(proof, reviewer):
    """Samples 1, 1, 1, 0 of one model: mean 0.75, not a contradiction of a review's 1."""
    judged = analysis(proof, "0")
    review(judged, reviewer, "1")
    run = meta_run()
    for index, score in enumerate(["1", "1", "1", "0"]):
        meta(run, judged, score, index)
    record_disagreements([proof.pk])
    assert not open_of(proof, Kind.REVIEW_VS_META).exists()


def test_a_meta_assessment_half_a_point_off_disagrees(proof, reviewer):
    judged = analysis(proof, "0")
    review(judged, reviewer, "0.5")
    meta(meta_run(), judged, "1")
    record_disagreements([proof.pk])
    assert open_of(proof, Kind.REVIEW_VS_META).get().gap == 0.5


def test_a_review_without_meta_assessment_or_failed_samples_is_no_disagreement(proof, reviewer):
    judged = analysis(proof, "0")
    review(judged, reviewer, "1")
    failed = meta(meta_run(), judged, "0")
    ModelOutput.objects.filter(pk=failed.pk).update(error_reason="timeout", score=None)
    record_disagreements([proof.pk])
    assert not Disagreement.objects.exists()


def test_each_analysis_has_its_own_disagreement(proof, reviewer):
    first, second = analysis(proof, "0"), analysis(proof, "0.5")
    run = meta_run()
    for judged in (first, second):
        review(judged, reviewer, "1")
        meta(run, judged, "0")
    record_disagreements([proof.pk])
    assert set(open_of(proof, Kind.REVIEW_VS_META).values_list("analysis", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_the_auto_label_kind_is_reserved(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    analysis(proof, "1")
    record_disagreements([proof.pk])
    assert not Disagreement.objects.filter(kind=Kind.AUTO_LABEL_VS_EXPERTS).exists()
    assert Kind.AUTO_LABEL_VS_EXPERTS in Kind.values


# --- recomputation --------------------------------------------------------------------------


def test_a_rerun_changes_nothing(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    record_disagreements([proof.pk])
    before = list(Disagreement.objects.values())
    again = record_disagreements([proof.pk])
    assert (again.opened, again.updated, again.resolved) == (0, 0, 0)
    assert list(Disagreement.objects.values()) == before


def test_new_parties_update_the_open_record(proof, campaign, expert, expert2, owner):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0.5")
    record_disagreements([proof.pk])
    first = open_of(proof, Kind.EXPERT_VS_EXPERT).get()
    imported_grade(proof, "0")
    result = record_disagreements([proof.pk])
    updated = open_of(proof, Kind.EXPERT_VS_EXPERT).get()
    assert updated.pk == first.pk and result.updated >= 1
    assert updated.gap == 1.0 and len(updated.parties) == 3


def test_editing_a_grade_closes_and_reopens_the_disagreement(
    proof, campaign, item, expert, expert2, django_capture_on_commit_callbacks
):
    app_grade(proof, campaign, expert2, "1")
    CampaignItem.objects.filter(pk=item.pk).update(
        lease_holder=expert, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    item.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        grade, _ = grading.submit_grade(
            item,
            expert,
            score="0",
            comment="",
            issues=[],
            active_seconds=5,
            submission_key=str(uuid.uuid4()),
        )
    opened = open_of(proof, Kind.EXPERT_VS_EXPERT).get()
    assert opened.gap == 1.0

    with django_capture_on_commit_callbacks(execute=True):
        grade = grading.edit_grade(
            grade, expert, expected_version=grade.version, score="1", comment="", issues=[]
        )
    assert not open_of(proof).exists()
    opened.refresh_from_db()
    assert opened.status == Disagreement.Status.RESOLVED
    assert opened.resolution == Disagreement.Resolution.NO_LONGER
    assert opened.resolved_at is not None

    with django_capture_on_commit_callbacks(execute=True):
        grading.edit_grade(
            grade, expert, expected_version=grade.version, score="0.5", comment="", issues=[]
        )
    reopened = open_of(proof, Kind.EXPERT_VS_EXPERT).get()
    assert reopened.pk != opened.pk and reopened.gap == 0.5


def test_an_adjudicated_disagreement_stays_closed_until_its_parties_change(
    proof, campaign, expert, expert2
):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    record_disagreements([proof.pk])
    assert open_of(proof).resolve(Disagreement.Resolution.ADJUDICATED) == 1
    record_disagreements([proof.pk])
    assert not open_of(proof).exists()
    imported_grade(proof, "0.5")
    record_disagreements([proof.pk])
    assert open_of(proof, Kind.EXPERT_VS_EXPERT).count() == 1


def test_meta_assessments_stored_by_a_run_are_recorded(proof, reviewer):
    judged = analysis(proof, "0")
    review(judged, reviewer, "1")
    meta(meta_run(), judged, "0")
    run_outputs_stored("meta_verify", [judged.pk])
    assert open_of(proof, Kind.REVIEW_VS_META).exists()


def test_analyses_stored_by_a_verify_run_are_recorded(
    proof, campaign, expert, django_capture_on_commit_callbacks
):
    from tests.test_model_runs import FakeBackend, verify_run
    from workers import runs

    app_grade(proof, campaign, expert, "1")
    run = verify_run(n=1)
    with django_capture_on_commit_callbacks(execute=True):
        runs.run_batches(run, backend=FakeBackend())  # the analysis says 0.5
    (found,) = open_of(proof, Kind.EXPERTS_VS_VERIFIER)
    assert found.gap == 0.5 and "\nfake-model\n" in found.model_names


def test_committing_a_review_records_its_contradiction_with_a_meta_assessment(
    proof, reviewer, django_capture_on_commit_callbacks
):
    from annotate import review as reviewing

    judged = analysis(proof, "1")
    meta(meta_run(), judged, "0")
    campaign = Campaign.objects.create(name="Reviews", kind=Campaign.Kind.REVIEW_ANALYSES)
    Membership.objects.create(campaign=campaign, user=reviewer, role=Role.REVIEWER)
    item = CampaignItem.objects.create(
        campaign=campaign,
        proof=proof,
        analysis=judged,
        lease_holder=reviewer,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    with django_capture_on_commit_callbacks(execute=True):
        reviewing.submit_review(
            item, reviewer, verdicts=[], score="1", submission_key=str(uuid.uuid4())
        )
    (found,) = open_of(proof, Kind.REVIEW_VS_META)
    assert found.analysis == judged and list(found.campaigns.all()) == [campaign]
    assert CampaignItem.objects.get(pk=item.pk).priority == 1.01


def test_the_database_refuses_a_second_open_disagreement(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    record_disagreements([proof.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        Disagreement.objects.create(kind=Kind.EXPERT_VS_EXPERT, proof=proof, gap=1.0)


def _contested_proofs(problem, campaign, graders, count: int) -> list[Proof]:
    """`count` proofs of `campaign`, each with every kind of disagreement."""
    proofs = []
    run = meta_run()
    for _ in range(count):
        p = new_proof(problem)
        CampaignItem.objects.create(campaign=campaign, proof=p)
        app_grade(p, campaign, graders[0], "1")
        app_grade(p, campaign, graders[1], "0")
        imported_grade(p, "0")
        judged = analysis(p, "1")
        review(judged, graders[2], "1")
        meta(run, judged, "0")
        proofs.append(p)
    return proofs


def test_the_query_count_does_not_grow_with_the_proofs(
    problem, campaign, expert, expert2, reviewer, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    graders = [expert, expert2, reviewer]
    counts = []
    for size in (1, 6):
        proofs = _contested_proofs(problem, campaign, graders, size)
        with CaptureQueriesContext(connection) as queries:
            result = record_disagreements([p.pk for p in proofs])
        assert result.opened == 3 * size
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(14):
        record_disagreements([p.pk for p in Proof.objects.all()])


# --- priority -------------------------------------------------------------------------------


def test_priority_is_the_largest_gap_plus_a_count_term():
    assert item_priority([]) == 0.0
    assert item_priority([0.5]) == 0.51
    assert item_priority([1.0, 0.5]) == 1.02


def test_a_priority_campaign_serves_the_most_contested_proofs_first(
    problem, owner, expert, expert2, outsider
):
    campaign = Campaign.objects.create(name="By priority", order=Campaign.Order.PRIORITY, seed=1)
    Membership.objects.create(campaign=campaign, user=outsider, role=Role.GRADER)
    calm, half, full = (new_proof(problem) for _ in range(3))
    items = {}
    for p in (calm, half, full):
        items[p.pk] = CampaignItem.objects.create(campaign=campaign, proof=p)
    other = Campaign.objects.create(name="Grading round 1")
    imported_grade(half, "1", "a")
    imported_grade(half, "0.5", "b")
    imported_grade(full, "1", "a")
    imported_grade(full, "0", "b")
    analysis(full, "0")  # a second disagreement about `full`: experts vs verifier too
    app_grade(calm, other, expert, "1")
    record_disagreements([calm.pk, half.pk, full.pk])
    priorities = dict(
        CampaignItem.objects.filter(campaign=campaign).values_list("proof", "priority")
    )
    assert priorities == {calm.pk: 0.0, half.pk: 0.51, full.pk: 1.02}

    served = []
    for _ in range(3):
        claimed = queue.claim_next_item(campaign, outsider)
        assert claimed is not None
        served.append(claimed.proof_id)
        CampaignItem.objects.filter(pk=claimed.pk).update(
            committed=1, lease_holder=None, lease_expires_at=None
        )
    assert served == [full.pk, half.pk, calm.pk]

    # Agreement now: the priority falls back to 0 and the queue order with it.
    Grade.objects.filter(proof=full, external_grader="b").update(score=D("1"))
    Analysis.objects.filter(proof=full).update(score=D("1"))
    record_disagreements([full.pk])
    assert CampaignItem.objects.get(pk=items[full.pk].pk).priority == 0.0


# --- the command ----------------------------------------------------------------------------


def test_the_command_records_existing_data_and_is_idempotent(proof, campaign, expert, expert2):
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    call_command("record_disagreements")
    assert open_of(proof, Kind.EXPERT_VS_EXPERT).count() == 1
    call_command("record_disagreements", "--campaign", campaign.name)
    assert Disagreement.objects.count() == 1


def test_the_command_limits_itself_to_a_campaign(problem, proof, campaign, expert, expert2):
    elsewhere = new_proof(problem)
    imported_grade(elsewhere, "1", "a")
    imported_grade(elsewhere, "0", "b")
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    call_command("record_disagreements", "--campaign", campaign.name)
    assert set(Disagreement.objects.values_list("proof", flat=True)) == {proof.pk}


def test_the_command_refuses_an_unknown_campaign(db):
    with pytest.raises(CommandError, match="no campaign named 'Nope'"):
        call_command("record_disagreements", "--campaign", "Nope")


# --- the badge ------------------------------------------------------------------------------


def test_the_badge_reads_the_open_records(proof, campaign, item, expert, expert2):
    app_grade(proof, campaign, expert2, "1")
    app_grade(proof, campaign, expert, "0")
    assert others_for(item, expert)["disagreement"] is False  # not recorded yet
    record_disagreements([proof.pk])
    assert others_for(item, expert)["disagreement"] is True
    open_of(proof).resolve(Disagreement.Resolution.ADJUDICATED)
    assert others_for(item, expert)["disagreement"] is False


# --- the owners' list -----------------------------------------------------------------------

URL = "/disagreements/"


@pytest.fixture
def two_campaigns(problem, proof, campaign, owner, expert, expert2, django_user_model):
    """`campaign` (owned by `owner`) with a contested proof, and another owner's campaign
    with its own contested proof."""
    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    other_owner = django_user_model.objects.create_user("otto_owner", password=PASSWORD)
    other = Campaign.objects.create(name="Other campaign")
    Membership.objects.create(campaign=other, user=other_owner, role=Role.OWNER)
    elsewhere = new_proof(
        Problem.objects.create(external_id="PB-Other-002", statement="S"),
        generator_model="other-model",
    )
    CampaignItem.objects.create(campaign=other, proof=elsewhere)
    imported_grade(elsewhere, "1", "a")
    imported_grade(elsewhere, "0.5", "b")
    analysis(elsewhere, "0", model="verifier-z")
    record_disagreements([proof.pk, elsewhere.pk])
    return other, other_owner, elsewhere


def test_the_list_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_list_refuses_post(client, owner, campaign):
    client.force_login(owner)
    assert client.post(URL).status_code == 405


def test_graders_reviewers_and_outsiders_are_refused(client, campaign, expert, reviewer, outsider):
    for user in (expert, reviewer, outsider):
        client.force_login(user)
        response = client.get(URL)
        assert response.status_code == 403
        assert "Only staff and the owners" in response.content.decode()


def test_an_owner_sees_only_their_campaigns_disagreements(client, owner, proof, two_campaigns):
    other, other_owner, elsewhere = two_campaigns
    client.force_login(owner)
    response = client.get(URL)
    assert response.status_code == 200
    rows = list(response.context["page"])
    assert {d.proof_id for d in rows} == {proof.pk}
    client.force_login(other_owner)
    rows = list(client.get(URL).context["page"])
    assert {d.proof_id for d in rows} == {elsewhere.pk}
    assert {d.kind for d in rows} == {Kind.EXPERT_VS_EXPERT, Kind.EXPERTS_VS_VERIFIER}


def test_staff_see_every_disagreement(client, django_user_model, two_campaigns, proof):
    _, _, elsewhere = two_campaigns
    staff = django_user_model.objects.create_user("sam_staff", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    rows = list(client.get(URL).context["page"])
    assert {d.proof_id for d in rows} == {proof.pk, elsewhere.pk}


def test_an_owner_does_not_learn_other_campaigns_graders(
    client, owner, proof, campaign, two_campaigns, django_user_model
):
    other, other_owner, _ = two_campaigns
    grader = django_user_model.objects.create_user("zelda_secret", password=PASSWORD)
    app_grade(proof, other, grader, "0.5")
    record_disagreements([proof.pk])
    client.force_login(owner)
    body = client.get(URL).content.decode()
    assert "emmy_expert" in body and "zelda_secret" not in body
    assert "an expert of another campaign" in body and "Other campaign" not in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "experts_vs_verifier"}, {"experts_vs_verifier"}),
        ({"kind": "expert_vs_expert"}, {"expert_vs_expert"}),
        ({"problem": "PB-Other-002"}, {"expert_vs_expert", "experts_vs_verifier"}),
        ({"problem": "PB-Test-001"}, set()),
        ({"model": "verifier-z"}, {"experts_vs_verifier"}),
        ({"model": "verifier"}, set()),  # a whole name, not a part of one
        ({"model": "other-model"}, {"expert_vs_expert", "experts_vs_verifier"}),
        ({"min_gap": "0.7"}, {"experts_vs_verifier"}),  # 0.75 passes, 0.5 not
        ({"min_gap": "0.8"}, set()),
        ({"status": "resolved"}, set()),
    ],
)
def test_filters(client, two_campaigns, query, expected):
    _, other_owner, _ = two_campaigns
    client.force_login(other_owner)
    response = client.get(URL, query)
    assert response.status_code == 200
    assert {d.kind for d in response.context["page"]} == expected


def test_the_campaign_filter_offers_and_accepts_only_owned_campaigns(
    client, owner, campaign, proof, two_campaigns
):
    other, _, _ = two_campaigns
    client.force_login(owner)
    rows = client.get(URL, {"campaign": campaign.pk}).context["page"]
    assert {d.proof_id for d in rows} == {proof.pk}
    response = client.get(URL, {"campaign": other.pk})
    assert response.status_code == 400
    assert list(response.context["page"]) == []
    assert "Campaign" in response.content.decode()


def test_a_bad_filter_is_a_clear_error(client, two_campaigns):
    _, other_owner, _ = two_campaigns
    client.force_login(other_owner)
    response = client.get(URL, {"min_gap": "lots"})
    assert response.status_code == 400
    assert "Enter a number" in response.content.decode()
    assert client.get(URL, {"kind": "nonsense"}).status_code == 400


def test_resolved_disagreements_are_listed_with_how(client, two_campaigns):
    _, other_owner, elsewhere = two_campaigns
    Grade.objects.filter(proof=elsewhere, external_grader="b").update(score=D("1"))
    record_disagreements([elsewhere.pk])
    client.force_login(other_owner)
    body = client.get(URL, {"status": "resolved"}).content.decode()
    assert "No longer disagrees" in body


def test_the_list_is_paginated_in_a_fixed_number_of_queries(
    client, problem, campaign, owner, expert, expert2, reviewer, django_assert_max_num_queries
):
    proofs = _contested_proofs(problem, campaign, [expert, expert2, reviewer], 20)
    record_disagreements([p.pk for p in proofs])
    client.force_login(owner)
    # 9 whatever the page holds: with the proofs to send to adjudication and their item links.
    with django_assert_max_num_queries(9):
        response = client.get(URL)
    assert response.context["page"].paginator.count == 60
    assert len(response.context["page"]) == 50
    assert client.get(URL, {"page": 2}).context["page"].number == 2


def test_model_text_is_escaped(client, owner, proof, campaign, expert):
    app_grade(proof, campaign, expert, "1")
    analysis(proof, "0", model="<script>alert(1)</script>")
    record_disagreements([proof.pk])
    client.force_login(owner)
    body = client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_the_nav_links_the_list_for_owners_only(client, owner, expert, campaign):
    client.force_login(owner)
    assert 'href="/disagreements/"' in client.get(reverse("campaign_list")).content.decode()
    client.force_login(expert)
    assert 'href="/disagreements/"' not in client.get(reverse("campaign_list")).content.decode()


def test_the_admin_shows_disagreements_read_only(client, django_user_model, two_campaigns):
    admin_user = django_user_model.objects.create_superuser("ada_admin", password=PASSWORD)
    client.force_login(admin_user)
    response = client.get("/admin/verification/disagreement/")
    assert response.status_code == 200 and "Expert vs expert" in response.content.decode()
    found = Disagreement.objects.first()
    assert client.post(f"/admin/verification/disagreement/{found.pk}/delete/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_recomputations_at_once_record_one_disagreement(
    on_postgres, proof, campaign, expert, expert2
):
    """The proofs are locked first: the second call waits, then finds the first's record."""
    import threading

    from django.db import connection

    app_grade(proof, campaign, expert, "1")
    app_grade(proof, campaign, expert2, "0")
    start, errors = threading.Barrier(4), []

    def record() -> None:
        try:
            start.wait()
            record_disagreements([proof.pk])
        except Exception as exc:  # noqa: BLE001 - the test reports what went wrong
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Disagreement.objects.filter(proof=proof).count() == 1


def test_the_list_writes_scores_and_gaps_as_people_do(client, owner, proof, campaign, expert):
    """0.5, not 0.5000; 1, not 1.0 (the `number` filter, annotate/templatetags)."""
    app_grade(proof, campaign, expert, "0.5")
    proof.metadata = {"average_automatic_rating": 1.0}
    proof.save(update_fields=["metadata"])
    record_disagreements([proof.pk])
    client.force_login(owner)
    body = client.get(URL).content.decode()
    assert "emmy_expert:</span> 0.5<" in body and "0.5000" not in body
    assert '<td class="gap">0.5</td>' in body
