"""Builders shared by the import tests: files on disk, native lines, row counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from annotate.models import CampaignItem, Grade, GradeIssue, Problem, Proof
from verification.models import Analysis

DATA = Path(settings.BASE_DIR) / "data"
DEEPSEEK = DATA / "deepseek_math_v2"
PROOFBENCH_CSV = DATA / "imobench" / "proofbench_v2.csv"
DEEPSEEK_JSONL = sorted(DEEPSEEK.glob("*.jsonl"))

PROOF_TEXT = "Assume $\\sqrt 2 = p/q$ in lowest terms. Then $p^2 = 2q^2$, so $p$ is even. Done."


def write_file(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def write_jsonl(directory: Path, lines: list[Any], name: str = "import.jsonl") -> Path:
    """Each item a dict (dumped as JSON) or a str (written as is)."""
    text = "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines)
    return write_file(directory, name, text)


def native_line(
    external_id: str = "NT-001",
    *,
    statement: str | None = "Prove that $\\sqrt 2$ is irrational.",
    text: str | None = PROOF_TEXT,
    **extra: Any,
) -> dict[str, Any]:
    problem: dict[str, Any] = {"external_id": external_id}
    if statement is not None:
        problem["statement"] = statement
    line: dict[str, Any] = {"problem": problem}
    if text is not None:
        line["proof"] = {"text": text, "generator": {"model": "m", "sampling": {"temperature": 1}}}
    line.update(extra)
    return line


def row_counts() -> dict[str, int]:
    return {
        "problems": Problem.objects.count(),
        "proofs": Proof.objects.count(),
        "grades": Grade.objects.count(),
        "issues": GradeIssue.objects.count(),
        "analyses": Analysis.objects.count(),
        "campaign_items": CampaignItem.objects.count(),
    }


def created(result) -> dict[str, int]:
    return {kind: c["created"] for kind, c in result.counts.items()}


def existing(result) -> dict[str, int]:
    return {kind: c["existing"] for kind, c in result.counts.items()}
