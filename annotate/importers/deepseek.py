"""The DeepSeekMath-V2 release files (data/deepseek_math_v2).

`*.jsonl`: one proof per line, with keys `question`, `problem_idx` and `model_prediction`
{`proof`, `average_automatic_rating`, `human_rating`}; the IMO-ProofBench files also carry
`solution`, `grading guidelines`, `type`, `level`, `source` and sometimes
`question_original` (the statement before it was reworded for the model). In some copies
`model_prediction` is a string holding a Python dict literal; it is read with
`ast.literal_eval`, never evaluated.

`*.json`: a JSON array of problem inputs (`id`, `question`, `answer`, `contest`,
`problem_idx`), imported as problems only.

Each proof becomes a Proof by "deepseek-math-v2" with the mean automatic rating in its
metadata, and one imported Grade by "deepseek-math-v2 human expert" holding the human
score on the contest's scale (`raw_score` / `raw_scale_max`) and its 0 / 0.5 / 1
conversion by `ScoreRule`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import BinaryIO

from annotate.importers.records import (
    LIMITS,
    Fields,
    GradeRecord,
    LineError,
    ProblemRecord,
    ProofRecord,
    Record,
    category_from_labels,
    unknown_category_message,
)
from annotate.importers.source import Lines, json_objects

GENERATOR_MODEL = "deepseek-math-v2"
HUMAN_GRADER = "deepseek-math-v2 human expert"
TOP_KEYS = (
    "question",
    "problem_idx",
    "model_prediction",
    "solution",
    "grading guidelines",
    "type",
    "level",
    "source",
    "question_original",
)
PREDICTION_KEYS = ("proof", "average_automatic_rating", "human_rating")
PROBLEM_INPUT_KEYS = ("id", "question", "answer", "contest", "problem_idx")
# Largest `*.json` problem-input file: it is read whole (the shipped ones are a few kB).
MAX_JSON_ARRAY_BYTES = 16 * 1024**2

# Points per problem on each contest's own scale, by problem_idx prefix.
SCALE_MAX = {"IMO": 7, "PB": 7, "CMO": 21, "Putnam": 10}
_CONTEST = re.compile(
    r"^(?:(?P<contest>IMO|CMO|Putnam)(?P<year>\d{4})-(?P<number>\w+)|PB-\w+-\d+)$"
)


@dataclass(frozen=True)
class ScoreRule:
    """How a human contest score becomes 0 / 0.5 / 1.

    fraction = raw score ÷ contest maximum. Full marks → 1 (completely correct and
    rigorous). At least `partial_at` (default 4/5) → 0.5 (generally correct, minor errors
    or omissions): that is 6/7 at the IMO and on IMO-ProofBench (the benchmark's "Almost"
    band), 8 or 9/10 at the Putnam (its "minor errors" band), 17–20/21 at the CMO.
    Anything lower → 0 (a fatal gap: partial progress is not a proof). Override with
    `import_data --partial-at`, and the scale with `--scale-max`.
    """

    partial_at: Fraction = Fraction(4, 5)
    scale_max: int | None = None  # None: derived from problem_idx (SCALE_MAX)

    def convert(self, raw: Fraction, scale_max: int) -> Decimal:
        fraction = raw / scale_max
        if fraction >= 1:
            return Decimal("1")
        if fraction >= self.partial_at:
            return Decimal("0.5")
        return Decimal("0")


def contest_scale(problem_idx: str, rule: ScoreRule) -> int | None:
    if rule.scale_max is not None:
        return rule.scale_max
    match = _CONTEST.match(problem_idx)
    if not match:
        return None
    return SCALE_MAX[match["contest"] or "PB"]


def contest_source(problem_idx: str) -> str:
    """'IMO2025-1' -> 'IMO 2025 P1', 'Putnam2024-B5' -> 'Putnam 2024 B5'."""
    match = _CONTEST.match(problem_idx)
    if not match or not match["contest"]:
        return ""
    number = match["number"]
    return f"{match['contest']} {match['year']} {'P' + number if number.isdigit() else number}"


def parse(lines: Lines, rule: ScoreRule | None = None) -> Iterator[Record | list[LineError]]:
    rule = rule or ScoreRule()
    for decoded in json_objects(lines):
        if isinstance(decoded, list):
            yield decoded
            continue
        line, data = decoded
        errors: list[LineError] = []
        record = parse_record(data, line, rule, errors)
        yield errors if errors or record is None else record


def parse_record(
    data: object, line: int, rule: ScoreRule, errors: list[LineError]
) -> Record | None:
    top = Fields.of(data, "", line, errors)
    if top is None:
        return None
    top.reject_unknown(TOP_KEYS)
    problem_idx = top.text("problem_idx", required=True, limit=LIMITS["problem.external_id"])
    question = top.text("question", required=True)
    original = top.text("question_original")
    category_label = top.text("type")
    category, unknown = category_from_labels(category_label) if category_label else ("", [])
    if unknown:
        top.error("type", unknown_category_message(unknown))
    problem = ProblemRecord(
        external_id=problem_idx,
        # The release rewords a few ProofBench statements; the problem keeps the original.
        statement=original or question,
        reference_solution=top.text("solution"),
        guidelines=top.text("grading guidelines"),
        category=category or "",
        level=top.text("level", limit=LIMITS["problem.level"]),
        source=top.text("source", limit=LIMITS["problem.source"]) or contest_source(problem_idx),
    )
    prediction = _prediction(top)
    if prediction is None:
        return None
    prediction.reject_unknown(PREDICTION_KEYS)
    proof_text = prediction.text("proof", required=True)
    automatic = prediction.number("average_automatic_rating")
    if automatic is not None and automatic > 1:
        prediction.error("average_automatic_rating", "must be between 0 and 1")
    human = prediction.data.get("human_rating")
    scale_max = contest_scale(problem_idx, rule) if problem_idx else None
    if problem_idx and scale_max is None:
        top.error("problem_idx", f"no known contest scale for {problem_idx!r}; pass --scale-max")
    grade = None
    if human is None:
        prediction.error("human_rating", "required")
    elif isinstance(human, bool) or not isinstance(human, int | float):
        prediction.error("human_rating", "must be a number")
    elif scale_max is not None:
        if not 0 <= human <= scale_max:
            prediction.error("human_rating", f"must be between 0 and {scale_max}, got {human}")
        else:
            raw = Fraction(str(human))
            grade = GradeRecord(
                grader=HUMAN_GRADER,
                score=rule.convert(raw, scale_max),
                raw_score=Decimal(str(human)),
                raw_scale_max=Decimal(scale_max),
            )
    if errors or grade is None:
        return None
    metadata: dict = {"average_automatic_rating": prediction.data.get("average_automatic_rating")}
    if original and original != question:
        metadata["question"] = question  # the wording the model was given
    proof = ProofRecord(text=proof_text, generator_model=GENERATOR_MODEL, metadata=metadata)
    return Record(line, problem, proof, [grade])


def _prediction(top: Fields) -> Fields | None:
    value = top.data.get("model_prediction")
    if value is None:
        top.error("model_prediction", "required")
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            top.error("model_prediction", "a string that is not a Python dict literal")
            return None
    return Fields.of(value, "model_prediction", top.line, top.errors)


def parse_problem_inputs(fileobj: BinaryIO, size: int) -> Iterator[Record | list[LineError]]:
    """A `*.json` array of problem inputs -> problems (errors name the item, 1-based)."""
    if size > MAX_JSON_ARRAY_BYTES:
        yield [LineError(0, "", f"a JSON array file may be at most {MAX_JSON_ARRAY_BYTES} bytes")]
        return
    try:
        items = json.loads(fileobj.read().decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield [LineError(0, "", f"not valid UTF-8 (byte {exc.start + 1})")]
        return
    except json.JSONDecodeError as exc:
        yield [LineError(exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})")]
        return
    if not isinstance(items, list):
        yield [LineError(0, "", "must be a JSON array of problems")]
        return
    for index, item in enumerate(items, 1):
        errors: list[LineError] = []
        f = Fields.of(item, f"item {index}", 0, errors)
        if f is not None:
            f.reject_unknown(PROBLEM_INPUT_KEYS)
            external_id = f.text("problem_idx", required=True, limit=LIMITS["problem.external_id"])
            statement = f.text("question", required=True)
            answer = f.data.get("answer")
            if isinstance(answer, int | float) and not isinstance(answer, bool):
                short_answer = str(answer)
            else:
                short_answer = f.text("answer")
            short_answer = "" if short_answer == "null" else short_answer
            if not errors:
                source = contest_source(external_id) or f.text("contest")
                problem = ProblemRecord(
                    external_id,
                    statement,
                    short_answer=short_answer,
                    source=source[: LIMITS["problem.source"]],
                )
                yield Record(index, problem)
                continue
        yield errors
