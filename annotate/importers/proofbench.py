"""IMO-ProofBench's CSV (data/imobench/proofbench_v2.csv): problems only.

Columns, all required in the header and no others: Problem ID, Problem, Solution,
Grading guidelines, Category, Level, Short Answer, Source. Fields may span several lines
(quoted); an error names the line where its row starts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.conf import settings

from annotate.importers.records import (
    LIMITS,
    LineError,
    ProblemRecord,
    Record,
    category_from_labels,
    text_problem,
    unknown_category_message,
)
from annotate.importers.source import Lines

COLUMNS = {
    "Problem ID": "external_id",
    "Problem": "statement",
    "Solution": "reference_solution",
    "Grading guidelines": "guidelines",
    "Category": "category",
    "Level": "level",
    "Short Answer": "short_answer",
    "Source": "source",
}
REQUIRED = ("Problem ID", "Problem")
COLUMN_LIMITS = {
    "Problem ID": LIMITS["problem.external_id"],
    "Level": LIMITS["problem.level"],
    "Source": LIMITS["problem.source"],
}


class _Stop(Exception):
    pass


def parse(lines: Lines, options: object = None) -> Iterator[Record | list[LineError]]:
    bad_line: list[LineError] = []

    def text_lines() -> Iterator[str]:
        for _, text in lines:
            if isinstance(text, LineError):
                bad_line.append(text)
                return  # the csv reader cannot resynchronise after a broken line
            yield text

    # Process-wide, but only ever raised: lets an over-long field fail with a clear message.
    csv.field_size_limit(max(csv.field_size_limit(), settings.IMPORT_MAX_TEXT_CHARS + 1))
    reader = csv.reader(text_lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        yield bad_line or [LineError(1, "", "empty file: expected a header row")]
        return
    except csv.Error as exc:
        yield [LineError(1, "", f"not valid CSV: {exc}")]
        return
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    duplicated = {c for c in header if header.count(c) > 1}
    if missing or unknown or duplicated:
        yield [
            *(LineError(1, "", f"missing column {c!r}") for c in missing),
            *(LineError(1, "", f"unknown column {c!r}") for c in unknown),
            *(LineError(1, "", f"column {c!r} appears twice") for c in sorted(duplicated)),
        ]
        return
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield [LineError(start, "", f"not valid CSV: {exc}")]
            return
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield [LineError(line, "", f"has {len(row)} fields, the header has {len(header)}")]
            continue
        yield _record(dict(zip(header, row, strict=True)), line)
    if bad_line:
        yield bad_line


def _record(row: dict[str, str], line: int) -> Record | list[LineError]:
    errors = []
    values: dict[str, str] = {}
    for column, attribute in COLUMNS.items():
        value = (
            row[column].strip() if column in ("Problem ID", "Category", "Level") else row[column]
        )
        problem = text_problem(value, COLUMN_LIMITS.get(column))
        if column in REQUIRED and not value.strip():
            problem = "required"
        if problem:
            errors.append(LineError(line, column, problem))
        values[attribute] = value
    if values["category"]:
        category, unknown = category_from_labels(values["category"])
        if unknown:
            errors.append(LineError(line, "Category", unknown_category_message(unknown)))
        values["category"] = category
    if errors:
        return errors
    return Record(line, ProblemRecord(**values))
