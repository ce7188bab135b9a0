"""A model run's targets chosen by a filter (workers/targets.py): the library's proof and
analysis filters plus the run's own, from the page, the API and `run_model`; the filter
and the number matched are recorded, the ids frozen at creation, and a filter that
matches nothing (or cannot be read) refused with nothing written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotate.models import CampaignItem, Grade, Problem, Proof
from tests.conftest import PASSWORD
from verification.models import Analysis
from workers import runs, tasks
from workers.backends import GenerationRequest, GenerationResult, InferenceBackend, Output
from workers.models import ModelRun

pytestmark = pytest.mark.django_db

SAMPLING = {"n": 2, "seed": 1}


class Echo(InferenceBackend):
    """n copies of a verdict for every request, remembering what it was asked."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__("judge")
        self.asked: list[str] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.asked.extend(r.identity for r in requests)
        return [
            GenerationResult(
                outputs=[
                    Output(index=i, text="Fine.\n\n\\boxed{1}", finish_reason="stop")
                    for i in range(r.sampling.n)
                ]
            )
            for r in requests
        ]


@pytest.fixture
def library(campaign, proof, problem) -> dict[str, Proof]:
    """The campaign's proof (no generator), two by model A (one analysed, one graded by an
    import), one by model B on another problem of another source."""
    other = Problem.objects.create(external_id="PB-2", statement="Show 1 < 2.", source="Other")
    a1 = Proof.objects.create(problem=problem, text="A1: by parity.", generator_model="model-a")
    a2 = Proof.objects.create(problem=problem, text="A2: by descent.", generator_model="model-a")
    b1 = Proof.objects.create(problem=other, text="B1: obvious.", generator_model="model-b")
    Analysis.objects.create(
        proof=a1, text="Gap.\n\\boxed{0.5}", model="judge-x", score=Decimal("0.5"),
        parse_status="ok", origin="imported", import_source="opc.jsonl",
    )  # fmt: skip
    Grade.objects.create(
        proof=a2, origin="imported", external_grader="g", import_source="grades.jsonl",
        score=Decimal("1"),
    )  # fmt: skip
    return {"campaign": proof, "a1": a1, "a2": a2, "b1": b1}


def create(kind: str = "verify", **filters) -> ModelRun:
    return runs.create_run(
        kind=kind, target={"filter": filters}, backend="replay", model="judge", sampling=SAMPLING
    )


@pytest.mark.parametrize(
    ("filters", "chosen"),
    [
        ({"generator_model": "model-a"}, ["a1", "a2"]),
        ({"generator_model": "model-a", "unanalysed": "yes"}, ["a2"]),
        ({"unanalysed": True, "source": "Folklore"}, ["campaign", "a2"]),
        ({"source": "Other"}, ["b1"]),
        ({"campaign": "Test campaign"}, ["campaign"]),  # by name, or by id as campaigns do
        ({"problem": "PB-2"}, ["b1"]),
        ({"imported_from": "grades.jsonl"}, ["a2"]),
        ({"imported_from": "opc.jsonl"}, ["a1"]),
    ],
)
def test_a_verify_run_by_filter_asks_about_exactly_the_matching_proofs(library, filters, chosen):
    run = create(**filters)
    ids = sorted(library[name].pk for name in chosen)
    assert run.target_ids == ids and run.total == 2 * len(ids)
    recorded = dict(filters)
    if "campaign" in filters:  # a campaign named by name is recorded by id
        recorded["campaign"] = library["campaign"].campaign_items.get().campaign_id
    assert run.target == {"filter": recorded}
    assert run.to_dict()["target_count"] == len(ids)
    assert run.target_description.startswith(f"{len(ids)} proofs by filter ")


def test_the_campaign_filter_is_the_librarys_by_id_too(library, campaign):
    assert create(campaign=campaign.pk).target_ids == [library["campaign"].pk]


def test_a_meta_verify_run_by_filter_asks_about_analyses_below_1_that_match(library):
    a1 = library["a1"]
    below = a1.analyses.get()
    Analysis.objects.create(
        proof=a1,
        text="\\boxed{1}",
        text_hash="1",
        model="judge-x",
        score=Decimal("1"),
        parse_status="ok",
    )
    Analysis.objects.create(
        proof=library["b1"],
        text="\\boxed{0}",
        text_hash="0",
        model="judge-y",
        score=0,
        parse_status="ok",
    )
    assert create("meta_verify", model="judge-x").target_ids == [below.pk]
    assert create("meta_verify", generator_model="model-a").target_ids == [below.pk]
    assert len(create("meta_verify", source="Other").target_ids) == 1
    with pytest.raises(runs.RunRequestError, match="no target matches the filter"):
        create("meta_verify", model="judge-x", score="1")  # only below 1 is meta-verified


def test_a_generate_run_by_filter_asks_about_the_problems_of_a_source(library, problem):
    run = create("generate", source="Folklore")
    assert run.target_ids == [problem.pk]
    assert run.target_description == "1 problems by filter source=Folklore"


@pytest.mark.parametrize(
    ("kind", "filters", "message"),
    [
        ("verify", {}, "choose at least one filter"),
        ("verify", {"generator_model": "nobody"}, "no target matches the filter (0 proofs"),
        ("verify", {"colour": "red"}, "there is no filter 'colour' for a verify run"),
        ("verify", {"model": "judge-x"}, "there is no filter 'model' for a verify run"),
        ("generate", {"unanalysed": "yes"}, "no filter 'unanalysed' for a generate run"),
        ("verify", {"unanalysed": "maybe"}, 'the unanalysed filter is "yes"'),
        ("verify", {"category": "poetry"}, "the category is one of algebra"),
        ("verify", {"problem": "PB-404"}, "no problem has the id PB-404"),
        ("verify", {"campaign": "Nope"}, "no campaign named 'Nope'"),
        ("verify", {"campaign": 99999}, "there is no such campaign"),
        ("meta_verify", {"score": "2"}, "the score filter is 0, 0.5, 1 or none"),
        ("verify", {"source": ["a"]}, "the source filter is a text"),
    ],
)
def test_a_filter_that_matches_nothing_or_cannot_be_read_is_refused_and_creates_nothing(
    library, kind, filters, message
):
    with pytest.raises(runs.RunRequestError) as caught:
        create(kind, **filters)
    assert message in str(caught.value)
    assert not ModelRun.objects.exists()


@pytest.mark.parametrize("target", [{"filter": "unanalysed"}, {"filter": {}, "campaign": "x"}])
def test_a_filter_target_of_the_wrong_shape_is_refused(library, target):
    with pytest.raises(runs.RunRequestError, match="filter"):
        runs.create_run(
            kind="verify", target=target, backend="replay", model="m", sampling=SAMPLING
        )
    assert not ModelRun.objects.exists()


def test_a_resumed_run_asks_about_the_proofs_frozen_at_creation(library, problem):
    run = create(unanalysed="yes")
    frozen = list(run.target_ids)
    echo = Echo()
    runs.run_batches(run, backend=echo)
    # Matching the filter now: a new unanalysed proof; no longer matching: every proof
    # the run analysed. A resume asks about the frozen targets, and only what is missing.
    late = Proof.objects.create(problem=problem, text="Late: by contradiction.")
    run.outputs.filter(target_id=frozen[0], sample_index=1).delete()
    runs.resume_run(run)
    runs.run_batches(run, backend=echo)
    run.refresh_from_db()
    assert run.target_ids == frozen and late.pk not in run.target_ids
    assert run.status == "done" and run.done == 2 * len(frozen)
    assert len(echo.asked) == len(frozen) + 1


# --- the entry points ---------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    calls: list[int] = []

    class FakeTask:
        @staticmethod
        def delay(run_id: int) -> None:
            calls.append(run_id)

    monkeypatch.setattr(tasks, "start_model_run", FakeTask)
    return calls


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("sam_staff", password=PASSWORD, is_staff=True)
    assert client.login(username=user.username, password=PASSWORD)
    return user


FORM = {"kind": "verify", "backend": "replay", "model": "judge", "n": "2"}


def test_staff_launch_a_run_by_filter_from_the_page(
    client, library, staff, queued, django_capture_on_commit_callbacks
):
    page = client.get(reverse("run_new")).content.decode()
    assert 'name="filter_generator_model"' in page and '<option value="model-a">' in page
    form = {**FORM, "filter_generator_model": "model-a", "filter_unanalysed": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("run_new"), form)
    run = ModelRun.objects.get()
    assert response.status_code == 302 and queued == [run.pk]
    assert run.target == {"filter": {"generator_model": "model-a", "unanalysed": "yes"}}
    assert run.target_ids == [library["a2"].pk]
    detail = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "1 proofs by filter generator_model=model-a, unanalysed=yes" in detail


def test_the_page_refuses_a_filter_matching_nothing_with_its_reason(client, library, staff, queued):
    response = client.post(reverse("run_new"), {**FORM, "filter_source": "Nowhere"})
    assert response.status_code == 400
    assert "no target matches the filter (0 proofs by filter source=Nowhere)" in (
        response.content.decode()
    )
    assert 'value="Nowhere"' not in response.content.decode()  # not a known source
    assert not ModelRun.objects.exists() and queued == []


def test_the_page_refuses_a_campaign_and_a_filter_together(client, library, staff, queued):
    form = {**FORM, "campaign": "Test campaign", "filter_source": "Other"}
    response = client.post(reverse("run_new"), form)
    assert response.status_code == 400 and "{&quot;filter&quot;: {...}}" in (
        response.content.decode()
    )
    assert not ModelRun.objects.exists()


def test_an_owner_is_not_offered_the_filter_and_cannot_post_one(client, library, owner, queued):
    assert client.login(username=owner.username, password=PASSWORD)
    assert 'name="filter_source"' not in client.get(reverse("run_new")).content.decode()
    response = client.post(reverse("run_new"), {**FORM, "filter_source": "Other"})
    assert response.status_code == 403 and not ModelRun.objects.exists()


def api_post(client, body: dict):
    return client.post(reverse("api_runs"), json.dumps(body), content_type="application/json")


def test_the_api_launches_a_run_by_filter_and_refuses_a_bad_one(
    client, library, staff, queued, django_capture_on_commit_callbacks
):
    body = {"kind": "verify", "backend": "replay", "model": "judge", "sampling": SAMPLING}
    with django_capture_on_commit_callbacks(execute=True):
        created = api_post(client, {**body, "target": {"filter": {"source": "Other"}}})
    assert created.status_code == 201, created.json()
    figures = created.json()
    assert figures["target"] == {"filter": {"source": "Other"}} and figures["target_count"] == 1
    assert figures["total"] == 2 and queued == [figures["id"]]
    refused = api_post(client, {**body, "target": {"filter": {"source": "Nowhere"}}})
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("no target matches the filter")
    unknown = api_post(client, {**body, "target": {"filter": {"colour": "red"}}})
    assert unknown.status_code == 400 and "no filter 'colour'" in unknown.json()["detail"]
    assert ModelRun.objects.count() == 1


def test_run_model_launches_a_run_by_filter_and_refuses_a_bad_one(library, monkeypatch):
    echo = Echo()
    monkeypatch.setattr(runs, "_backend_for", lambda run: echo)
    out = StringIO()
    call_command(
        "run_model", "--kind", "verify", "--backend", "replay", "--model", "judge", "--n", "2",
        "--filter", "generator_model=model-a", "--filter", "unanalysed=yes", "--no-progress",
        stdout=out,
    )  # fmt: skip
    run = ModelRun.objects.get()
    assert run.target == {"filter": {"generator_model": "model-a", "unanalysed": "yes"}}
    assert run.target_ids == [library["a2"].pk] and run.status == "done"
    assert f"run {run.pk} done: 2/2 samples stored" in out.getvalue()
    assert echo.asked == [f"proof:{library['a2'].content_hash}"]
    with pytest.raises(CommandError, match="no target matches the filter"):
        call_command(
            "run_model", "--kind", "verify", "--backend", "replay", "--model", "judge",
            "--filter", "source=Nowhere", "--no-progress",
        )  # fmt: skip
    assert ModelRun.objects.count() == 1


def test_the_filters_are_the_librarys_own_definition(library, campaign):
    """A run and an adjudication campaign with the same filter choose the same proofs."""
    from annotate.campaigns import proofs_matching

    filters = {"campaign": campaign.pk, "category": "number_theory"}
    CampaignItem.objects.create(campaign=campaign, proof=library["a1"])
    ids = create(**filters).target_ids
    assert ids == list(proofs_matching(filters).values_list("pk", flat=True))
    assert ids == sorted([library["campaign"].pk, library["a1"].pk])
