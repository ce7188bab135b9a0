"""Model runs: requests checked before anything is written, samples stored once under
(run, target, sample index), failures recorded with their reason and retried on resume,
cancellation between batches, outputs turned into analyses, scores or proofs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from annotate.models import CampaignItem, Proof
from verification.models import Analysis, Claim
from workers import runs, tasks
from workers.backends import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    InferenceBackend,
    Output,
)
from workers.models import ModelOutput, ModelRun

pytestmark = pytest.mark.django_db

ANALYSIS = (
    "<think>Check each step.</think>\n"
    '1. The step "Then $p^2 = 2q^2$" is stated without saying why.\n\n'
    "The proof is otherwise fine.\n\n\\boxed{0.5}"
)


class FakeBackend(InferenceBackend):
    """The backend interface, answering from a function of the request (default: n
    copies of a verifier analysis), and remembering every request it was asked."""

    name = "fake"

    def __init__(self, answer: Callable[[GenerationRequest], GenerationResult] | None = None):
        super().__init__("fake-model")
        self.answer = answer or self.analyses
        self.requests: list[GenerationRequest] = []

    @staticmethod
    def analyses(request: GenerationRequest, text: str = ANALYSIS) -> GenerationResult:
        n = request.sampling.n
        outputs = [Output(index=i, text=text, finish_reason="stop") for i in range(n)]
        return GenerationResult(outputs=outputs, prompt_tokens=100, completion_tokens=10 * n)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.requests.extend(requests)
        return [self.answer(r) for r in requests]


@pytest.fixture
def proofs(campaign, proof, problem) -> list[Proof]:
    more = [
        Proof.objects.create(problem=problem, text=f"Proof number {i}: $p^2 = 2q^2$, so 2 | p.")
        for i in range(2)
    ]
    for extra in more:
        CampaignItem.objects.create(campaign=campaign, proof=extra)
    return [proof, *more]


def verify_run(n: int = 2, **extra: Any) -> ModelRun:
    request = {
        "kind": "verify",
        "target": {"campaign": "Test campaign"},
        "backend": "replay",
        "model": "fake-model",
        "sampling": {"n": n, "temperature": 0.7, "max_tokens": 512, "seed": 1},
        **extra,
    }
    return runs.create_run(**request)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "nope"}, "'nope' (known: openai, replay, vllm)"),
        ({"sampling": {"n": 0}}, "n must be a whole number of at least 1"),
        ({"sampling": {"n": 2, "beam": 3}}, "unknown sampling fields: beam"),
        ({"template_text": "Just $problem"}, "the verify template is missing $proof"),
        ({"template_text": "$problem $proof $answer"}, "uses $answer"),
        ({"target": {"campaign": "Nope"}}, "no campaign named 'Nope'"),
        ({"target": {"problems": ["PB-None"]}}, "no problem 'PB-None'"),
        ({"kind": "summarise"}, "unknown kind 'summarise'"),
        ({"model": " "}, "name the model"),
    ],
)
def test_a_malformed_request_is_refused_with_a_clear_error_and_creates_nothing(
    proofs, change, message
):
    request = {
        "kind": "verify",
        "target": {"campaign": "Test campaign"},
        "backend": "replay",
        "model": "m",
        "sampling": {"n": 2},
        **change,
    }
    with pytest.raises(runs.RunRequestError) as caught:
        runs.create_run(**request)
    assert message in str(caught.value)
    assert not ModelRun.objects.exists()


def test_a_run_records_its_template_sampling_and_targets(proofs):
    run = verify_run(n=3)
    assert run.status == "pending" and run.total == 9
    assert run.target_ids == sorted(p.pk for p in proofs)
    assert run.template_version.startswith("verify-") and len(run.template_hash) == 64
    assert run.template_text.startswith("## Problem\n\n$problem")
    assert run.sampling == {"n": 3, "temperature": 0.7, "top_p": 1.0, "max_tokens": 512, "seed": 1}


def test_a_verify_run_stores_n_outputs_per_proof_and_turns_each_into_a_parsed_analysis(proofs):
    run = verify_run(n=2)
    backend = FakeBackend()
    runs.run_batches(run, backend=backend)
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("done", 6, 0)
    assert (run.tokens_in, run.tokens_out) == (300, 60)
    assert run.started_at and run.finished_at
    # the problem and the proof are the prompt's first words
    prompt = backend.requests[0].prompt[0]["content"]
    assert prompt.startswith(f"## Problem\n\n{proofs[0].problem.statement}\n\n## Proof")
    assert backend.requests[0].identity == f"proof:{proofs[0].content_hash}"

    output = ModelOutput.objects.get(run=run, target_id=proofs[0].pk, sample_index=1)
    assert output.text == ANALYSIS and output.finish_reason == "stop"
    assert (output.backend, output.model) == ("replay", "fake-model")
    assert output.template_version == run.template_version
    assert output.completion_tokens == 10 and output.score == Decimal("0.5")

    analysis = output.analysis
    assert analysis.origin == "model_run" and analysis.proof == proofs[0]
    assert analysis.parse_status == "ok" and analysis.score == Decimal("0.5")
    assert analysis.reasoning == "Check each step."
    assert (analysis.model, analysis.prompt_version) == ("fake-model", run.template_version)
    [claim] = analysis.claims.all()
    assert claim.quote == "Then $p^2 = 2q^2$"
    assert proofs[0].text[claim.start : claim.end] == "Then $p^2 = 2q^2$"
    assert Analysis.objects.filter(origin="model_run").count() == 6


def test_a_redelivered_batch_makes_no_call_and_writes_nothing(proofs):
    run = verify_run()
    runs.run_batches(run, backend=FakeBackend())
    counts = (ModelOutput.objects.count(), Analysis.objects.count(), Claim.objects.count())
    again = FakeBackend()
    assert runs.execute_run_batch(run.pk, run.target_ids, backend=again) == 0
    ModelRun.objects.filter(pk=run.pk).update(status="running")  # even if it looked unfinished
    assert runs.execute_run_batch(run.pk, run.target_ids, backend=again) == 0
    assert again.requests == []
    assert (ModelOutput.objects.count(), Analysis.objects.count(), Claim.objects.count()) == counts


def test_a_batch_cut_short_is_completed_without_duplicating_what_was_stored(proofs):
    run = verify_run(n=3)
    runs.run_batches(run, backend=FakeBackend())
    # a worker that died mid-store: one sample of one proof never made it
    lost = ModelOutput.objects.get(run=run, target_id=proofs[1].pk, sample_index=2)
    lost.analysis.delete()
    lost.delete()
    ModelRun.objects.filter(pk=run.pk).update(status="running")
    backend = FakeBackend()
    assert runs.execute_run_batch(run.pk, run.target_ids, backend=backend) == 1
    assert [r.identity for r in backend.requests] == [f"proof:{proofs[1].content_hash}"]
    keys = list(ModelOutput.objects.values_list("target_id", "sample_index"))
    assert len(keys) == len(set(keys)) == 9
    assert Analysis.objects.filter(origin="model_run").count() == 9


def test_the_database_refuses_a_second_output_under_the_same_key(proofs):
    run = verify_run()
    fields = {"run": run, "target_id": proofs[0].pk, "sample_index": 0, "backend": "x"}
    ModelOutput.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelOutput.objects.create(**fields)


def test_a_failing_target_is_recorded_with_its_reason_and_the_others_complete(proofs):
    bad = proofs[1].content_hash

    def answer(request: GenerationRequest) -> GenerationResult:
        if request.identity.endswith(bad):
            return GenerationResult(error=BackendError("server_error", "HTTP 500: boom"))
        return FakeBackend.analyses(request)

    run = verify_run(n=2)
    runs.run_batches(run, backend=FakeBackend(answer))
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("done", 4, 2)
    assert run.failed_by_reason == {"server_error": 2}
    failed = ModelOutput.objects.filter(run=run, target_id=proofs[1].pk)
    assert {(o.error_reason, o.error_message, o.analysis_id) for o in failed} == {
        ("server_error", "HTTP 500: boom", None)
    }

    # resumed: only the failed proof is asked again, and its samples replace the failures
    runs.resume_run(run)
    backend = FakeBackend()
    runs.run_batches(run, backend=backend)
    run.refresh_from_db()
    assert [r.identity for r in backend.requests] == [f"proof:{bad}"]
    assert (run.status, run.done, run.failed, run.failed_by_reason) == ("done", 6, 0, {})
    assert ModelOutput.objects.filter(run=run).count() == 6


def test_a_backend_that_cannot_work_fails_every_sample_with_its_reason(proofs):
    class Broken(FakeBackend):
        def generate(self, requests):
            raise BackendError("not_installed", "no vllm here")

    run = verify_run(n=1)
    runs.run_batches(run, backend=Broken())
    run.refresh_from_db()
    assert run.failed_by_reason == {"not_installed": 3} and run.done == 0


def test_an_empty_output_is_a_failure_not_an_analysis(proofs):
    run = verify_run(n=1)
    runs.run_batches(run, backend=FakeBackend(lambda r: FakeBackend.analyses(r, text="  ")))
    run.refresh_from_db()
    assert run.failed_by_reason == {"empty_output": 3}
    assert not Analysis.objects.filter(origin="model_run").exists()


def test_cancel_stops_new_calls_between_batches(proofs, monkeypatch):
    monkeypatch.setattr(runs, "BATCH_SIZE", 1)
    run = verify_run(n=1)
    backend = FakeBackend()
    runs.run_batches(run, backend=backend, progress=runs.cancel_run)
    run.refresh_from_db()
    assert len(backend.requests) == 1
    assert (run.status, run.done, run.cancel_requested) == ("cancelled", 1, True)
    # a batch delivered after the cancellation makes no call either
    assert runs.execute_run_batch(run.pk, run.target_ids, backend=backend) == 0
    assert len(backend.requests) == 1


def test_a_meta_verify_run_assesses_the_analyses_scored_below_1(proofs):
    verify = verify_run(n=1)
    runs.run_batches(verify, backend=FakeBackend())
    perfect = Analysis.objects.filter(origin="model_run").first()
    Analysis.objects.filter(pk=perfect.pk).update(score=1)  # not meta-verified
    meta = runs.create_run(
        kind="meta_verify",
        target={"campaign": "Test campaign"},
        backend="replay",
        model="fake-model",
        sampling={"n": 2},
    )
    assert len(meta.target_ids) == 2 and perfect.pk not in meta.target_ids
    backend = FakeBackend(lambda r: FakeBackend.analyses(r, text="All real. \\boxed{1}"))
    runs.run_batches(meta, backend=backend)
    prompt = backend.requests[0].prompt[0]["content"]
    assert prompt.index("## Proof that was evaluated") < prompt.index("## The evaluation")
    outputs = ModelOutput.objects.filter(run=meta)
    assert outputs.count() == 4
    assert {(o.parse_status, o.score) for o in outputs} == {("ok", Decimal("1"))}


def test_a_generate_run_stores_proofs_with_their_self_evaluation_and_self_score(proofs, problem):
    text = "## Proof\n\nBy descent. \n\n## Self-evaluation\n\nComplete. \\boxed{1}"
    run = runs.create_run(
        kind="generate",
        target={"problems": [problem.external_id]},
        backend="replay",
        model="gen",
        sampling={"n": 2},
    )
    runs.run_batches(run, backend=FakeBackend(lambda r: FakeBackend.analyses(r, text=text)))
    made = Proof.objects.get(text="By descent.")
    assert made.self_evaluation == "Complete. \\boxed{1}" and made.self_score == 1
    assert made.generator_model == "gen" and made.metadata["model_run"] == run.pk
    # the two samples wrote the same proof: one proof, both outputs point at it
    assert set(ModelOutput.objects.filter(run=run).values_list("proof_id", flat=True)) == {made.pk}


def record_two_samples(proofs, tmp_path):
    """A replay recording holding two samples of ANALYSIS for each proof."""
    recording = tmp_path / "rec.jsonl"
    lines = (
        {"kind": "verify", "identity": f"proof:{p.content_hash}", "index": i, "text": ANALYSIS}
        for p in proofs
        for i in range(2)
    )
    recording.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return recording


def test_the_celery_tasks_run_a_replayed_verify_run(proofs, tmp_path):
    run = verify_run(n=2, backend_options={"recording": str(record_two_samples(proofs, tmp_path))})
    from proofdesk.celery import app

    app.conf.task_always_eager, eager = True, app.conf.task_always_eager
    try:
        assert tasks.start_model_run(run.pk) == 1  # one batch, run at once (eager)
    finally:
        app.conf.task_always_eager = eager
    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 6)
    assert tasks.gpu_execute_run_batch(run.pk, run.target_ids) == 0


def test_model_calls_go_to_the_gpu_queue_and_the_rest_to_cpu():
    from proofdesk.celery import app

    route = app.amqp.router.route
    assert route({}, "workers.tasks.gpu_execute_run_batch")["queue"].name == "gpu"
    assert route({}, "workers.tasks.start_model_run")["queue"].name == "cpu"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] >= 3600


def test_the_admin_lists_runs_and_outputs(admin_client, proofs):
    run = verify_run(n=1)
    runs.run_batches(run, backend=FakeBackend())
    assert admin_client.get("/admin/workers/modelrun/").status_code == 200
    assert admin_client.get("/admin/workers/modeloutput/").status_code == 200
    assert admin_client.get(f"/admin/workers/modelrun/{run.pk}/change/").status_code == 200


@pytest.mark.redis
def test_a_real_worker_on_both_queues_carries_out_a_replayed_run(
    redis_url, transactional_db, tmp_path, campaign, proofs, monkeypatch
):
    import threading

    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from proofdesk.celery import app

    assert not app.conf.task_always_eager and app.conf.broker_url == redis_url
    monkeypatch.setattr(runs, "BATCH_SIZE", 2)  # two gpu tasks
    run = verify_run(n=2, backend_options={"recording": str(record_two_samples(proofs, tmp_path))})
    batches_done = threading.Semaphore(0)

    def on_postrun(task=None, **kwargs):
        if task is not None and task.name == "workers.tasks.gpu_execute_run_batch":
            connections.close_all()  # the worker thread's own connection
            batches_done.release()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(
            app, pool="solo", queues=["cpu", "gpu"], perform_ping_check=False, shutdown_timeout=30
        ):
            tasks.start_model_run.delay(run.pk)
            for _ in range(2):
                assert batches_done.acquire(timeout=60), "the worker did not run a batch"
            tasks.gpu_execute_run_batch.delay(run.pk, run.target_ids)  # a redelivery
            assert batches_done.acquire(timeout=60)
    finally:
        task_postrun.disconnect(on_postrun)
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("done", 6, 0)
    assert ModelOutput.objects.filter(run=run).count() == 6
    assert Analysis.objects.filter(origin="model_run").count() == 6


def test_a_misconfigured_backend_fails_every_sample_with_its_reason(proofs, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    run = verify_run(n=1, backend="openai")  # no base_url: refused when first used
    runs.run_batches(run)
    run.refresh_from_db()
    assert run.failed_by_reason == {"config": 3} and run.done == 0


def test_a_target_deleted_after_the_run_was_made_is_recorded_as_missing(proofs):
    run = verify_run(n=1)
    gone = proofs[2]
    CampaignItem.objects.filter(proof=gone).delete()
    gone.delete()
    backend = FakeBackend()
    runs.run_batches(run, backend=backend)
    run.refresh_from_db()
    assert len(backend.requests) == 2
    assert (run.done, run.failed_by_reason) == (2, {"target_missing": 1})


def test_run_model_with_queue_follows_the_run_the_workers_carry_out(proofs, tmp_path):
    import io

    from django.core.management import call_command

    from proofdesk.celery import app

    recording = record_two_samples(proofs, tmp_path)
    out = io.StringIO()
    app.conf.task_always_eager, eager = True, app.conf.task_always_eager
    try:
        call_command(
            "run_model", "--kind", "verify", "--campaign", "Test campaign", "--backend", "replay",
            "--model", "judge", "--n", "2", "--option", f"recording={recording}", "--queue",
            "--no-progress", stdout=out,
        )  # fmt: skip
    finally:
        app.conf.task_always_eager = eager
    run = ModelRun.objects.get()
    assert f"run {run.pk} queued: 6 samples" in out.getvalue()
    assert f"run {run.pk} done: 6/6 samples stored" in out.getvalue()


def test_run_model_with_queue_and_detach_returns_at_once(proofs, monkeypatch):
    import io

    from django.core.management import call_command

    queued = []
    monkeypatch.setattr(tasks.start_model_run, "delay", queued.append)
    out = io.StringIO()
    call_command(
        "run_model", "--kind", "verify", "--campaign", "Test campaign", "--backend", "replay",
        "--model", "judge", "--queue", "--detach", stdout=out,
    )  # fmt: skip
    run = ModelRun.objects.get()
    assert queued == [run.pk] and run.status == "pending"
    assert out.getvalue().strip() == f"run {run.pk} queued: 3 samples, campaign Test campaign"


def test_the_openai_backend_makes_no_call_once_the_request_should_stop():
    from bench.openai_stub import start_in_thread
    from workers.backends import Sampling
    from workers.backends.openai import OpenAIBackend

    stub, server = start_in_thread()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        backend = OpenAIBackend("m", base_url=base_url, backoff_base_s=0.01)
        chat = [{"role": "user", "content": "Judge this."}]
        asked = [
            GenerationRequest(prompt=chat, sampling=Sampling(), should_stop=lambda: False),
            GenerationRequest(prompt=chat, sampling=Sampling(), should_stop=lambda: True),
        ]
        going, stopped = backend.generate(asked)
    finally:
        server.shutdown()
    assert going.ok and stub.stats()["requests"] == 1
    assert stopped.error is not None and stopped.error.reason == "cancelled"
