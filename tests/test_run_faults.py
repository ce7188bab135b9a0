"""Model runs under faults, with a real Celery worker process, the Redis broker and
PostgreSQL (mandatory in CI; skipped with the reason elsewhere), against a local
OpenAI-compatible stub server (bench/openai_stub.py) with a fixed latency:

- the worker is killed with SIGKILL in the middle of a run and started again: the run
  finishes with exactly n stored outputs per target, none lost or duplicated;
- a backend answering 500s and timeouts is retried, then the sample is recorded as failed
  with the reason, and the run completes for the other targets;
- a cancelled run makes no new model call within seconds.

The worker runs with a visibility timeout of a few seconds (CELERY_VISIBILITY_TIMEOUT_S),
so the batch the killed worker held comes back quickly; batches that outlast it are also
delivered twice while running, which the run's unique key makes harmless. (Outside a
worker's start, Celery's Redis transport looks for such messages only every 100 s; in
production, resuming the run re-queues its batches at once.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from annotate.models import CampaignItem, Proof
from bench.openai_stub import Stub, start_in_thread
from verification.models import Analysis
from workers import runs, tasks
from workers.models import ModelOutput, ModelRun

pytestmark = [pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT_S = 3


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A proofdesk worker -Q gpu,cpu` in its own process, on the test database."""

    def __init__(self, log: Path, concurrency: int = 1) -> None:
        self.log_path, self.concurrency = log, concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
            "PYTHONUNBUFFERED": "1",
        }
        env.setdefault("SECRET_KEY_FILE", str(ROOT / "var" / "secret_key"))
        command = [
            sys.executable, "-m", "celery", "-A", "proofdesk", "worker", "-Q", "gpu,cpu",
            "-P", "threads", "-c", str(self.concurrency), "-n", f"faults-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def broker(redis_url, on_postgres) -> Iterator[None]:
    """Empty queues (and no message left unacknowledged by an earlier test)."""
    client = redis.Redis.from_url(redis_url)
    keys = ("gpu", "cpu", "unacked", "unacked_index", "unacked_mutex")
    client.delete(*keys)
    yield
    client.delete(*keys)


@pytest.fixture
def worker(broker, tmp_path) -> Iterator[Worker]:
    started = Worker(tmp_path / "worker.log")
    yield started
    started.kill()


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    server_stub, server = start_in_thread(latency_s=1.0, hang_s=4.0)
    yield server_stub, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def make_proofs(campaign, problem, texts: list[str]) -> list[Proof]:
    made = [Proof.objects.create(problem=problem, text=text) for text in texts]
    CampaignItem.objects.bulk_create(CampaignItem(campaign=campaign, proof=p) for p in made)
    return made


def openai_run(base_url: str, n: int, **options: object) -> ModelRun:
    return runs.create_run(
        kind="verify",
        target={"campaign": "Test campaign"},
        backend="openai",
        model="stub-model",
        sampling={"n": n, "max_tokens": 64},
        backend_options={
            "base_url": base_url,
            "timeout_s": 1.5,
            "max_retries": 2,
            "backoff_base_s": 0.1,
            **options,
        },
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.process is None or worker.process.poll() is None, worker.log()
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{worker.log()}")


def status_of(run: ModelRun) -> str:
    return ModelRun.objects.values_list("status", flat=True).get(pk=run.pk)


def test_a_worker_killed_mid_run_and_restarted_finishes_with_exactly_n_per_target(
    transactional_db, campaign, problem, worker, stub
):
    server_stub, base_url = stub
    make_proofs(campaign, problem, [f"Proof {i}: $p^2 = 2q^2$." for i in range(23)])
    run = openai_run(base_url, n=2)
    assert len(run.target_ids) == 24 and len(runs.batches(run)) == 3
    worker.start()
    tasks.start_model_run.delay(run.pk)

    # Kill it while the second batch's requests are with the engine (the first is stored).
    first_batch = runs.BATCH_SIZE * 2
    wait_until(
        lambda: run.outputs.count() >= first_batch
        and server_stub.stats()["requests"] > runs.BATCH_SIZE,
        90,
        "the second batch to be in flight",
        worker,
    )
    worker.kill()
    killed_with = run.outputs.count()
    assert killed_with < run.total  # killed mid-run, not after

    # The broker hands back a message whose worker vanished once it has gone unacknowledged
    # for the visibility timeout; a worker looks for such messages when it starts (then only
    # every 100 s), so start it once the killed batch is that old.
    client = redis.Redis.from_url(settings.REDIS_URL)
    held = client.zrange("unacked_index", 0, -1, withscores=True)
    assert held, "the killed worker held no unacknowledged batch"
    oldest = min(score for _, score in held)
    time.sleep(max(0.0, oldest + VISIBILITY_TIMEOUT_S + 0.5 - time.time()))
    worker.start()
    wait_until(lambda: status_of(run) == "done", 120, "the run to finish", worker)
    run.refresh_from_db()
    per_target = Counter(ModelOutput.objects.filter(run=run).values_list("target_id", flat=True))
    assert per_target == {target: 2 for target in run.target_ids}
    keys = set(ModelOutput.objects.filter(run=run).values_list("target_id", "sample_index"))
    assert keys == {(t, i) for t in run.target_ids for i in range(2)}
    assert (run.done, run.failed, run.total) == (48, 0, 48)
    assert Analysis.objects.filter(import_source=f"model run {run.pk}").count() == 48


def test_500s_and_timeouts_are_retried_then_recorded_failed_and_the_run_completes(
    transactional_db, campaign, problem, worker, stub
):
    server_stub, base_url = stub
    failing = ["The engine fails on this one: STUB-500.", "No answer in time: STUB-HANG."]
    make_proofs(campaign, problem, failing)
    run = openai_run(base_url, n=2)
    worker.start()
    tasks.start_model_run.delay(run.pk)
    wait_until(lambda: status_of(run) == "done", 90, "the run to finish", worker)
    run.refresh_from_db()
    assert (run.done, run.failed) == (2, 4)
    assert run.failed_by_reason == {"server_error": 2, "timeout": 2}
    failed = {
        o.error_reason: o.error_message for o in run.outputs.exclude(error_reason="")
    }
    assert "HTTP 500" in failed["server_error"] and "timeout" in failed["timeout"]
    # Each failing request was tried 1 + max_retries times; the good one once.
    assert server_stub.stats()["requests"] == 1 + 3 + 3


def test_a_cancelled_run_makes_no_new_model_call_within_seconds(
    transactional_db, campaign, problem, worker, stub
):
    server_stub, base_url = stub
    make_proofs(campaign, problem, [f"Proof {i}." for i in range(39)])
    run = openai_run(base_url, n=1)
    worker.start()
    tasks.start_model_run.delay(run.pk)
    wait_until(lambda: run.outputs.count() >= 1, 90, "a first stored batch", worker)
    cancelled_at = time.time()
    runs.cancel_run(run)
    time.sleep(4)  # the batch in flight (1 s of latency) ends; nothing new may start
    after_cancel = server_stub.stats()
    time.sleep(2)
    assert server_stub.stats()["requests"] == after_cancel["requests"]
    assert after_cancel["last_request_at"] < cancelled_at + 2
    assert after_cancel["requests"] < len(run.target_ids)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.outputs.count() < run.total


def test_a_cancel_also_stops_the_retries_of_a_batch_already_with_the_backend(
    transactional_db, campaign, problem, worker, stub
):
    server_stub, base_url = stub
    make_proofs(campaign, problem, ["The engine keeps failing on this one: STUB-500."])
    # About 30 s of retries if nothing stops them.
    run = openai_run(base_url, n=1, max_retries=30, backoff_base_s=1.0, backoff_max_s=1.0)
    worker.start()
    tasks.start_model_run.delay(run.pk)
    wait_until(lambda: server_stub.stats()["requests"] >= 2, 60, "a retry", worker)
    cancelled_at = time.time()
    runs.cancel_run(run)
    wait_until(
        lambda: run.outputs.filter(error_reason="cancelled").exists(),
        30,
        "the batch to stop",
        worker,
    )
    stopped = server_stub.stats()
    assert stopped["last_request_at"] < cancelled_at + runs.CANCEL_POLL_S + 1.5
    assert stopped["requests"] < 10
    run.refresh_from_db()
    # The campaign's other proof was answered at once; the failing one stopped retrying.
    assert run.failed_by_reason == {"cancelled": 1} and run.status == "cancelled"
