"""Reading a vLLM server's /metrics (workers/engine_metrics.py), from a local HTTP server
that answers what vLLM 0.32 writes. The real server is read in tests/test_vllm_cpu.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workers.backends import BackendError
from workers.engine_metrics import EngineFigures, read_metrics

METRICS = """\
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} %(queries)s
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} %(hits)s
vllm:prompt_tokens_total{engine="0",model_name="tiny"} %(queries)s
vllm:prompt_tokens_by_source_total{engine="0",model_name="tiny",source="local_compute"} 5200.0
vllm:prompt_tokens_by_source_total{engine="0",model_name="tiny",source="local_cache_hit"} %(hits)s
vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 78.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 2.0
vllm:generation_tokens_total{engine="0",model_name="tiny"} 1.2e3
vllm:request_prefill_kv_computed_tokens_bucket{engine="0",le="+Inf",model_name="tiny"} 80.0
python_gc_objects_collected_total{generation="0"} 123.0
"""


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, dict[str, str]]]:
    values = {"queries": "14800.0", "hits": "9600.0"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = (METRICS % values).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", values
    finally:
        server.shutdown()
        server.server_close()


def test_counters_are_summed_over_labels_but_source(metrics_server):
    base, _ = metrics_server
    values = read_metrics(f"{base}/v1")  # the OpenAI base URL works as well as the server's
    assert values["vllm:prefix_cache_queries_total"] == 14800
    assert values["vllm:request_success_total"] == 80  # stop + length
    assert values["vllm:prompt_tokens_by_source_total{local_cache_hit}"] == 9600
    assert values["vllm:prompt_tokens_by_source_total{local_compute}"] == 5200
    assert values["vllm:generation_tokens_total"] == 1200
    assert not any(name.startswith("python_") for name in values)


def test_figures_of_a_run_are_the_difference_of_two_readings(metrics_server):
    base, values = metrics_server
    before = EngineFigures.read(base)
    assert (before.prefix_queries, before.prefix_hits, before.requests) == (14800, 9600, 80)
    assert before.cached_prompt_tokens == 9600
    assert before.hit_rate == pytest.approx(9600 / 14800)
    values.update(queries="15800.0", hits="10350.0")
    run = EngineFigures.read(base).since(before)
    assert (run.prefix_queries, run.prefix_hits, run.requests) == (1000, 750, 0)
    assert run.hit_rate == 0.75
    assert "hit_rate=0.750" in run.describe()
    assert EngineFigures().hit_rate == 0.0  # no queries: no rate, no division by zero


def test_a_server_without_metrics_is_a_backend_error(metrics_server):
    base, _ = metrics_server
    with pytest.raises(BackendError) as error:
        read_metrics(f"{base}/nothing-here", timeout_s=2)
    assert error.value.reason == "connection"
