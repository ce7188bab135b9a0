"""`manage.py gpu_worker`: starts the engine's server with the given interpreter and flags,
waits for /health, then a Celery worker on the gpu queue pointed at it; SIGTERM stops both.

The interpreter is a fake: a script that writes down its arguments and serves /health and
the OpenAI endpoints with bench/openai_stub.py (no real vLLM needed)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workers.management.commands.gpu_worker import VLLM_MODULE

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def fake_interpreter(tmp_path: Path, startup_delay_s: float = 1.5) -> tuple[Path, Path]:
    argv_file = tmp_path / "argv.txt"
    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > {argv_file}\n"
        'shift 2  # "-m vllm.entrypoints.openai.api_server"\n'
        f"exec {sys.executable} {ROOT / 'bench' / 'openai_stub.py'} "
        f'--startup-delay-s {startup_delay_s} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, argv_file


class Lines:
    """Every line the command (and its children) print, read from a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                self._queue.put(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} not printed; got:\n" + "\n".join(self.seen[-40:]))

    def drain(self, timeout: float = 2) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.seen.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                pass
        return self.seen


def index_of(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


def start_gpu_worker(args: list[str]) -> tuple[subprocess.Popen[str], Lines]:
    # No broker: the worker must start and stop, never take a task another test left queued.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": ""}
    env.setdefault("SECRET_KEY_FILE", str(ROOT / "var" / "secret_key"))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "gpu_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, Lines(process)


def test_it_starts_the_engine_waits_for_health_then_the_worker_and_stops_both_on_sigterm(
    tmp_path,
):
    python, argv_file = fake_interpreter(tmp_path)
    port = free_port()
    process, lines = start_gpu_worker(
        [
            "--model", "/models/tiny-llama",
            "--python", str(python),
            "--tensor-parallel-size", "2",
            "--pipeline-parallel-size", "3",
            "--enable-expert-parallel",
            "--port", str(port),
            "--concurrency", "3",
            "--stop-timeout", "30",
        ]
    )  # fmt: skip
    try:
        lines.wait_for("vllm: healthy after")
        lines.wait_for(f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1")
        lines.wait_for("ready.")  # Celery's own line once the worker consumes
        assert port_open(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    seen = lines.drain()

    # Passed through exactly, to the module rather than the console script.
    argv = argv_file.read_text().splitlines()
    assert argv[:2] == ["-m", VLLM_MODULE]
    assert argv[argv.index("--model") + 1] == "/models/tiny-llama"
    assert argv[argv.index("--port") + 1] == str(port)
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "3"
    assert "--enable-expert-parallel" in argv

    # Engine first, healthy (it answered 503 for 1.5 s), then the worker on the gpu queue
    # with the asked concurrency; on SIGTERM the worker stops first, then the engine.
    healthy = seen[index_of(seen, "vllm: healthy after")]
    assert float(healthy.split("after ")[1].rstrip("s")) >= 1.0
    assert index_of(seen, "vllm: starting") < index_of(seen, "vllm: healthy")
    assert index_of(seen, "vllm: healthy") < index_of(seen, "worker: starting")
    assert any(".> gpu" in line for line in seen), "the worker does not consume the gpu queue"
    assert any("concurrency: 3 (thread)" in line for line in seen)
    assert index_of(seen, "worker: stopped") < index_of(seen, "vllm: stopping")
    assert index_of(seen, "vllm: stopping") < index_of(seen, "stub stopped")
    assert "vllm: stopped (status 0)" in seen
    assert not port_open(port)


def test_an_engine_that_exits_before_it_is_healthy_is_a_clear_error_and_no_worker_starts(
    tmp_path,
):
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'No module named vllm' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    process, lines = start_gpu_worker(
        ["--model", "m", "--python", str(broken), "--port", str(free_port())]
    )
    assert process.wait(timeout=60) == 1
    seen = lines.drain()
    assert any("vllm exited with status 3 before healthy" in line for line in seen), seen
    assert not any("worker: starting" in line for line in seen)


@pytest.mark.parametrize("bad", [["--concurrency", "0"], ["--tensor-parallel-size", "-1"]])
def test_bad_sizes_are_refused_before_anything_starts(tmp_path, bad):
    python, argv_file = fake_interpreter(tmp_path)
    process, lines = start_gpu_worker(["--model", "m", "--python", str(python), *bad])
    assert process.wait(timeout=60) != 0
    assert not argv_file.exists()
    assert any("invalid positive integer value" in line for line in lines.drain())
