"""Orchestration benchmark (issue 10): how close the Celery path comes to the engine's limit.

    .venv/bin/python bench/orchestration_bench.py            # 2,000 requests
    .venv/bin/python bench/orchestration_bench.py --quick    # 400 requests, under a minute

1. Creates a scratch database (`proofdesk_bench_orchestration` on the server of
   DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres) and migrates it;
   empties the `gpu` and `cpu` queues of REDIS_URL (default redis://127.0.0.1:6379/0:
   give the bench a Redis database of its own).
2. Starts bench/openai_stub.py: an OpenAI-compatible server answering every request after
   `--latency-s`, at most `--concurrency` C at once (the rest wait, as on an engine whose
   batch is full). Its ceiling is C / latency requests per second (`ideal_per_s`).
3. Starts a real Celery worker process on both queues (threads pool, enough threads that
   4C requests are asked for at once, so the engine stays full while batches are stored)
   and a verify run of N proofs with n = 1 on the openai backend: N requests, through
   `start_model_run` and the gpu batches, every answer stored, parsed and turned into an
   analysis.
4. Times from queueing the run to its last stored batch, and prints
   `RESULT requests_per_s=... ideal_per_s=... ratio_to_ideal=... overhead_ms=...`, where
   overhead_ms is the time each of the C engine slots spent per request beyond the
   latency (waiting for the orchestration). Drops the database (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "proofdesk_bench_orchestration"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_database(server_url: str) -> str:
    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def drop_database(server_url: str) -> None:
    admin = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 requests")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency-s", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32, help="the engine's cap C")
    parser.add_argument("--threads", type=int, help="worker threads (default: 4C / batch size)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    requests = 400 if args.quick else args.requests
    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    database_url = scratch_database(server_url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_SETTINGS_MODULE": "proofdesk.settings",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SECRET_KEY_FILE", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import redis

    from annotate.models import Campaign, CampaignItem, Problem, Proof, content_hash
    from workers import runs, tasks

    redis.Redis.from_url(redis_url).delete("gpu", "cpu", "unacked", "unacked_index")
    problem = Problem.objects.create(external_id="BENCH-1", statement="Prove that $1 + 1 = 2$.")
    campaign = Campaign.objects.create(name="Orchestration bench")
    texts = [f"Proof {i}: by definition $1 + 1 = 2$." for i in range(requests)]
    proofs = Proof.objects.bulk_create(
        Proof(problem=problem, text=text, content_hash=content_hash(text)) for text in texts
    )
    CampaignItem.objects.bulk_create(CampaignItem(campaign=campaign, proof=p) for p in proofs)

    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "openai_stub.py"), "--port", str(port),
         "--latency-s", str(args.latency_s), "--concurrency", str(args.concurrency)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    threads = args.threads or max(2, math.ceil(4 * args.concurrency / runs.BATCH_SIZE))
    worker_log = open(ROOT / "var" / "orchestration_bench_worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "proofdesk", "worker", "-Q", "gpu,cpu",
         "-P", "threads", "-c", str(threads), "-n", f"bench-{port}@%h",
         "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        from proofdesk.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start (var/orchestration_bench_worker.log)")
        run = runs.create_run(
            kind="verify",
            target={"campaign": campaign.name},
            backend="openai",
            model="stub-model",
            sampling={"n": 1, "max_tokens": 64},
            backend_options={
                "base_url": f"http://127.0.0.1:{port}/v1",
                "concurrency": runs.BATCH_SIZE,
                "timeout_s": 60,
            },
        )
        started, started_at = time.monotonic(), time.time()
        tasks.start_model_run.delay(run.pk)
        while True:
            run.refresh_from_db(fields=["status", "done", "failed"])
            if run.status == "done" or worker.poll() is not None:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stub/stats", timeout=5) as answer:
            stats = json.load(answer)
        first_call_s = stats["first_request_at"] - started_at
        after_last_call_s = started_at + elapsed - stats["last_request_at"]
    finally:
        for process in (worker, stub):
            process.send_signal(signal.SIGTERM)
        for process in (worker, stub):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        worker_log.close()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(server_url)
    if run.status != "done" or run.failed:
        raise SystemExit(f"the run ended {run.status} with {run.failed} failed samples")
    per_s = requests / elapsed
    ideal = args.concurrency / args.latency_s
    overhead_ms = (elapsed * args.concurrency / requests - args.latency_s) * 1000
    print(
        f"config requests={requests} latency_s={args.latency_s} concurrency={args.concurrency} "
        f"worker_threads={threads} batch_size={runs.BATCH_SIZE} elapsed_s={elapsed:.2f} "
        f"first_call_s={first_call_s:.2f} after_last_call_s={after_last_call_s:.2f} "
        f"max_in_flight={stats['max_in_flight']}"
    )
    print(
        f"RESULT requests_per_s={per_s:.2f} ideal_per_s={ideal:.2f} "
        f"ratio_to_ideal={per_s / ideal:.3f} overhead_ms={overhead_ms:.1f}"
    )


if __name__ == "__main__":
    main()
