"""Recorded outputs, played back: runs without a model (the demo, tests, `make run`).

A recording is a JSON Lines file, one output a line: `kind` (the prompt template kind,
"verify"), `identity` (what was asked about, "proof:<sha256 of the proof text>"),
`index` (the sample index), `text`, and optionally `finish_reason`, `reasoning`,
`prompt_tokens`, `completion_tokens`. A request is answered with the recorded samples
0..n-1 for its (kind, identity); if any of them is missing, the request fails with
reason `not_recorded` (nothing is made up). The shipped recording,
`data/recordings/opc_judge.jsonl`, holds the Open Proof Corpus judge's analyses
(`python manage.py build_replay_recording`, see data/NOTICE.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings

from workers.backends import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    InferenceBackend,
    Output,
)

DEFAULT_RECORDING = "data/recordings/opc_judge.jsonl"

Key = tuple[str, str, int]


class ReplayBackend(InferenceBackend):
    name = "replay"

    def __init__(self, model: str, *, recording: str | Path | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        path = Path(recording or DEFAULT_RECORDING)
        self.path = path if path.is_absolute() else Path(settings.BASE_DIR) / path
        self._records: dict[Key, dict[str, Any]] | None = None

    def records(self) -> dict[Key, dict[str, Any]]:
        if self._records is None:
            self._records = load_recording(self.path)
        return self._records

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        records = self.records()
        return [self._answer(records, request) for request in requests]

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.generate(requests)

    @staticmethod
    def _answer(records: dict[Key, dict[str, Any]], request: GenerationRequest) -> GenerationResult:
        key = (request.kind, request.identity)
        found = [records.get((*key, i)) for i in range(request.sampling.n)]
        missing = [i for i, record in enumerate(found) if record is None]
        if missing:
            return GenerationResult(
                error=BackendError(
                    "not_recorded",
                    f"{request.kind} {request.identity}: no recorded sample {missing[0]}",
                )
            )
        outputs = [
            Output(
                index=i,
                text=record["text"],
                finish_reason=record.get("finish_reason", "stop"),
                reasoning=record.get("reasoning", ""),
                completion_tokens=record.get("completion_tokens"),
            )
            for i, record in enumerate(r for r in found if r is not None)
        ]
        return GenerationResult(
            outputs=outputs,
            prompt_tokens=max((r.get("prompt_tokens", 0) for r in found if r), default=0),
            completion_tokens=sum(o.completion_tokens or 0 for o in outputs),
        )


def load_recording(path: Path) -> dict[Key, dict[str, Any]]:
    """The recording's outputs by (kind, identity, index); a bad file is a `config` error."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BackendError("config", f"cannot read the recording {path}: {exc}") from exc
    records: dict[Key, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = (str(record["kind"]), str(record["identity"]), int(record["index"]))
            if not isinstance(record["text"], str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError("config", f"{path.name} line {number}: {exc!r}") from exc
        records[key] = record
    return records
