"""Importing problems, proofs, grades and analyses from files.

One streaming engine (`engine.py`) and one adapter per format:

- `native`: Proofdesk's JSONL interchange format (README.md, "Importing data");
- `deepseek`: the DeepSeekMath-V2 release (`*.jsonl` proofs with human ratings, `*.json`
  problem inputs);
- `proofbench`: the IMO-ProofBench CSV of problems;
- `opc`: the Open Proof Corpus judged sample (one JSON file per problem, or a folder of
  them), with the judge's analyses and their anchored claims.

`import_path` is what the `import_data` command, `load_demo` and the upload job call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from annotate.importers import deepseek, native, opc, proofbench
from annotate.importers.deepseek import ScoreRule
from annotate.importers.engine import ImportResult, import_records
from annotate.importers.sniff import wrong_format_error
from annotate.importers.source import Lines, file_size_error
from annotate.models import Campaign

FORMATS = {
    "native": "Proofdesk JSONL",
    "deepseek": "DeepSeekMath-V2 JSONL (or JSON problem inputs)",
    "proofbench": "IMO-ProofBench CSV",
    "opc": "Open Proof Corpus JSON (a file or a folder)",
}

__all__ = ["FORMATS", "ImportResult", "ScoreRule", "import_path", "import_stream"]


def import_stream(
    fileobj: BinaryIO,
    *,
    size: int,
    fmt: str,
    source_name: str,
    campaign: Campaign | None = None,
    score_rule: ScoreRule | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file (opened in binary); all or nothing. `source_name` is its file name."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown import format {fmt!r}")
    too_big = file_size_error(size)
    if too_big is not None:
        result = ImportResult()
        result.add_errors([too_big])
        return result
    wrong_format = wrong_format_error(fileobj, fmt, FORMATS)
    if wrong_format is not None:
        result = ImportResult()
        result.add_errors([wrong_format])
        return result
    if fmt == "opc":
        return opc.import_stream(fileobj, source_name=source_name, campaign=campaign)
    lines = Lines(fileobj, progress)
    if fmt == "native":
        items = native.parse(lines)
    elif fmt == "deepseek" and source_name.lower().endswith(".json"):
        items = deepseek.parse_problem_inputs(fileobj, size)
        if progress:
            progress(size)
    elif fmt == "deepseek":
        items = deepseek.parse(lines, score_rule)
    else:
        items = proofbench.parse(lines)
    return import_records(items, source_name=source_name, campaign=campaign)


def import_path(path: str | Path, fmt: str, **kwargs) -> ImportResult:
    path = Path(path)
    if fmt == "opc" and path.is_dir():
        return opc.import_file(path, **kwargs)
    if fmt == "opc":
        with path.open("rb") as fileobj:
            wrong_format = wrong_format_error(fileobj, fmt, FORMATS)
        if wrong_format is not None:
            result = ImportResult()
            result.add_errors([wrong_format])
            return result
        return opc.import_file(path, **kwargs)
    with path.open("rb") as fileobj:
        return import_stream(
            fileobj, size=path.stat().st_size, fmt=fmt, source_name=path.name, **kwargs
        )
