"""Adapter for the Open Proof Corpus judged sample (`data/open_proof_corpus/NOTICE.md`).

One JSON file per problem: `problem`, `problem_id`, `metadata`, `solutions` (reference
solutions), `grading_scheme` (the correctness rubric, HTML) and `attempts`, each a model's
`solution` with its `model_id` and the judge's `llm_judgment.result` (a `summary` and a
list of claimed `issues`). It becomes:

- a problem (statement, reference solution, rubric as guidelines, source, level);
- one proof per attempt (the solution, its generator model, cost and timestamp as metadata);
- the judge's verdict as a `verification.Analysis`: its text a readable rendering of the
  summary and the issues (the judge gives no score, so its parse status is "no score"),
  model `JUDGE_MODEL`, prompt `PROMPT_VERSION`;
- one `verification.Claim` per issue, anchored in the proof by `annotate.anchoring`.

Problems, proofs and analyses go through the shared engine (`engine.import_records`); the
claims are written after it, in the same transaction, for analyses that have none yet, so
re-importing a file adds nothing. A folder imports its `*.json` files as one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from annotate.importers.engine import ImportResult, all_or_nothing, import_records
from annotate.importers.records import (
    LIMITS,
    AnalysisRecord,
    Fields,
    LineError,
    ProblemRecord,
    ProofRecord,
    Record,
    category_from_label,
)
from annotate.importers.source import file_size_error
from annotate.models import Campaign, content_hash
from verification.claims import anchor_claims, split_structured
from verification.models import Analysis, Claim

JUDGE_MODEL = "open-proof-corpus judge"
PROMPT_VERSION = "opc/proof_verification"


def parse(data: Any) -> tuple[list[Record], list[LineError], dict[int, list[dict[str, Any]]]]:
    """Records of one file's JSON, its errors, and each record's issues (by attempt index).

    Errors are named by field (`attempts[2].solution: required`) at "line 0" (the file)."""
    errors: list[LineError] = []
    top = Fields.of(data, "", 0, errors)
    if top is None:
        return [], errors, {}
    problem_id = top.text("problem_id", required=True, limit=LIMITS["problem.external_id"])
    statement = top.text("problem", required=True)
    meta = top.data.get("metadata") if isinstance(top.data.get("metadata"), dict) else {}
    labels = meta.get("category") or []
    category = next(
        (c for c in map(category_from_label, labels if isinstance(labels, list) else []) if c), ""
    )
    source = " ".join(str(part) for part in (meta.get("source"), meta.get("year")) if part)
    problem = ProblemRecord(
        external_id=problem_id,
        statement=statement,
        reference_solution=_reference(top.data.get("solutions")),
        guidelines=_guidelines(top.data.get("grading_scheme")),
        category=category,
        level=str(meta.get("level") or "")[: LIMITS["problem.level"]],
        source=source[: LIMITS["problem.source"]],
    )
    records: list[Record] = []
    issues: dict[int, list[dict[str, Any]]] = {}
    for index, attempt in enumerate(top.objects("attempts")):
        text = attempt.text("solution", required=True)
        model = attempt.text("model_id", limit=LIMITS["proof.generator_model"])
        judgment = attempt.data.get("llm_judgment")
        result = judgment.get("result") if isinstance(judgment, dict) else None
        analyses = []
        if isinstance(result, dict):
            claimed = result.get("issues") or []
            if not isinstance(claimed, list) or not all(isinstance(i, dict) for i in claimed):
                attempt.error("llm_judgment.result.issues", "must be a list of objects")
                claimed = []
            issues[index] = claimed
            analyses.append(
                AnalysisRecord(
                    text=render_judgment(result.get("summary"), claimed),
                    model=JUDGE_MODEL,
                    prompt_version=PROMPT_VERSION,
                )
            )
        if not text:
            continue
        metadata = {"opc_attempt": index}
        for key in ("cost", "timestamp"):
            if attempt.data.get(key) is not None:
                metadata[key] = attempt.data[key]
        records.append(
            Record(
                line=index + 1,
                problem=problem,
                proof=ProofRecord(text=text, generator_model=model, metadata=metadata),
                analyses=analyses,
            )
        )
    if not records and not errors:
        errors.append(LineError(0, "attempts", "no attempt with a solution"))
    return records, errors, issues


def render_judgment(summary: Any, issues: list[dict[str, Any]]) -> str:
    """The judge's structured verdict as readable Markdown: summary, then numbered issues."""
    parts = [
        f"**Summary.** {summary.strip()}" if isinstance(summary, str) and summary.strip() else ""
    ]
    drafts = split_structured(issues)
    if not drafts:
        parts.append("No issues claimed.")
    else:
        parts.append(f"**Issues claimed ({len(drafts)}):**")
        for number, draft in enumerate(drafts, start=1):
            head = " — ".join(
                x for x in (f"**{draft.category}**" if draft.category else "", draft.location) if x
            )
            lines = [f"{number}. {head}" if head else f"{number}."]
            if draft.quote:
                lines.append("   > " + "\n   > ".join(draft.quote.splitlines()))
            if draft.text:
                lines.append(f"   {draft.text}")
            parts.append("\n\n".join(lines))
    return "\n\n".join(p for p in parts if p)


def import_file(
    path: Path,
    *,
    campaign: Campaign | None = None,
    progress: Callable[[int], None] | None = None,
    **_: Any,
) -> ImportResult:
    """Import one file, or every `*.json` file of a folder, all or nothing."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    result = ImportResult()
    result.counts["claims"] = {"created": 0, "existing": 0}
    if not files:
        result.add_errors([f"{path.name}: no .json files"])
        return result

    def import_all() -> None:
        for file in files:
            _import_one(file, campaign, result, len(files) > 1)
            if progress:
                progress(file.stat().st_size)
            if not result.ok:
                return

    return all_or_nothing(result, import_all, list(result.counts))


def import_stream(
    fileobj: BinaryIO,
    *,
    source_name: str,
    campaign: Campaign | None = None,
    **_: Any,
) -> ImportResult:
    """Import one uploaded file (opened in binary)."""
    result = ImportResult()
    result.counts["claims"] = {"created": 0, "existing": 0}
    return all_or_nothing(
        result,
        lambda: _import_data(_load(fileobj.read(), result, ""), source_name, campaign, result, ""),
        list(result.counts),
    )


def _import_one(file: Path, campaign: Campaign | None, result: ImportResult, named: bool) -> None:
    prefix = f"{file.name}: " if named else ""
    too_big = file_size_error(file.stat().st_size)
    if too_big is not None:
        result.add_errors([f"{prefix}{too_big}"])
        return
    data = _load(file.read_bytes(), result, prefix)
    _import_data(data, file.name, campaign, result, prefix)


def _load(raw: bytes, result: ImportResult, prefix: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        result.add_errors([f"{prefix}file: not valid JSON ({exc})"])
        return None


def _import_data(
    data: Any, source_name: str, campaign: Campaign | None, result: ImportResult, prefix: str
) -> None:
    if data is None:
        return
    records, errors, issues = parse(data)
    if errors:
        result.add_errors(f"{prefix}{error}" for error in errors)
        return
    done = import_records(records, source_name=source_name, campaign=campaign)
    if not done.ok:
        result.add_errors(f"{prefix}{error}" for error in done.error_lines())
        return
    for kind, counts in done.counts.items():
        for state, n in counts.items():
            result.counts[kind][state] += n
    _write_claims(records, issues, result)


def _write_claims(
    records: list[Record], issues: dict[int, list[dict[str, Any]]], result: ImportResult
) -> None:
    """Claims for the analyses just imported that have none (re-imports add nothing)."""
    keys = {(r.proof_id, content_hash(r.analyses[0].text)): r for r in records if r.analyses}
    analyses = Analysis.objects.filter(
        proof_id__in={proof_id for proof_id, _ in keys},
        model=JUDGE_MODEL,
        prompt_version=PROMPT_VERSION,
        text_hash__in={text_hash for _, text_hash in keys},
    ).select_related("proof")
    with_claims = set(
        Claim.objects.filter(analysis__in=analyses).values_list("analysis_id", flat=True)
    )
    new: list[Claim] = []
    for analysis in analyses:
        record = keys.get((analysis.proof_id, analysis.text_hash))
        if record is None:
            continue
        drafts = split_structured(issues.get(record.line - 1, []))
        if analysis.pk in with_claims:
            result.count("claims", created=False, n=len(drafts))
            continue
        new.extend(anchor_claims(analysis, drafts, analysis.proof.text))
    Claim.objects.bulk_create(new)
    result.count("claims", created=True, n=len(new))


def _reference(solutions: Any) -> str:
    if not isinstance(solutions, list):
        return ""
    texts = [s.get("solution") for s in solutions if isinstance(s, dict)]
    return "\n\n---\n\n".join(t.strip() for t in texts if isinstance(t, str) and t.strip())


def _guidelines(scheme: Any) -> str:
    """The rubric parts as Markdown headings over their (HTML) descriptions."""
    if not isinstance(scheme, list):
        return ""
    parts = []
    for part in scheme:
        if not isinstance(part, dict):
            continue
        title = str(part.get("title") or "").strip()
        points = part.get("points")
        head = f"**{title}**" + (f" ({points} point{'s' if points != 1 else ''})" if points else "")
        description = part.get("description")
        body = description.strip() if isinstance(description, str) else ""
        parts.append("\n\n".join(x for x in (head if title else "", body) if x))
    return "\n\n".join(p for p in parts if p)
