"""The vLLM engine inside the worker process (a GPU node's Celery worker, solo or threads
pool: prefork cannot host CUDA).

The engine (`vllm.v1.engine.async_llm.AsyncLLM`, from `AsyncEngineArgs` with prefix caching
on) is created once per process and model, on an event loop of its own in a daemon thread:
the engine binds to the loop it first runs on, while Celery calls `generate` from plain
threads. Each request asks for its n samples in one `SamplingParams(n=...)` with
`FINAL_ONLY` output, so the prompt is prefilled once and the samples come back together,
told apart by `output.index`. vLLM is imported only when the backend is first used: the
project works without it, and a missing install is `BackendError("not_installed")`.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from workers.backends import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    InferenceBackend,
    Output,
    Sampling,
)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_engines: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def _import_vllm() -> Any:
    try:
        import vllm  # noqa: PLC0415  (optional, heavy: imported on first use only)
    except ImportError as exc:
        raise BackendError(
            "not_installed",
            f"the vllm backend needs the vllm package in this interpreter ({exc}); "
            "or serve the model with `vllm serve` and use the openai backend",
        ) from exc
    return vllm


def _engine_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="vllm-engine", daemon=True).start()
            _loop = loop
        return _loop


class VLLMBackend(InferenceBackend):
    name = "vllm"

    def __init__(self, model: str, *, timeout_s: float = 3600.0, **engine_options: Any) -> None:
        super().__init__(model, **engine_options)
        self.timeout_s = timeout_s
        self.engine_options = {"enable_prefix_caching": True, **engine_options}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        _import_vllm()
        future = asyncio.run_coroutine_threadsafe(self.agenerate(requests), _engine_loop())
        return future.result()

    def engine(self) -> Any:
        """This process's engine for the model (created on first use, on the engine loop)."""
        vllm = _import_vllm()
        key = (self.model, tuple(sorted(self.engine_options.items())))
        with _lock:
            if key not in _engines:
                from vllm.v1.engine.async_llm import AsyncLLM  # noqa: PLC0415

                args = vllm.AsyncEngineArgs(model=self.model, **self.engine_options)
                _engines[key] = AsyncLLM.from_engine_args(args)
            return _engines[key]

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        engine = self.engine()
        return list(await asyncio.gather(*(self._one(engine, r) for r in requests)))

    async def _one(self, engine: Any, request: GenerationRequest) -> GenerationResult:
        request_id = uuid.uuid4().hex
        started = time.monotonic()
        try:
            prompt = await self._prompt(engine, request)
            final = await asyncio.wait_for(
                self._final(engine, prompt, _sampling_params(request.sampling), request_id),
                self.timeout_s,
            )
        except TimeoutError:
            await engine.abort(request_id)
            return GenerationResult(error=BackendError("timeout", f"over {self.timeout_s} s"))
        except BackendError as exc:
            return GenerationResult(error=exc)
        except Exception as exc:  # the engine's own errors: recorded, never fail the batch
            return GenerationResult(error=BackendError("engine_error", repr(exc)[:300]))
        outputs = [
            Output(
                index=o.index,
                text=o.text,
                finish_reason=o.finish_reason or "",
                completion_tokens=len(o.token_ids),
            )
            for o in sorted(final.outputs, key=lambda o: o.index)
        ]
        return GenerationResult(
            outputs=outputs,
            prompt_tokens=len(final.prompt_token_ids or []),
            completion_tokens=sum(o.completion_tokens or 0 for o in outputs),
            latency_s=time.monotonic() - started,
        )

    @staticmethod
    async def _prompt(engine: Any, request: GenerationRequest) -> str:
        if isinstance(request.prompt, str):
            return request.prompt
        tokenizer = engine.get_tokenizer()
        if inspect.isawaitable(tokenizer):  # a coroutine in vLLM before 0.11, plain after
            tokenizer = await tokenizer
        prompt: str = tokenizer.apply_chat_template(
            list(request.prompt), tokenize=False, add_generation_prompt=True
        )
        return prompt

    @staticmethod
    async def _final(engine: Any, prompt: str, params: Any, request_id: str) -> Any:
        """The finished request, with its samples gathered by `output.index` (a yield may
        hold fewer than n of them)."""
        final, samples = None, {}
        async for output in engine.generate(prompt, params, request_id):
            samples.update({sample.index: sample for sample in output.outputs})
            final = output
        if final is None or not final.finished or len(samples) != params.n:
            raise BackendError("bad_response", "the engine stopped without all its samples")
        final.outputs = [samples[index] for index in sorted(samples)]
        return final


def _sampling_params(sampling: Sampling) -> Any:
    from vllm import SamplingParams  # noqa: PLC0415
    from vllm.sampling_params import RequestOutputKind  # noqa: PLC0415

    extra: dict[str, Any] = {}
    if sampling.structured_regex:
        try:
            from vllm.sampling_params import StructuredOutputsParams  # noqa: PLC0415
        except ImportError as exc:
            raise BackendError("config", "this vllm has no structured outputs") from exc
        extra["structured_outputs"] = StructuredOutputsParams(regex=sampling.structured_regex)
    return SamplingParams(
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        seed=sampling.seed,
        output_kind=RequestOutputKind.FINAL_ONLY,
        **extra,
    )
