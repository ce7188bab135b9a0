"""Building the replay recording shipped in `data/recordings/` from the Open Proof Corpus.

For every proof of the corpus the recording holds one verify sample (index 0): the OPC
judge's analysis exactly as the OPC importer renders it (`annotate.importers.opc.
render_judgment`), followed by a score line that Proofdesk derives, because the judge
gives none: `\\boxed{1}` when the judge claims no issue, `\\boxed{0}` when it claims any.
The derivation is stated in the text itself, so nobody mistakes it for the judge's word.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from annotate.importers.opc import JUDGE_MODEL, parse, render_judgment
from annotate.models import content_hash
from verification.claims import split_structured

CORPUS = Path("data/open_proof_corpus")
RECORDING = Path("data/recordings/opc_judge.jsonl")
SCORE_NOTE = (
    "**Score** (derived by Proofdesk from the issues claimed: 1 if none, else 0; "
    "the judge gives no score): "
)


def opc_verify_samples(corpus: Path) -> Iterator[dict[str, Any]]:
    """One recorded verify sample per proof of the corpus, in file and attempt order."""
    for file in sorted(corpus.glob("*/*.json")):
        data = json.loads(file.read_text(encoding="utf-8"))
        records, errors, _ = parse(data)
        if errors:
            raise ValueError(f"{file}: {errors[0]}")
        for record, attempt in zip(records, _attempts_with_solution(data), strict=True):
            result = (attempt.get("llm_judgment") or {}).get("result")
            if not isinstance(result, dict) or record.proof is None:
                continue
            issues = result.get("issues") or []
            text = render_judgment(result.get("summary"), issues)
            score = "0" if split_structured(issues) else "1"
            yield {
                "kind": "verify",
                "identity": f"proof:{content_hash(record.proof.text)}",
                "index": 0,
                "text": f"{text}\n\n{SCORE_NOTE}\\boxed{{{score}}}",
                "finish_reason": "stop",
                "model": JUDGE_MODEL,
                "source": f"{file.parent.name}/{file.name}",
            }


def _attempts_with_solution(data: dict[str, Any]) -> list[dict[str, Any]]:
    attempts = [a for a in data.get("attempts") or [] if isinstance(a, dict)]
    return [a for a in attempts if isinstance(a.get("solution"), str) and a["solution"].strip()]


def write_recording(corpus: Path, path: Path) -> int:
    samples = list(opc_verify_samples(corpus))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(s, ensure_ascii=False, sort_keys=True) + "\n" for s in samples),
        encoding="utf-8",
    )
    return len(samples)
