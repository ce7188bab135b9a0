"""Inference backends: the registry, the openai backend against a local stub server (200s,
500s, 429s, slow answers), the replay backend and a vllm backend without vllm."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from workers.backends import (
    BACKENDS,
    BackendError,
    GenerationRequest,
    Sampling,
    backend_class,
    get_backend,
)
from workers.backends.openai import OpenAIBackend
from workers.backends.replay import ReplayBackend


class StubServer:
    """An OpenAI-compatible stub on 127.0.0.1. `script` is a list of what to answer, in
    turn ("ok", 500, 429, ("slow", seconds)); once used up, it answers "ok"."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.bodies.append(body)
                    stub.paths.append(self.path)
                    step = stub.script.pop(0) if stub.script else "ok"
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    time.sleep(stub.delay_s)
                    if isinstance(step, tuple):
                        time.sleep(step[1])
                        step = "ok"
                    if step == "ok":
                        self._json(200, stub.completion(body))
                    else:
                        self._json(step, {"error": {"message": f"stub {step}"}})
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

            def _json(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def completion(body: dict[str, Any]) -> dict[str, Any]:
        n = body.get("n", 1)
        chat = "messages" in body
        choices = []
        for i in reversed(range(n)):  # out of order: the backend sorts by index
            text = f"sample {i} \\boxed{{1}}"
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop"}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choices.append(choice)
        return {"choices": choices, "usage": {"prompt_tokens": 11, "completion_tokens": 5 * n}}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def backend(stub: StubServer, **options: Any) -> OpenAIBackend:
    defaults = {"backoff_base_s": 0.01, "backoff_max_s": 0.04, "timeout_s": 5.0, "max_retries": 3}
    return OpenAIBackend("tiny", base_url=stub.url, **{**defaults, **options})


def chat(n: int = 1, **sampling: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt=[{"role": "user", "content": "Prove it."}], sampling=Sampling(n=n, **sampling)
    )


def test_registry_names_every_backend_and_loads_it_lazily():
    assert set(BACKENDS) == {"openai", "replay", "vllm"}
    assert backend_class("openai") is OpenAIBackend
    assert backend_class("replay") is ReplayBackend


def test_an_unknown_backend_is_a_backend_error_naming_the_known_ones():
    with pytest.raises(BackendError) as caught:
        get_backend("nope", "m")
    assert caught.value.reason == "unknown_backend"
    assert "openai" in str(caught.value)


@pytest.mark.parametrize("bad", [{"n": 0}, {"n": -1}, {"max_tokens": 0}, {"top_p": 0}])
def test_bad_sampling_is_refused(bad):
    with pytest.raises(BackendError) as caught:
        Sampling(**bad)
    assert caught.value.reason == "config"


def test_it_returns_n_outputs_in_index_order_with_usage(stub):
    [result] = backend(stub).generate([chat(n=4, seed=7, temperature=0.6)])
    assert result.ok
    assert [o.index for o in result.outputs] == [0, 1, 2, 3]
    assert result.outputs[2].text == "sample 2 \\boxed{1}"
    assert result.outputs[0].finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 20)
    assert result.latency_s > 0
    [body] = stub.bodies
    assert stub.paths == ["/v1/chat/completions"]
    assert body["n"] == 4 and body["seed"] == 7 and body["temperature"] == 0.6
    assert body["model"] == "tiny"


def test_plain_text_goes_to_completions_and_a_regex_as_structured_outputs(stub):
    regex = r"[\s\S]*\\boxed\{(0|0\.5|1)\}"
    request = GenerationRequest(prompt="Prove it.", sampling=Sampling(structured_regex=regex))
    [result] = backend(stub).generate([request])
    assert result.ok and result.outputs[0].text.startswith("sample 0")
    assert stub.paths == ["/v1/completions"]
    assert stub.bodies[0]["structured_outputs"] == {"regex": regex}
    assert "guided_regex" not in stub.bodies[0]


def test_500s_and_429s_are_retried_then_succeed(stub):
    stub.script = [500, 429, 503]
    [result] = backend(stub).generate([chat()])
    assert result.ok
    assert result.attempts == 4
    assert len(stub.bodies) == 4


def test_persistent_500s_are_recorded_as_a_failure_with_the_reason_after_bounded_backoff(stub):
    stub.script = [500] * 10
    started = time.monotonic()
    [result] = backend(stub, max_retries=3).generate([chat()])
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.error.reason == "server_error"
    assert "HTTP 500" in result.error.message
    assert result.attempts == 4 and len(stub.bodies) == 4
    # waits 0.01 + 0.02 + 0.04 (capped): well under a second
    assert elapsed < 1.5


def test_backoff_doubles_and_is_capped_and_honours_retry_after_within_the_cap():
    b = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", backoff_base_s=1, backoff_max_s=5)
    assert [b.backoff_s(a) for a in range(5)] == [1, 2, 4, 5, 5]
    assert b.backoff_s(0, retry_after="3") == 3
    assert b.backoff_s(0, retry_after="60") == 5


def test_a_slow_answer_times_out_is_retried_and_the_failure_says_timeout(stub):
    stub.script = [("slow", 1.0), ("slow", 1.0)]
    [result] = backend(stub, timeout_s=0.2, max_retries=1).generate([chat()])
    assert not result.ok and result.error.reason == "timeout"
    assert result.attempts == 2


def test_a_slow_answer_then_a_good_one_succeeds(stub):
    stub.script = [("slow", 1.0)]
    [result] = backend(stub, timeout_s=0.3, max_retries=2).generate([chat(n=2)])
    assert result.ok and len(result.outputs) == 2


def test_a_400_is_not_retried(stub):
    stub.script = [400]
    [result] = backend(stub).generate([chat()])
    assert result.error.reason == "bad_request" and result.attempts == 1


def test_one_failing_request_does_not_fail_the_others_and_concurrency_is_bounded(stub):
    stub.delay_s = 0.05
    stub.script = [400]
    results = backend(stub, concurrency=3).generate([chat(n=2) for _ in range(9)])
    assert sum(not r.ok for r in results) == 1
    assert all(len(r.outputs) == 2 for r in results if r.ok)
    assert stub.max_in_flight <= 3


def test_an_unreachable_server_is_a_connection_failure():
    b = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_base_s=0.01)
    [result] = b.generate([chat()])
    assert result.error.reason == "connection"


def test_a_short_answer_is_a_bad_response(stub, monkeypatch):
    monkeypatch.setattr(StubServer, "completion", staticmethod(lambda body: {"choices": []}))
    [result] = backend(stub).generate([chat(n=2)])
    assert result.error.reason == "bad_response"


def test_the_openai_backend_needs_a_base_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError) as caught:
        OpenAIBackend("m")
    assert caught.value.reason == "config"


def write_recording(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_replay_answers_recorded_samples_by_kind_identity_and_index(tmp_path):
    recording = write_recording(
        tmp_path / "r.jsonl",
        [{"kind": "verify", "identity": "proof:a", "index": i, "text": f"t{i}"} for i in range(3)],
    )
    replay = ReplayBackend("m", recording=recording)
    ask = GenerationRequest(prompt="x", sampling=Sampling(n=3), kind="verify", identity="proof:a")
    [result] = replay.generate([ask])
    assert [o.text for o in result.outputs] == ["t0", "t1", "t2"]
    assert result.outputs[0].finish_reason == "stop"


def test_replay_refuses_to_make_up_a_sample_it_has_not_recorded(tmp_path):
    recording = write_recording(
        tmp_path / "r.jsonl", [{"kind": "verify", "identity": "proof:a", "index": 0, "text": "t"}]
    )
    replay = ReplayBackend("m", recording=recording)
    more = GenerationRequest(prompt="x", sampling=Sampling(n=2), kind="verify", identity="proof:a")
    other = GenerationRequest(prompt="x", sampling=Sampling(), kind="verify", identity="proof:b")
    results = replay.generate([more, other])
    assert [r.error.reason for r in results] == ["not_recorded", "not_recorded"]


def test_a_broken_recording_is_a_config_error(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"kind": "verify"}\n')
    replay = ReplayBackend("m", recording=tmp_path / "r.jsonl")
    with pytest.raises(BackendError) as caught:
        replay.generate([GenerationRequest(prompt="x", sampling=Sampling())])
    assert caught.value.reason == "config" and "line 1" in str(caught.value)


def test_the_vllm_backend_without_vllm_is_a_clear_not_installed_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what an interpreter without vllm sees
    vllm_backend = get_backend("vllm", "some/model")
    with pytest.raises(BackendError) as caught:
        vllm_backend.generate([chat()])
    assert caught.value.reason == "not_installed"
    assert "openai backend" in caught.value.message
