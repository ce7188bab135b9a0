"""Any OpenAI-compatible endpoint: `vllm serve` on a GPU node, or a hosted API.

Chat messages go to `/chat/completions`, plain text to `/completions`, with all n samples
asked for in one request (`n`), so the engine prefills the shared prompt once. At most
`concurrency` requests are in flight. A 429, a 5xx, a timeout or a dropped connection is
retried up to `max_retries` times, waiting `backoff_base_s * 2**attempt` seconds (capped
at `backoff_max_s`; a server's `Retry-After` is honoured within the same cap), then
reported as that request's `BackendError`. Any other 4xx is not retried. A request whose
`should_stop` says so (its run was cancelled) makes no further attempt.

A regex in the sampling is sent as vLLM's `structured_outputs: {"regex": ...}` (the older
`guided_regex` is silently ignored by current vLLM servers).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx

from workers.backends import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    InferenceBackend,
    Output,
)

RETRIED_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(InferenceBackend):
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        concurrency: int = 16,
        max_retries: int = 4,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL", "")
        if not base_url:
            raise BackendError("config", "the openai backend needs base_url (or OPENAI_BASE_URL)")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise BackendError("config", "concurrency >= 1, max_retries >= 0, timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout = httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=None)
        semaphore = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, headers=headers, limits=limits
        ) as client:

            async def one(request: GenerationRequest) -> GenerationResult:
                async with semaphore:
                    return await self._with_retries(client, request)

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def backoff_s(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1` (never above the cap)."""
        wait: float = self.backoff_base_s * 2**attempt
        if retry_after:
            try:
                wait = max(wait, float(retry_after))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        return min(wait, self.backoff_max_s)

    async def _with_retries(
        self, client: httpx.AsyncClient, request: GenerationRequest
    ) -> GenerationResult:
        path, body = self._body(request)
        for attempt in range(self.max_retries + 1):
            if request.should_stop is not None and request.should_stop():
                cancelled = BackendError("cancelled", "the run was cancelled before this call")
                return GenerationResult(error=cancelled, attempts=attempt)
            started = time.monotonic()
            retry_after = None
            try:
                response = await client.post(path, json=body)
            except httpx.TimeoutException as exc:
                error = BackendError("timeout", f"no answer within the timeout ({exc!r})")
            except httpx.TransportError as exc:
                error = BackendError("connection", repr(exc))
            else:
                if response.status_code == 200:
                    result = self._result(response, request.sampling.n)
                    result.latency_s = time.monotonic() - started
                    result.attempts = attempt + 1
                    return result
                reason = {429: "rate_limited"}.get(
                    response.status_code,
                    "server_error" if response.status_code >= 500 else "bad_request",
                )
                error = BackendError(reason, f"HTTP {response.status_code}: {response.text[:300]}")
                if response.status_code not in RETRIED_STATUS:
                    return GenerationResult(error=error, attempts=attempt + 1)
                retry_after = response.headers.get("retry-after")
            if attempt == self.max_retries:
                return GenerationResult(error=error, attempts=attempt + 1)
            await asyncio.sleep(self.backoff_s(attempt, retry_after))
        raise AssertionError("unreachable")

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "n": sampling.n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.structured_regex:
            body["structured_outputs"] = {"regex": sampling.structured_regex}
        if isinstance(request.prompt, str):
            return "/completions", {**body, "prompt": request.prompt}
        return "/chat/completions", {**body, "messages": list(request.prompt)}

    @staticmethod
    def _result(response: httpx.Response, n: int) -> GenerationResult:
        try:
            data = response.json()
            choices = data["choices"]
            outputs = []
            for position, choice in enumerate(choices):
                message = choice.get("message")
                if message is not None:
                    text = message.get("content") or ""
                    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
                else:
                    text, reasoning = choice.get("text") or "", ""
                index = choice.get("index", position)
                outputs.append(
                    Output(
                        index=index if isinstance(index, int) else position,
                        text=text,
                        finish_reason=choice.get("finish_reason") or "",
                        reasoning=reasoning,
                    )
                )
            usage = data.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return GenerationResult(error=BackendError("bad_response", repr(exc)))
        if sorted(o.index for o in outputs) != list(range(n)):
            got = len(outputs)
            return GenerationResult(
                error=BackendError("bad_response", f"asked for {n} samples, got {got}")
            )
        outputs.sort(key=lambda o: o.index)
        return GenerationResult(
            outputs=outputs, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
