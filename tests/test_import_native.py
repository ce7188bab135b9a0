"""The native JSONL importer and the import engine (batches, idempotence, all-or-nothing)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from annotate.importers import engine, import_path
from annotate.models import CampaignItem, Grade, GradeIssue, Problem, Proof, order_key_for
from tests.import_support import (
    PROOF_TEXT,
    created,
    existing,
    native_line,
    row_counts,
    write_file,
    write_jsonl,
)
from verification.models import Analysis

pytestmark = pytest.mark.django_db

NOTHING = {k: 0 for k in ("problems", "proofs", "grades", "issues", "analyses", "campaign_items")}

FULL_LINE = native_line(
    "NT-001",
    grades=[
        {
            "grader": "alice@example.org",
            "score": 0.5,
            "comment": "Right idea, parity step unjustified.",
            "issues": [
                {
                    "start": 59,
                    "end": 74,
                    "quote": "so $p$ is even.",
                    "note": "Why?",
                    "severity": "minor",
                }
            ],
        },
        {"grader": "bob", "score": 1},
    ],
    analyses=[
        {
            "text": "The proof is fine. \\boxed{1}",
            "model": "verifier-v1",
            "prompt_version": "p3",
            "sampling": {"n": 4},
        }
    ],
)
FULL_LINE["problem"].update(
    reference_solution="Classic.",
    guidelines="(Partial) parity.",
    short_answer="",
    category="number_theory",
    level="pre-IMO",
    source="Folklore",
)
FULL_LINE["proof"].update(
    external_id="run7-0001",
    self_evaluation="I believe this is correct.",
    self_score=1,
    metadata={"seed": 7},
)
FULL_LINE["proof"]["generator"]["version"] = "2025-11"


def test_it_imports_a_problem_with_proof_grades_issues_and_analyses(tmp_path):
    assert PROOF_TEXT[59:74] == "so $p$ is even."
    result = import_path(write_jsonl(tmp_path, [FULL_LINE]), "native")

    assert result.ok, result.errors
    assert created(result) == {
        **NOTHING,
        "problems": 1,
        "proofs": 1,
        "grades": 2,
        "issues": 1,
        "analyses": 1,
    }
    problem = Problem.objects.get()
    assert (problem.external_id, problem.category, problem.level) == (
        "NT-001",
        "number_theory",
        "pre-IMO",
    )
    assert (problem.reference_solution, problem.guidelines, problem.source) == (
        "Classic.",
        "(Partial) parity.",
        "Folklore",
    )
    proof = Proof.objects.get()
    assert proof.text == PROOF_TEXT
    assert proof.content_hash == hashlib.sha256(PROOF_TEXT.encode()).hexdigest()
    assert (proof.external_id, proof.generator_model, proof.generator_version) == (
        "run7-0001",
        "m",
        "2025-11",
    )
    assert proof.sampling == {"temperature": 1}
    assert proof.self_score == Decimal("1")
    assert proof.metadata == {"seed": 7}
    alice, bob = Grade.objects.order_by("external_grader")
    assert alice.origin == Grade.Origin.IMPORTED and alice.grader is None and alice.campaign is None
    assert (alice.score, alice.comment, alice.import_source) == (
        Decimal("0.5"),
        "Right idea, parity step unjustified.",
        "import.jsonl",
    )
    assert bob.score == Decimal("1")
    issue = GradeIssue.objects.get()
    assert (issue.grade, issue.start, issue.end, issue.quote) == (alice, 59, 74, "so $p$ is even.")
    assert issue.prefix == PROOF_TEXT[27:59] and issue.suffix == " Done."
    assert (issue.note, issue.severity) == ("Why?", "minor")
    analysis = Analysis.objects.get()
    assert (analysis.proof, analysis.origin, analysis.model, analysis.prompt_version) == (
        proof,
        Analysis.Origin.IMPORTED,
        "verifier-v1",
        "p3",
    )
    assert analysis.text_hash == hashlib.sha256(analysis.text.encode()).hexdigest()
    assert (analysis.sampling, analysis.import_source) == ({"n": 4}, "import.jsonl")


def test_importing_the_same_file_twice_adds_nothing(tmp_path):
    path = write_jsonl(tmp_path, [FULL_LINE, native_line("NT-002")])
    import_path(path, "native")
    before = row_counts()

    result = import_path(path, "native")

    assert result.ok
    assert row_counts() == before
    assert created(result) == NOTHING
    assert existing(result) == {**NOTHING, "problems": 2, "proofs": 2, "grades": 2, "analyses": 1}


def test_a_quote_without_offsets_is_kept_and_offsets_without_quote_take_the_text(tmp_path):
    line = native_line(
        grades=[
            {
                "grader": "g",
                "score": 0,
                "issues": [
                    {"quote": "somewhere", "note": "vague"},
                    {"start": 0, "end": 6, "severity": "fatal"},
                ],
            }
        ]
    )
    assert import_path(write_jsonl(tmp_path, [line]), "native").ok
    loose, anchored = GradeIssue.objects.order_by("id")
    assert (loose.start, loose.end, loose.quote, loose.prefix) == (None, None, "somewhere", "")
    assert (anchored.quote, anchored.severity, anchored.suffix) == (
        "Assume",
        "fatal",
        PROOF_TEXT[6:38],
    )


def test_an_existing_problem_is_referenced_by_external_id_alone(tmp_path, problem):
    result = import_path(
        write_jsonl(tmp_path, [native_line(problem.external_id, statement=None)]), "native"
    )
    assert result.ok
    assert Proof.objects.get().problem == problem
    assert existing(result)["problems"] == 1 and created(result)["problems"] == 0


def test_a_stored_problem_is_kept_as_it_is_when_a_line_restates_it(tmp_path, problem):
    line = native_line(problem.external_id, statement="Another wording.")
    assert import_path(write_jsonl(tmp_path, [line]), "native").ok
    problem.refresh_from_db()
    assert problem.statement.startswith("Prove that $\\sqrt{2}$")


def test_a_problem_defined_earlier_in_the_file_can_be_referenced(tmp_path):
    lines = [native_line("A-1", text="first"), native_line("A-1", statement=None, text="second")]
    result = import_path(write_jsonl(tmp_path, lines), "native")
    assert result.ok
    assert (
        created(result)["problems"] == 1
        and Proof.objects.filter(problem__external_id="A-1").count() == 2
    )


def test_a_reference_before_the_definition_is_an_error(tmp_path):
    lines = [native_line("A-1", statement=None, text="first"), native_line("A-1", text="second")]
    result = import_path(write_jsonl(tmp_path, lines), "native")
    assert result.errors == [
        "line 1: problem.external_id: unknown problem 'A-1' (give its statement to create it)"
    ]
    assert row_counts() == NOTHING


def test_batches_find_rows_written_by_earlier_batches(tmp_path, monkeypatch, campaign):
    """Small batches: duplicates and references across batch boundaries still resolve."""
    monkeypatch.setattr(engine, "BATCH_RECORDS", 2)
    grade = {"grader": "g", "score": 1}
    lines = [
        native_line("B-1", text="one", grades=[grade]),
        native_line("B-2", text="two"),
        native_line("B-1", statement=None, text="three"),
        native_line("B-1", statement=None, text="one", grades=[grade]),  # line 1 again
        native_line("B-2", statement=None, text="two", analyses=[{"text": "ok"}]),
    ]
    path = write_jsonl(tmp_path, lines)
    first = import_path(path, "native", campaign=campaign)
    second = import_path(path, "native", campaign=campaign)

    assert first.ok and second.ok
    assert created(first) == {
        **NOTHING,
        "problems": 2,
        "proofs": 3,
        "grades": 1,
        "analyses": 1,
        "campaign_items": 3,
    }
    assert existing(first) == {**NOTHING, "proofs": 2, "grades": 1, "campaign_items": 2}
    assert created(second) == NOTHING
    assert Proof.objects.filter(problem__external_id__startswith="B-").count() == 3


def test_campaign_items_are_added_once_in_the_seeded_order(tmp_path, campaign):
    campaign.seed = 42
    campaign.save()
    path = write_jsonl(tmp_path, [native_line("C-1", text="x"), native_line("C-2", text="y")])
    import_path(path, "native", campaign=campaign)
    import_path(path, "native", campaign=campaign)

    items = CampaignItem.objects.filter(
        campaign=campaign, proof__problem__external_id__startswith="C-"
    )
    assert items.count() == 2
    for item in items:
        assert item.order_key == order_key_for(42, item.proof_id)


@pytest.mark.parametrize(
    "bad_line, error",
    [
        (
            '{"problem": {"external_id": "X"',
            "line 2: not valid JSON: Expecting ',' delimiter (column 32)",
        ),
        ("[1, 2]", "line 2: must be an object, got a list"),
        ({"proof": {"text": "t"}}, "line 2: problem: required"),
        (native_line("X", text=""), "line 2: proof.text: required"),
        ({"problem": {"statement": "s"}}, "line 2: problem.external_id: required"),
        (
            {"problem": {"external_id": 5, "statement": "s"}},
            "line 2: problem.external_id: must be a string, got a number",
        ),
        (
            {**native_line("X"), "proofs": []},
            "line 2: proofs: unknown key (allowed: analyses, grades, problem, proof)",
        ),
        (
            {"problem": {"external_id": "X", "statment": "s"}},
            "line 2: problem.statment: unknown key",
        ),
        (
            native_line("X", grades=[{"grader": "g", "score": "1"}]),
            "line 2: grades[0].score: must be a number (0, 0.5 or 1), got a string",
        ),
        (
            native_line("X", grades=[{"grader": "g", "score": 0.7}]),
            "line 2: grades[0].score: must be 0, 0.5 or 1, got 0.7",
        ),
        (
            native_line("X", grades=[{"grader": "g", "score": True}]),
            "line 2: grades[0].score: must be a number (0, 0.5 or 1), got a boolean",
        ),
        (native_line("X", grades=[{"score": 1}]), "line 2: grades[0].grader: required"),
        (
            native_line("X", grades=[{"grader": "g", "score": 1}, {"grader": "g", "score": 0}]),
            "line 2: grades[1].grader: 'g' appears twice",
        ),
        (native_line("X", grades={"grader": "g"}), "line 2: grades: must be a list, got an object"),
        (
            native_line(
                "X", grades=[{"grader": "g", "score": 1, "issues": [{"start": 5, "end": 999}]}]
            ),
            "line 2: grades[0].issues[0].end: beyond the end of the proof text (80)",
        ),
        (
            native_line(
                "X", grades=[{"grader": "g", "score": 1, "issues": [{"start": 5, "end": 2}]}]
            ),
            "line 2: grades[0].issues[0].end: before start (2 < 5)",
        ),
        (
            native_line("X", grades=[{"grader": "g", "score": 1, "issues": [{"start": 5}]}]),
            "line 2: grades[0].issues[0]: give both start and end, or neither",
        ),
        (
            native_line(
                "X",
                grades=[
                    {
                        "grader": "g",
                        "score": 1,
                        "issues": [{"start": 0, "end": 6, "quote": "Assumf"}],
                    }
                ],
            ),
            "line 2: grades[0].issues[0].quote: not in the proof text "
            "(at 0:6 it reads 'Assume')",
        ),
        (
            native_line(
                "X", grades=[{"grader": "g", "score": 1, "issues": [{"start": -1, "end": 6}]}]
            ),
            "line 2: grades[0].issues[0].start: must not be negative, got -1",
        ),
        (
            native_line(
                "X",
                grades=[
                    {"grader": "g", "score": 1, "issues": [{"note": "n", "severity": "major"}]}
                ],
            ),
            "line 2: grades[0].issues[0].severity: must be one of fatal, minor",
        ),
        (
            {"problem": {"external_id": "X", "statement": "s", "category": "Algebraic geometry"}},
            "line 2: problem.category: unknown category 'Algebraic geometry' (must be one of",
        ),
        (
            {
                "problem": {"external_id": "X", "statement": "s"},
                "grades": [{"grader": "g", "score": 1}],
            },
            "line 2: proof: required when grades or analyses are given",
        ),
        (
            native_line("X", text="nul \u0000 inside"),
            "line 2: proof.text: contains a NUL character",
        ),
        (
            native_line("X", text="lone \ud800 surrogate"),
            "line 2: proof.text: contains an unpaired surrogate",
        ),
        (native_line("X" * 201), "line 2: problem.external_id: longer than 200 characters (201)"),
        (native_line("X", analyses=[{"model": "m"}]), "line 2: analyses[0].text: required"),
        (
            native_line("X", analyses=[{"text": "a", "sampling": [1]}]),
            "line 2: analyses[0].sampling: must be an object, got a list",
        ),
    ],
)
def test_bad_lines_are_rejected_with_line_and_field_and_nothing_is_written(
    tmp_path, bad_line, error
):
    path = write_jsonl(tmp_path, [native_line("GOOD-1"), bad_line, native_line("GOOD-2")])
    result = import_path(path, "native")
    assert not result.ok
    assert len(result.errors) == 1 and result.errors[0].startswith(error), result.errors
    assert row_counts() == NOTHING
    assert created(result) == NOTHING


def test_every_bad_line_is_reported_not_just_the_first(tmp_path):
    lines = [
        native_line("A", text=""),
        native_line("B"),
        "{",
        native_line("C", grades=[{"grader": "g"}]),
    ]
    result = import_path(write_jsonl(tmp_path, lines), "native")
    assert result.errors == [
        "line 1: proof.text: required",
        "line 3: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 4: grades[0].score: required",
    ]


def test_reporting_stops_after_fifty_errors(tmp_path):
    result = import_path(write_jsonl(tmp_path, ["nope"] * 80), "native")
    assert len(result.errors) == 50
    assert result.error_lines()[-1] == "(stopped after 50 errors)"


def test_invalid_utf8_is_reported_with_its_line(tmp_path):
    content = json.dumps(native_line("A")).encode() + b"\n" + b'{"problem": "\xff\xfe"}\n'
    result = import_path(write_file(tmp_path, "bad.jsonl", content), "native")
    assert result.errors == ["line 2: not valid UTF-8 (byte 14 of the line)"]
    assert row_counts() == NOTHING


def test_blank_lines_and_a_byte_order_mark_are_ignored(tmp_path):
    content = (
        "\ufeff" + json.dumps(native_line("A")) + "\n\n   \n" + json.dumps(native_line("B")) + "\n"
    )
    assert import_path(write_file(tmp_path, "bom.jsonl", content), "native").ok
    assert Problem.objects.count() == 2


def test_a_text_over_the_size_limit_is_rejected(tmp_path, settings):
    settings.IMPORT_MAX_TEXT_CHARS = 50
    result = import_path(write_jsonl(tmp_path, [native_line("A", text="x" * 51)]), "native")
    assert result.errors == ["line 1: proof.text: longer than 50 characters (51)"]


def test_a_file_over_the_size_limit_is_rejected_before_reading(tmp_path, settings):
    path = write_jsonl(tmp_path, [native_line("A")])
    settings.IMPORT_MAX_FILE_BYTES = 100
    result = import_path(path, "native")
    assert result.errors == [
        f"file: the file has {path.stat().st_size} bytes, more than the limit of 100 bytes"
    ]
    assert row_counts() == NOTHING


def test_a_line_longer_than_any_record_is_skipped_and_reported(tmp_path, settings):
    settings.IMPORT_MAX_TEXT_CHARS = 10  # lines may then be at most 1 MiB
    huge = json.dumps(native_line("A", text="x" * (1024**2 + 10)))
    result = import_path(write_jsonl(tmp_path, [huge, "{"]), "native")
    assert result.errors[0] == f"line 1: longer than {1024**2} bytes"
    assert result.errors[1].startswith("line 2: not valid JSON")


def test_a_proof_external_id_naming_another_text_is_rejected(tmp_path, problem, proof):
    proof.external_id = "run-1"
    proof.save()
    line = native_line(problem.external_id, statement=None, text="A different proof.")
    line["proof"]["external_id"] = "run-1"
    result = import_path(write_jsonl(tmp_path, [line]), "native")
    assert result.errors == [
        "line 1: proof.external_id: 'run-1' already names a different proof of problem "
        "'PB-Test-001'"
    ]
    assert Proof.objects.count() == 1


def test_a_failure_inside_the_adapter_rolls_back_and_propagates(tmp_path, monkeypatch):
    from annotate.importers import native

    good = [native_line(f"E-{i}", text=f"proof {i}") for i in range(3)]
    monkeypatch.setattr(engine, "BATCH_RECORDS", 1)
    real_parse = native.parse

    def parse_then_fail(lines, options=None):
        yield from real_parse(lines)
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(native, "parse", parse_then_fail)
    with pytest.raises(RuntimeError, match="adapter bug"):
        import_path(write_jsonl(tmp_path, good), "native")
    assert row_counts() == NOTHING


def test_the_command_prints_counts(tmp_path, capsys):
    call_command(
        "import_data",
        "--format",
        "native",
        str(write_jsonl(tmp_path, [FULL_LINE])),
        "--no-progress",
    )
    out = capsys.readouterr().out
    assert "problems: 1 created, 0 already present" in out
    assert "grades: 2 created, 0 already present" in out


def test_the_command_fails_with_the_error_list_and_writes_nothing(tmp_path, capsys):
    path = write_jsonl(tmp_path, [native_line("A"), native_line("B", text="")])
    with pytest.raises(CommandError, match="import.jsonl: not imported, nothing was written"):
        call_command("import_data", "--format", "native", str(path), "--no-progress")
    assert "line 2: proof.text: required" in capsys.readouterr().err
    assert row_counts() == NOTHING


def test_the_command_needs_an_existing_campaign_and_file(tmp_path):
    path = write_jsonl(tmp_path, [native_line("A")])
    with pytest.raises(CommandError, match="no campaign named 'Nope'"):
        call_command("import_data", "--format", "native", str(path), "--campaign", "Nope")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_data", "--format", "native", str(tmp_path / "missing.jsonl"))
    assert row_counts() == NOTHING


def test_the_command_adds_proofs_to_a_campaign(tmp_path, campaign):
    path = write_jsonl(tmp_path, [native_line("A")])
    call_command(
        "import_data", "--format", "native", str(path), "--campaign", campaign.name, "--no-progress"
    )
    assert campaign.items.filter(proof__problem__external_id="A").count() == 1


def test_lines_split_across_read_blocks_come_out_whole(monkeypatch, settings):
    import io

    from annotate.importers import source

    monkeypatch.setattr(source, "BLOCK_BYTES", 7)
    monkeypatch.setattr(source, "max_line_bytes", lambda: 20)
    content = b"short\nexactly seven\r\n\n" + b"x" * 45 + b"\nafter the long one\nno newline"
    seen: list[int] = []
    lines = list(source.Lines(io.BytesIO(content), progress=seen.append))
    assert [(n, str(t)) for n, t in lines] == [
        (1, "short\n"),
        (2, "exactly seven\r\n"),
        (3, "\n"),
        (4, "line 4: longer than 20 bytes"),
        (5, "after the long one\n"),
        (6, "no newline"),
    ]
    assert sum(seen) == len(content)


@pytest.mark.parametrize(
    "label, stored",
    [
        ("Number Theory", "number_theory"),
        ("number-theory", "number_theory"),
        ("  NUMBER   theory ", "number_theory"),
        ("NT", "number_theory"),
        ("Inequalities", "inequality"),
        ("Algebra, Number Theory", "algebra"),
        ("Combinatorics / Geometry", "combinatorics"),
        ("Number Theory and Algebra", "number_theory"),
        (["Geometry", "Number Theory"], "geometry"),
        ("", ""),
        ([], ""),
    ],
)
def test_category_labels_of_real_sources_are_normalised_and_the_first_is_kept(
    tmp_path, label, stored
):
    line = native_line("CAT-1")
    line["problem"]["category"] = label
    result = import_path(write_jsonl(tmp_path, [line]), "native")
    assert result.ok, result.errors
    assert Problem.objects.get().category == stored


@pytest.mark.parametrize(
    "label, unknown",
    [
        ("Topology", "'Topology'"),
        (["Algebra", "Topology"], "'Topology'"),
        ("Algebra; Tpology", "'Tpology'"),
    ],
)
def test_an_unknown_category_is_refused_with_the_allowed_values(tmp_path, label, unknown):
    line = native_line("CAT-1")
    line["problem"]["category"] = label
    result = import_path(write_jsonl(tmp_path, [line]), "native")
    assert result.errors == [
        f"line 1: problem.category: unknown category {unknown} (must be one of algebra,"
        " combinatorics, geometry, inequality, number_theory, other; case, spaces and hyphens"
        " do not matter, and several may be given (the first is kept))"
    ]
    assert Problem.objects.count() == 0
