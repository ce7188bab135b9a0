"""What every adapter hands the import engine: one validated record per input line.

Adapters (native JSONL, DeepSeekMath-V2 JSONL, IMO-ProofBench CSV) turn their own format
into `Record`s and report everything wrong with a line as `LineError`s named by field
(`line 7: proof.text: required`). `Fields` is the small typed reader they share, so that
every format checks types, sizes and unknown keys the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from annotate.anchoring import anchor_exact
from annotate.models import Category, Grade, GradeIssue, Problem, Proof
from annotate.text import text_problem as stored_text_problem
from verification.models import Analysis


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass(slots=True)
class ProblemRecord:
    external_id: str
    # Empty statement: the line only references a problem that must already exist.
    statement: str = ""
    reference_solution: str = ""
    guidelines: str = ""
    short_answer: str = ""
    category: str = ""
    level: str = ""
    source: str = ""


@dataclass(slots=True)
class ProofRecord:
    text: str
    external_id: str = ""
    generator_model: str = ""
    generator_version: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    human_author: str = ""
    self_evaluation: str = ""
    self_score: Decimal | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""  # filled in by the engine


@dataclass(slots=True)
class IssueRecord:
    start: int | None
    end: int | None
    quote: str = ""
    note: str = ""
    severity: str = GradeIssue.Severity.MINOR


@dataclass(slots=True)
class GradeRecord:
    grader: str
    score: Decimal
    comment: str = ""
    raw_score: Decimal | None = None
    raw_scale_max: Decimal | None = None
    issues: list[IssueRecord] = field(default_factory=list)


@dataclass(slots=True)
class AnalysisRecord:
    text: str
    model: str = ""
    prompt_version: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Record:
    line: int
    problem: ProblemRecord
    proof: ProofRecord | None = None
    grades: list[GradeRecord] = field(default_factory=list)
    analyses: list[AnalysisRecord] = field(default_factory=list)
    # Filled in by the engine.
    problem_id: int | None = None
    proof_id: int | None = None
    proof_created: bool = False


def max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


SCORE_VALUES = {Decimal("0"), Decimal("0.5"), Decimal("1")}
CATEGORY_VALUES = {c.value for c in Category}
SEVERITY_VALUES = {s.value for s in GradeIssue.Severity}

# Column widths, read from the models so that PostgreSQL never rejects a row mid-import.
LIMITS = {
    "problem.external_id": max_length(Problem, "external_id"),
    "problem.level": max_length(Problem, "level"),
    "problem.source": max_length(Problem, "source"),
    "proof.external_id": max_length(Proof, "external_id"),
    "proof.generator_model": max_length(Proof, "generator_model"),
    "proof.generator_version": max_length(Proof, "generator_version"),
    "proof.human_author": max_length(Proof, "human_author"),
    "grade.grader": max_length(Grade, "external_grader"),
    "analysis.model": max_length(Analysis, "model"),
    "analysis.prompt_version": max_length(Analysis, "prompt_version"),
}


# Labels real sources use for the categories, beyond the values and their names
# ("number_theory", "Number theory"): matched after lower-casing and collapsing spaces,
# hyphens and underscores to one space.
CATEGORY_SYNONYMS = {
    "nt": Category.NUMBER_THEORY,
    "number theory": Category.NUMBER_THEORY,
    "elementary number theory": Category.NUMBER_THEORY,
    "alg": Category.ALGEBRA,
    "algebraic": Category.ALGEBRA,
    "combinatorial": Category.COMBINATORICS,
    "combi": Category.COMBINATORICS,
    "combo": Category.COMBINATORICS,
    "geo": Category.GEOMETRY,
    "geometric": Category.GEOMETRY,
    "inequalities": Category.INEQUALITY,
    "misc": Category.OTHER,
    "miscellaneous": Category.OTHER,
}
# Between several categories in one string: "Algebra, Number Theory", "Algebra / NT".
_CATEGORY_SEPARATORS = re.compile(r"\s*(?:[,;/|&+]|\band\b)\s*", re.IGNORECASE)
CATEGORY_HELP = (
    f"one of {', '.join(sorted(CATEGORY_VALUES))}; case, spaces and hyphens do not matter, "
    "and several may be given (the first is kept)"
)


def category_from_label(label: str) -> str | None:
    """'Number theory', 'number_theory', 'NUMBER-THEORY' or 'NT' -> 'number_theory'."""
    key = " ".join(re.split(r"[\s_-]+", label.strip().lower())).strip()
    if key.replace(" ", "_") in CATEGORY_VALUES:
        return key.replace(" ", "_")
    synonym = CATEGORY_SYNONYMS.get(key)
    return synonym.value if synonym is not None else None


def category_from_labels(value: str | list[str]) -> tuple[str, list[str]]:
    """(the category to store, the labels not recognised) for one label or several.

    A problem has one category, so of several ("Algebra, Number Theory", or a list) the
    first is kept; every label must still be known, so a typo is not silently dropped.
    """
    labels = value if isinstance(value, list) else _CATEGORY_SEPARATORS.split(value)
    labels = [label.strip() for label in labels if label.strip()]
    categories = [category_from_label(label) for label in labels]
    unknown = [label for label, category in zip(labels, categories, strict=True) if not category]
    return next((c for c in categories if c), ""), unknown


def unknown_category_message(unknown: list[str]) -> str:
    return f"unknown category {', '.join(map(repr, unknown))} (must be {CATEGORY_HELP})"


class Fields:
    """Typed reads from one JSON object; every problem is appended to `errors`.

    `path` prefixes field names in messages (`grades[0].issues[1].start`). Reads return a
    harmless default after recording an error, so one pass reports all of a line's faults.
    """

    def __init__(self, data: dict[str, Any], path: str, line: int, errors: list[LineError]):
        self.data = data
        self.path = path
        self.line = line
        self.errors = errors

    @classmethod
    def of(cls, value: Any, path: str, line: int, errors: list[LineError]) -> Fields | None:
        if not isinstance(value, dict):
            errors.append(LineError(line, path, f"must be an object, got {_type_name(value)}"))
            return None
        return cls(value, path, line, errors)

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        self.errors.append(LineError(self.line, self.name(key), message))

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in self.data:
            if key not in allowed:
                self.error(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def text(self, key: str, *, required: bool = False, limit: int | None = None) -> str:
        """A string: at most IMPORT_MAX_TEXT_CHARS (or `limit`) characters, storable as is."""
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.error(key, "required")
            return ""
        if not isinstance(value, str):
            self.error(key, f"must be a string, got {_type_name(value)}")
            return ""
        problem = text_problem(value, limit)
        if problem:
            self.error(key, problem)
            return ""
        return value

    def score(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"must be a number (0, 0.5 or 1), got {_type_name(value)}")
            return None
        score = Decimal(str(value))
        if score not in SCORE_VALUES:
            self.error(key, f"must be 0, 0.5 or 1, got {value}")
            return None
        return score.normalize() if score else Decimal("0")

    def number(self, key: str, *, minimum: float = 0) -> Decimal | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"must be a number, got {_type_name(value)}")
            return None
        if value < minimum or value >= 10_000:
            self.error(key, f"must be between {minimum} and 9999.99, got {value}")
            return None
        return Decimal(str(value)).quantize(Decimal("0.01"))

    def offset(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be an integer, got {_type_name(value)}")
            return None
        if value < 0:
            self.error(key, f"must not be negative, got {value}")
            return None
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        """A free-form JSON object (sampling parameters, metadata)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key, f"must be an object, got {_type_name(value)}")
            return {}
        encoded = json.dumps(value)
        # PostgreSQL's jsonb refuses NUL characters; say so here rather than mid-import.
        if "\\u0000" in encoded:
            self.error(key, "contains a NUL character")
            return {}
        if len(encoded) > settings.IMPORT_MAX_TEXT_CHARS:
            self.error(key, f"longer than {settings.IMPORT_MAX_TEXT_CHARS} characters as JSON")
            return {}
        return value

    def objects(self, key: str) -> list[Fields]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"must be a list, got {_type_name(value)}")
            return []
        items = []
        for index, item in enumerate(value):
            fields = Fields.of(item, f"{self.name(key)}[{index}]", self.line, self.errors)
            if fields is not None:
                items.append(fields)
        return items


def text_problem(value: str, limit: int | None = None) -> str | None:
    """Why `value` cannot be stored as a text column, or None (the rule: annotate/text.py)."""
    return stored_text_problem(
        value, limit if limit is not None else settings.IMPORT_MAX_TEXT_CHARS
    )


def check_issue_anchor(
    issue: IssueRecord, text: str, path: str, line: int, errors: list[LineError]
) -> None:
    """Anchor an imported issue by the rules of a grader's (`annotate.anchoring.anchor_exact`).

    Offsets must fall inside the proof text; offsets alone get their quote from it. A quote
    is found verbatim: offsets that do not select it move to its occurrence nearest `start`
    (and are refused when it is nowhere), a quote alone gets the offsets of its occurrence
    nearest the beginning. Unlike a grader, who can fix their quote, an imported quote alone
    that is not in the text is kept as it came, on an issue about the proof as a whole.
    """
    if (issue.start is None) != (issue.end is None):
        errors.append(LineError(line, path, "give both start and end, or neither"))
        return
    if issue.start is not None and issue.end is not None:
        if issue.end < issue.start:
            errors.append(
                LineError(line, f"{path}.end", f"before start ({issue.end} < {issue.start})")
            )
            return
        if issue.end > len(text):
            errors.append(
                LineError(line, f"{path}.end", f"beyond the end of the proof text ({len(text)})")
            )
            return
    anchor = anchor_exact(text, issue.quote, start=issue.start, end=issue.end)
    if anchor is not None:
        issue.start, issue.end, issue.quote = anchor.start, anchor.end, anchor.exact
    elif issue.start is not None:
        span = text[issue.start : issue.end]
        errors.append(
            LineError(
                line,
                f"{path}.quote",
                f"not in the proof text (at {issue.start}:{issue.end} it reads {_preview(span)})",
            )
        )


def _preview(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[:width] + "…")


def _type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
