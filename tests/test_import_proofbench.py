"""The IMO-ProofBench CSV adapter: the shipped file and bad CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from annotate.importers import import_path
from annotate.models import Problem
from tests.import_support import PROOFBENCH_CSV, created, existing, write_file

pytestmark = pytest.mark.django_db

HEADER = [
    "Problem ID",
    "Problem",
    "Solution",
    "Grading guidelines",
    "Category",
    "Level",
    "Short Answer",
    "Source",
]


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def row(problem_id: str = "PB-X-001", **overrides: str) -> list[str]:
    values = {
        "Problem ID": problem_id,
        "Problem": "Show that\n$1 + 1 = 2$.",
        "Solution": "Count.",
        "Grading guidelines": "(Partial)\n 1. Counted.",
        "Category": "Algebra",
        "Level": "pre-IMO",
        "Short Answer": "",
        "Source": "Folklore",
    }
    values.update(overrides)
    return [values[column] for column in HEADER]


def test_the_shipped_csv_imports_60_problems_with_mapped_categories():
    result = import_path(PROOFBENCH_CSV, "proofbench")

    assert result.ok, result.errors
    assert created(result)["problems"] == 60 and Problem.objects.count() == 60
    assert Counter(Problem.objects.values_list("category", flat=True)) == {
        "algebra": 16,
        "combinatorics": 16,
        "number_theory": 14,
        "geometry": 14,
    }
    first = Problem.objects.get(external_id="PB-Basic-001")
    assert first.statement.startswith("Determine all functions $f: \\mathbb{Z} \\rightarrow")
    assert first.reference_solution.startswith("By taking $x = 0$")
    assert first.guidelines.startswith("(Partial)\n 1. Guessed the solution correctly")
    assert (first.level, first.source) == ("IMO-easy", "(Modified) IMO 2019, P1")
    assert first.short_answer.startswith("$f(x) = 0$ and $f(x) = 2x + c$")


def test_reimporting_the_csv_adds_nothing():
    import_path(PROOFBENCH_CSV, "proofbench")
    result = import_path(PROOFBENCH_CSV, "proofbench")
    assert created(result)["problems"] == 0 and existing(result)["problems"] == 60
    assert Problem.objects.count() == 60


def test_errors_name_the_line_where_a_multiline_row_starts(tmp_path):
    # Each row spans 3 lines (two fields contain a newline): rows start at lines 2, 5, 8.
    text = csv_text([row("A"), row("B", Category="Topology"), row("C", Problem="")])
    result = import_path(write_file(tmp_path, "pb.csv", text), "proofbench")
    assert result.errors == [
        "line 5: Category: unknown category 'Topology' (must be one of algebra, combinatorics,"
        " geometry, inequality, number_theory, other; case, spaces and hyphens do not matter,"
        " and several may be given (the first is kept))",
        "line 8: Problem: required",
    ]
    assert Problem.objects.count() == 0


@pytest.mark.parametrize(
    "content, error",
    [
        (csv_text([row()], header=HEADER[:-1]), "line 1: missing column 'Source'"),
        (csv_text([row() + ["x"]], header=[*HEADER, "Notes"]), "line 1: unknown column 'Notes'"),
        ("", "line 1: empty file: expected a header row"),
        (csv_text([row()[:3]]), "line 2: has 3 fields, the header has 8"),
        (
            csv_text([row()]) + '"PB-Y","unterminated\n',
            "line 5: not valid CSV: unexpected end of data",
        ),
        (csv_text([row("x" * 201)]), "line 2: Problem ID: longer than 200 characters (201)"),
        (csv_text([row(Problem="nul \x00 byte")]), "line 2: Problem: contains a NUL character"),
    ],
)
def test_bad_csv_is_rejected_with_its_line_and_nothing_is_written(tmp_path, content, error):
    result = import_path(write_file(tmp_path, "pb.csv", content), "proofbench")
    assert result.errors[:1] == [error], result.errors
    assert Problem.objects.count() == 0


def test_invalid_utf8_in_the_csv_is_reported_with_its_line(tmp_path):
    content = csv_text([row("A")]).encode() + b"PB-Z,\xe9t\xe9,,,,,,\n"
    result = import_path(write_file(tmp_path, "pb.csv", content), "proofbench")
    assert result.errors == ["line 5: not valid UTF-8 (byte 6 of the line)"]
    assert Problem.objects.count() == 0


def test_a_field_over_the_text_limit_is_rejected(tmp_path, settings):
    settings.IMPORT_MAX_TEXT_CHARS = 100
    result = import_path(
        write_file(tmp_path, "pb.csv", csv_text([row(Solution="s" * 101)])), "proofbench"
    )
    assert result.errors == ["line 2: Solution: longer than 100 characters (101)"]
