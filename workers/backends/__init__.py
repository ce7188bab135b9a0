"""Inference backends: one module each, behind one interface and one error type.

A backend takes a batch of `GenerationRequest`s (a prompt, chat messages or plain text, and
its `Sampling`) and returns one `GenerationResult` per request, in the same order: the n
outputs of that request, each with its raw text, finish reason, token counts and latency,
or the `BackendError` that request ended with. A request that fails never fails the batch;
only a backend that cannot work at all (not installed, misconfigured) raises.

Backends are named in `BACKENDS` and imported only when asked for (`get_backend`), so the
project runs without vLLM installed. Tests substitute this interface (a class with a
`generate`), never a backend's internals.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

# name -> "module:Class"; imported on first use.
BACKENDS = {
    "openai": "workers.backends.openai:OpenAIBackend",
    "replay": "workers.backends.replay:ReplayBackend",
    "vllm": "workers.backends.vllm:VLLMBackend",
}


class BackendError(Exception):
    """The one error a backend raises or reports. `reason` is a short code stored with a
    failed output and counted on the run (`timeout`, `rate_limited`, `server_error`,
    `connection`, `bad_request`, `bad_response`, `not_recorded`, `not_installed`,
    `unknown_backend`, `config`, `cancelled`)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Sampling:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 4096
    seed: int | None = None
    # A regex the engine must follow (vLLM's `structured_outputs`), e.g. to force a box.
    structured_regex: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise BackendError("config", f"n must be a whole number of at least 1, got {self.n!r}")
        if self.max_tokens < 1:
            raise BackendError("config", f"max_tokens must be at least 1, got {self.max_tokens}")
        if not 0 <= self.temperature <= 10:
            raise BackendError("config", f"temperature must be in 0..10, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BackendError("config", f"top_p must be in (0, 1], got {self.top_p}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.structured_regex:
            data["structured_regex"] = self.structured_regex
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sampling:
        known = {"n", "temperature", "top_p", "max_tokens", "seed", "structured_regex"}
        unknown = set(data) - known
        if unknown:
            raise BackendError("config", f"unknown sampling fields: {', '.join(sorted(unknown))}")
        return cls(**data)


Prompt = str | Sequence[dict[str, str]]  # plain text, or chat messages {"role", "content"}


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    prompt: Prompt
    sampling: Sampling
    # What the replay backend looks a recording up by: the template kind ("verify") and
    # the identity of what is asked about ("proof:<sha256>"). Other backends ignore them.
    kind: str = ""
    identity: str = ""
    # Asked before every attempt by backends that make calls (openai): once it says True,
    # no new call is made and the request ends with BackendError("cancelled").
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Output:
    index: int  # the sample index, 0..n-1
    text: str
    finish_reason: str = ""
    reasoning: str = ""  # the engine's separate reasoning channel, when it has one
    completion_tokens: int | None = None  # this sample's, when the backend says


@dataclass(slots=True)
class GenerationResult:
    outputs: list[Output] = field(default_factory=list)
    error: BackendError | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0  # all n samples together
    latency_s: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


class InferenceBackend:
    """Base of every backend. Subclasses implement `agenerate` (or `generate`)."""

    name: ClassVar[str] = ""

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.options = options

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order. Blocking (Celery tasks are synchronous)."""
        return asyncio.run(self.agenerate(requests))

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend holds (connections, an engine)."""


def backend_class(name: str) -> type[InferenceBackend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendError("unknown_backend", f"{name!r} (known: {known})") from None
    module_name, class_name = target.split(":")
    cls: type[InferenceBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_backend(name: str, model: str, **options: Any) -> InferenceBackend:
    """A backend by name; `BackendError("unknown_backend")` for a name not in `BACKENDS`."""
    return backend_class(name)(model, **options)
