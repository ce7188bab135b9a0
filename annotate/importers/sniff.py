"""Which format a file looks like, from its start: one clear error for the wrong choice.

Choosing the wrong format used to list every line's unknown keys (30 and more "unknown
column" or "unknown key" errors) without saying what was wrong. Each format has an
unmistakable start, so the first line (or the first kilobytes of a pretty-printed JSON
file) is enough:

- `native`: a JSON object per line with a `problem` object;
- `deepseek`: a JSON object per line with `question`, `problem_idx` or `model_prediction`,
  or (problem inputs) a JSON array;
- `proofbench`: a CSV header with the columns `Problem ID` and `Problem`;
- `opc`: one JSON object with `problem_id` and `attempts`.

A file that looks like none of them is left to its format's parser, which says what is
wrong line by line.
"""

from __future__ import annotations

import csv
import json
import re
from typing import BinaryIO

from annotate.importers.records import LineError

HEAD_BYTES = 1024**2
_OPC_KEY = re.compile(r'^\s*"(problem_id|attempts|grading_scheme)"\s*:', re.MULTILINE)
DEEPSEEK_KEYS = {"question", "problem_idx", "model_prediction"}
# How a message names each format (the upload form's labels are longer).
NAMES = {
    "native": "Proofdesk JSONL",
    "deepseek": "DeepSeekMath-V2",
    "proofbench": "IMO-ProofBench CSV",
    "opc": "Open Proof Corpus JSON",
}


def looks_like(head: bytes) -> tuple[str, str] | None:
    """(format, why) for the start of a file, or None when it matches no format."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "deepseek", "it is a JSON array (DeepSeekMath-V2 problem inputs)"
    first_line = text.split("\n", 1)[0].strip()
    if text.startswith("{"):
        try:
            data = json.loads(first_line)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return _json_object_format(data)
        # A JSON document spread over lines: one Open Proof Corpus problem.
        if first_line == "{" and len(set(_OPC_KEY.findall(text))) >= 2:
            return "opc", "it is one JSON object with problem_id and attempts"
        return None
    try:
        header = next(csv.reader([first_line]))
    except (csv.Error, StopIteration):
        return None
    if "Problem ID" in header and "Problem" in header:
        return "proofbench", "its first line is a CSV header with Problem ID and Problem"
    return None


def _json_object_format(data: dict) -> tuple[str, str] | None:
    keys = ", ".join(sorted(map(str, data))[:6])
    if isinstance(data.get("problem"), dict):
        return "native", f"its first line is a JSON object with the keys {keys}"
    if DEEPSEEK_KEYS & set(data):
        return "deepseek", f"its first line is a JSON object with the keys {keys}"
    if "attempts" in data and "problem_id" in data:
        return "opc", "it is one JSON object with problem_id and attempts"
    return None


def wrong_format_error(fileobj: BinaryIO, chosen: str, labels: dict[str, str]) -> LineError | None:
    """One error when the file plainly is another format than `chosen`; the file is rewound."""
    if not fileobj.seekable():
        return None
    start = fileobj.tell()
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(start)
    found = looks_like(head)
    if found is None or found[0] == chosen:
        return None
    fmt, why = found
    return LineError(
        0,
        "",
        f"this file looks like {NAMES[fmt]} ({why}), not {NAMES[chosen]}. "
        f"Choose the format {labels[fmt]!r} (import_data --format {fmt}).",
    )
