"""A vLLM server's own figures, read from its Prometheus `/metrics` endpoint.

vLLM counts per sub-request (each of a request's n samples is one): how many prompt
tokens it looked up in its prefix cache (`vllm:prefix_cache_queries_total`) and how many it
found there (`vllm:prefix_cache_hits_total`), prompt tokens in all
(`vllm:prompt_tokens_total`) and those read from the cache rather than computed
(`vllm:prompt_tokens_by_source_total{source="local_cache_hit"}`, or the older
`vllm:prompt_tokens_cached_total`), and finished requests (`vllm:request_success_total`).
Counters only grow: a run's figures are the difference between two readings
(`EngineFigures.since`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import httpx

from workers.backends import BackendError

_SAMPLE = re.compile(r"^(vllm:[a-zA-Z_:]+)(\{[^}]*\})? ([-+0-9.eE]+|NaN|[-+]Inf)$")
_SOURCE = re.compile(r'source="([a-z_]+)"')


def read_metrics(base_url: str, *, timeout_s: float = 10.0) -> dict[str, float]:
    """Every `vllm:` sample, summed over its labels except `source` (kept as `{source}`).

    `base_url` is the server (`http://host:port`) or its OpenAI API (`.../v1`)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        response = httpx.get(f"{root}/metrics", timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BackendError("connection", f"{root}/metrics: {exc!r}") from exc
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name = match.group(1)
        if source := _SOURCE.search(match.group(2) or ""):
            name += "{" + source.group(1) + "}"
        values[name] = values.get(name, 0.0) + float(match.group(3))
    return values


@dataclass(frozen=True, slots=True)
class EngineFigures:
    prefix_queries: float = 0.0  # prompt tokens looked up in the prefix cache
    prefix_hits: float = 0.0  # of those, found there
    prompt_tokens: float = 0.0
    cached_prompt_tokens: float = 0.0
    requests: float = 0.0  # finished sub-requests (one per sample)
    generation_tokens: float = 0.0

    @classmethod
    def read(cls, base_url: str) -> EngineFigures:
        m = read_metrics(base_url)
        cached = m.get("vllm:prompt_tokens_by_source_total{local_cache_hit}")
        return cls(
            prefix_queries=m.get("vllm:prefix_cache_queries_total", 0.0),
            prefix_hits=m.get("vllm:prefix_cache_hits_total", 0.0),
            prompt_tokens=m.get("vllm:prompt_tokens_total", 0.0),
            cached_prompt_tokens=(
                cached if cached is not None else m.get("vllm:prompt_tokens_cached_total", 0.0)
            ),
            requests=m.get("vllm:request_success_total", 0.0),
            generation_tokens=m.get("vllm:generation_tokens_total", 0.0),
        )

    def since(self, earlier: EngineFigures) -> EngineFigures:
        """What happened between `earlier` and this reading."""
        return EngineFigures(
            **{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        )

    @property
    def hit_rate(self) -> float:
        return self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0

    def describe(self) -> str:
        return (
            f"prefix_queries={self.prefix_queries:.0f} prefix_hits={self.prefix_hits:.0f} "
            f"hit_rate={self.hit_rate:.3f} prompt_tokens={self.prompt_tokens:.0f} "
            f"cached_prompt_tokens={self.cached_prompt_tokens:.0f} "
            f"engine_requests={self.requests:.0f}"
        )
