"""The DeepSeekMath-V2 adapter: the shipped release files, score conversion, bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from django.core.management import call_command

from annotate.importers import ScoreRule, import_path
from annotate.importers.deepseek import GENERATOR_MODEL, HUMAN_GRADER
from annotate.models import Grade, Problem, Proof
from tests.import_support import (
    DEEPSEEK,
    DEEPSEEK_JSONL,
    PROOFBENCH_CSV,
    created,
    existing,
    row_counts,
    write_file,
    write_jsonl,
)

pytestmark = pytest.mark.django_db


def shipped_line(name: str = "IMO2025.jsonl", index: int = 0) -> dict:
    return json.loads((DEEPSEEK / name).read_text(encoding="utf-8").splitlines()[index])


def import_all_shipped() -> None:
    assert import_path(PROOFBENCH_CSV, "proofbench").ok
    for path in DEEPSEEK_JSONL:
        result = import_path(path, "deepseek")
        assert result.ok, result.errors


def human_grade(problem_idx: str) -> Grade:
    return Grade.objects.get(proof__problem__external_id=problem_idx)


def test_the_shipped_files_import_84_proofs_with_converted_human_scores():
    import_all_shipped()

    assert len(DEEPSEEK_JSONL) == 5
    assert Problem.objects.count() == 84  # 60 from the CSV, 24 contest problems
    assert Proof.objects.count() == 84
    assert Proof.objects.filter(generator_model=GENERATOR_MODEL).count() == 84
    assert Grade.objects.imported().filter(external_grader=HUMAN_GRADER).count() == 84
    scores = sorted(Grade.objects.values_list("score", flat=True))
    assert (
        scores.count(Decimal("1")),
        scores.count(Decimal("0.5")),
        scores.count(Decimal("0")),
    ) == (65, 4, 15)
    # (problem, raw score, contest maximum, converted score), from the release files
    for problem_idx, raw, scale, score in [
        ("IMO2025-1", 7, 7, "1"),
        ("IMO2025-6", 0, 7, "0"),  # a verifier false positive: automatic rating 1.0
        ("CMO2024-6", 9, 21, "0"),
        ("CMO2024-1", 21, 21, "1"),
        ("Putnam2024-B5", 8, 10, "0.5"),
        ("PB-Basic-007", 6, 7, "0.5"),
        ("PB-Advanced-023", 2, 7, "0"),
    ]:
        grade = human_grade(problem_idx)
        assert (grade.raw_score, grade.raw_scale_max, grade.score) == (
            Decimal(raw),
            Decimal(scale),
            Decimal(score),
        ), problem_idx
        assert grade.import_source.endswith(".jsonl")
    false_positive = Proof.objects.get(problem__external_id="IMO2025-6")
    assert false_positive.metadata == {"average_automatic_rating": 1.0}
    putnam = Problem.objects.get(external_id="Putnam2024-B5")
    assert (putnam.source, putnam.statement[:20]) == (
        "Putnam 2024 B5",
        shipped_line("Putnam2024.jsonl", 10)["question"][:20],
    )


def test_reimporting_the_release_adds_nothing():
    import_all_shipped()
    before = row_counts()
    results = [import_path(path, "deepseek") for path in DEEPSEEK_JSONL]
    assert row_counts() == before
    assert sum(created(r)["proofs"] + created(r)["grades"] for r in results) == 0
    assert sum(existing(r)["proofs"] for r in results) == 84


def test_proofbench_rows_create_their_problems_when_the_csv_was_not_imported():
    result = import_path(DEEPSEEK / "IMO-ProofBench-Advanced.jsonl", "deepseek")
    assert created(result)["problems"] == 30
    problem = Problem.objects.get(external_id="PB-Advanced-005")
    line = shipped_line("IMO-ProofBench-Advanced.jsonl", 4)
    # The reworded statement the model saw is kept with its proof; the problem keeps the original.
    assert problem.statement == line["question_original"]
    assert Proof.objects.get(problem=problem).metadata["question"] == line["question"]
    assert (problem.category, problem.level) == ("geometry", line["level"])
    assert problem.guidelines == line["grading guidelines"]


def test_a_model_prediction_written_as_a_python_dict_literal_is_read(tmp_path):
    line = shipped_line()
    line["model_prediction"] = repr(line["model_prediction"])
    result = import_path(write_jsonl(tmp_path, [line], "IMO2025.jsonl"), "deepseek")
    assert result.ok, result.errors
    assert human_grade("IMO2025-1").score == Decimal("1")


def test_a_model_prediction_string_is_never_evaluated(tmp_path):
    line = shipped_line()
    line["model_prediction"] = "__import__('os').system('touch pwned')"
    result = import_path(write_jsonl(tmp_path, [line]), "deepseek")
    assert result.errors == ["line 1: model_prediction: a string that is not a Python dict literal"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "change, error",
    [
        (
            lambda d: d["model_prediction"].update(human_rating=8),
            "line 2: model_prediction.human_rating: must be between 0 and 7, got 8",
        ),
        (
            lambda d: d["model_prediction"].update(human_rating="7"),
            "line 2: model_prediction.human_rating: must be a number",
        ),
        (
            lambda d: d["model_prediction"].pop("human_rating"),
            "line 2: model_prediction.human_rating: required",
        ),
        (lambda d: d["model_prediction"].pop("proof"), "line 2: model_prediction.proof: required"),
        (
            lambda d: d["model_prediction"].update(rating=1),
            "line 2: model_prediction.rating: unknown key",
        ),
        (
            lambda d: d.update(problem_idx="AIME2025-1"),
            "line 2: problem_idx: no known contest scale for 'AIME2025-1'; pass --scale-max",
        ),
        (lambda d: d.update(type="Topology"), "line 2: type: unknown category 'Topology'"),
        (lambda d: d.update(extra="x"), "line 2: extra: unknown key"),
        (lambda d: d.pop("question"), "line 2: question: required"),
        (
            lambda d: d.update(model_prediction=[1]),
            "line 2: model_prediction: must be an object, got a list",
        ),
    ],
)
def test_bad_release_lines_are_rejected_with_line_and_field(tmp_path, change, error):
    good, bad = shipped_line(index=0), shipped_line(index=1)
    change(bad)
    result = import_path(write_jsonl(tmp_path, [good, bad]), "deepseek")
    assert not result.ok
    assert result.errors[0].startswith(error), result.errors
    assert row_counts()["proofs"] == 0 and Problem.objects.count() == 0


def test_an_unknown_contest_imports_with_an_explicit_scale(tmp_path):
    line = shipped_line()
    line["problem_idx"] = "AIME2025-1"
    line["model_prediction"]["human_rating"] = 12
    result = import_path(
        write_jsonl(tmp_path, [line]), "deepseek", score_rule=ScoreRule(scale_max=15)
    )
    assert result.ok
    grade = human_grade("AIME2025-1")
    assert (grade.raw_score, grade.raw_scale_max, grade.score) == (12, 15, Decimal("0.5"))


@pytest.mark.parametrize(
    "raw, scale, score",
    [
        (7, 7, "1"),
        (6, 7, "0.5"),
        (5, 7, "0"),
        (1, 7, "0"),
        (0, 7, "0"),
        (10, 10, "1"),
        (8, 10, "0.5"),
        (7, 10, "0"),
        (21, 21, "1"),
        (17, 21, "0.5"),
        (16, 21, "0"),
        (9, 21, "0"),
    ],
)
def test_the_default_rule_gives_half_from_four_fifths_of_full_marks(raw, scale, score):
    assert ScoreRule().convert(Fraction(raw), scale) == Decimal(score)


def test_the_half_threshold_is_configurable_from_the_command_line(tmp_path):
    lines = [shipped_line("Putnam2024.jsonl", 10)]  # B5: 8 of 10
    call_command(
        "import_data",
        "--format",
        "deepseek",
        str(write_jsonl(tmp_path, lines, "p.jsonl")),
        "--partial-at",
        "9/10",
        "--no-progress",
    )
    assert human_grade("Putnam2024-B5").score == Decimal("0")


def test_problem_input_files_import_as_problems_only():
    result = import_path(DEEPSEEK / "CMO2025.json", "deepseek")
    assert result.ok
    assert created(result)["problems"] == 6 and Proof.objects.count() == 0
    assert Problem.objects.get(external_id="CMO2025-1").source == "CMO 2025 P1"
    assert import_path(DEEPSEEK / "IMO2025.json", "deepseek").ok
    assert Problem.objects.get(external_id="IMO2025-3").short_answer == "4"


def test_a_bad_problem_input_file_names_the_item(tmp_path):
    items = [
        {"id": 1, "question": "Q", "answer": None, "contest": "X", "problem_idx": "X-1"},
        {"id": 2, "answer": None, "contest": "X", "problem_idx": "X-2"},
    ]
    result = import_path(write_file(tmp_path, "x.json", json.dumps(items)), "deepseek")
    assert result.errors == ["file: item 2.question: required"]
    assert Problem.objects.count() == 0
