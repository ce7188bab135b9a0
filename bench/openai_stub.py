"""A local OpenAI-compatible stub server: a stand-in for `vllm serve` in tests and benches.

    python bench/openai_stub.py --port 8001 [--latency-s 0.5] [--concurrency 16]

It answers `GET /health`, `GET /v1/models`, `POST /v1/chat/completions` and
`POST /v1/completions` (n choices per request, with usage), after a fixed latency, with at
most `--concurrency` requests served at once (the rest wait, first come first served, as
on an engine whose batch is full). A prompt containing `STUB-500` is answered with HTTP
500 and one containing `STUB-HANG` is held for `--hang-s` seconds (longer than a client's
timeout), so a test can make chosen targets fail. `GET /stub/stats` says how many
completion requests arrived, how many were in flight at most, and when the first and the
last one arrived.

Unknown arguments are ignored, so it can stand in for
`python -m vllm.entrypoints.openai.api_server --model PATH --tensor-parallel-size 2 ...`.
`--startup-delay-s` makes /health answer 503 for a while, as a loading engine does.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "The argument is complete and every step follows.\n\n\\boxed{1}"


class FifoSlots:
    """At most `size` holders at once, served in the order they asked (first come, first
    served, as vLLM's scheduler admits requests); `threading.Semaphore` wakes waiters in
    no particular order, which would model an engine no one runs."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiting: deque[threading.Event] = deque()
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            if self.free and not self.waiting:
                self.free -= 1
                return
            turn = threading.Event()
            self.waiting.append(turn)
        turn.wait()  # the slot is handed over by the holder that leaves

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            if self.waiting:
                self.waiting.popleft().set()
            else:
                self.free += 1


class Stub:
    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        concurrency: int = 64,
        hang_s: float = 30.0,
        startup_delay_s: float = 0.0,
        model: str = "stub-model",
    ) -> None:
        self.latency_s = latency_s
        self.slots = FifoSlots(concurrency)
        self.hang_s = hang_s
        self.ready_at = time.monotonic() + startup_delay_s
        self.model = model
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_request_at = 0.0  # time.time() of the first completion request
        self.last_request_at = 0.0  # and of the last

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "first_request_at": self.first_request_at,
                "last_request_at": self.last_request_at,
            }

    def complete(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
            self.last_request_at = time.time()
            self.first_request_at = self.first_request_at or self.last_request_at
        prompt = json.dumps(body.get("messages") or body.get("prompt") or "")
        if "STUB-500" in prompt:
            return 500, {"error": {"message": "stub: internal error"}}
        with self.slots:
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                time.sleep(self.hang_s if "STUB-HANG" in prompt else self.latency_s)
            finally:
                with self.lock:
                    self.in_flight -= 1
        n = int(body.get("n") or 1)
        if path.endswith("/chat/completions"):
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
                for i in range(n)
            ]
        else:
            choices = [{"index": i, "text": ANSWER, "finish_reason": "stop"} for i in range(n)]
        usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": 12 * n}
        return 200, {"object": "chat.completion", "model": body.get("model"), "choices": choices,
                     "usage": usage}  # fmt: skip

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/health":
                    ready = time.monotonic() >= stub.ready_at
                    self._json(200 if ready else 503, {})
                elif self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": stub.model}]})
                elif self.path == "/stub/stats":
                    self._json(200, stub.stats())
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "bad json"}})
                    return
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                status, data = stub.complete(self.path, body)
                try:
                    self._json(status, data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout)

            def _json(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((host, port), self.handler())
        server.daemon_threads = True
        server.request_queue_size = 1024
        return server


def start_in_thread(port: int = 0, **options: Any) -> tuple[Stub, ThreadingHTTPServer]:
    """A stub serving from a daemon thread of this process (tests); `server.shutdown()`."""
    stub = Stub(**options)
    server = stub.serve("127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub, server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="stub-model")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--startup-delay-s", type=float, default=0.0)
    args, _ignored = parser.parse_known_args(argv)
    stub = Stub(
        latency_s=args.latency_s,
        concurrency=args.concurrency,
        hang_s=args.hang_s,
        startup_delay_s=args.startup_delay_s,
        model=args.model,
    )
    server = stub.serve(args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"stub serving on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("stub stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
