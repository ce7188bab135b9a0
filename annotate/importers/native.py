"""Proofdesk's own JSONL interchange format (README.md, "Importing data").

One JSON object per line: a problem, optionally one proof of it with that proof's grades
and verifier analyses. Blank lines are skipped. Accepted keys (any other key is an error,
so typos are caught):

- `problem`: `external_id` (required); `statement` (required to create a problem; a line
  whose problem already exists, in the database or earlier in the file, may give the
  `external_id` alone, and the stored problem is kept as it is); `reference_solution`,
  `guidelines`, `short_answer`, `category` (one of Category's values, read leniently: see
  `records.category_from_labels`), `level`, `source`.
- `proof`: `text` (required); `external_id`; `generator` {`model`, `version`, `sampling`};
  `author` (a person, instead of a generator); `self_evaluation`; `self_score` (0, 0.5, 1);
  `metadata` (free-form object).
- `grades`: list of {`grader` (required), `score` (required, 0 / 0.5 / 1), `comment`,
  `raw_score`, `raw_scale_max`, `issues`: list of {`start`, `end`, `quote`, `note`,
  `severity` ("fatal" or "minor")}}. Offsets are character offsets into the proof text;
  a quote, when given with offsets, must equal the text between them.
- `analyses`: list of {`text` (required), `model`, `prompt_version`, `sampling`}.
"""

from __future__ import annotations

from collections.abc import Iterator

from annotate.importers.records import (
    LIMITS,
    SEVERITY_VALUES,
    AnalysisRecord,
    Fields,
    GradeRecord,
    IssueRecord,
    LineError,
    ProblemRecord,
    ProofRecord,
    Record,
    category_from_labels,
    check_issue_anchor,
    unknown_category_message,
)
from annotate.importers.source import Lines, json_objects

TOP_KEYS = ("problem", "proof", "grades", "analyses")
PROBLEM_KEYS = (
    "external_id",
    "statement",
    "reference_solution",
    "guidelines",
    "short_answer",
    "category",
    "level",
    "source",
)
PROOF_KEYS = (
    "external_id",
    "text",
    "generator",
    "author",
    "self_evaluation",
    "self_score",
    "metadata",
)
GENERATOR_KEYS = ("model", "version", "sampling")
GRADE_KEYS = ("grader", "score", "comment", "raw_score", "raw_scale_max", "issues")
ISSUE_KEYS = ("start", "end", "quote", "note", "severity")
ANALYSIS_KEYS = ("text", "model", "prompt_version", "sampling")


def parse(lines: Lines, options: object = None) -> Iterator[Record | list[LineError]]:
    for decoded in json_objects(lines):
        if isinstance(decoded, list):
            yield decoded
            continue
        line, data = decoded
        errors: list[LineError] = []
        record = parse_record(data, line, errors)
        yield errors if errors or record is None else record


def parse_record(data: object, line: int, errors: list[LineError]) -> Record | None:
    top = Fields.of(data, "", line, errors)
    if top is None:
        return None
    top.reject_unknown(TOP_KEYS)
    if not top.has("problem"):
        top.error("problem", "required")
        return None
    problem = _problem(Fields.of(top.data["problem"], "problem", line, errors))
    proof = None
    if top.has("proof"):
        proof = _proof(Fields.of(top.data["proof"], "proof", line, errors))
    grades = [_grade(f, proof) for f in top.objects("grades")]
    analyses = [_analysis(f) for f in top.objects("analyses")]
    if (grades or analyses) and proof is None and not top.has("proof"):
        top.error("proof", "required when grades or analyses are given")
    if errors or problem is None:
        return None
    graders = [g.grader for g in grades]
    for index, grader in enumerate(graders):
        if grader in graders[:index]:
            errors.append(LineError(line, f"grades[{index}].grader", f"{grader!r} appears twice"))
    if errors:
        return None
    return Record(line, problem, proof, grades, analyses)  # type: ignore[arg-type]


def _problem(f: Fields | None) -> ProblemRecord | None:
    if f is None:
        return None
    f.reject_unknown(PROBLEM_KEYS)
    category = _category(f)
    return ProblemRecord(
        external_id=f.text("external_id", required=True, limit=LIMITS["problem.external_id"]),
        statement=f.text("statement"),
        reference_solution=f.text("reference_solution"),
        guidelines=f.text("guidelines"),
        short_answer=f.text("short_answer"),
        category=category,
        level=f.text("level", limit=LIMITS["problem.level"]),
        source=f.text("source", limit=LIMITS["problem.source"]),
    )


def _category(f: Fields) -> str:
    """One label or several (a string with commas, or a list); the first is kept."""
    value = f.data.get("category")
    if isinstance(value, list) and all(isinstance(label, str) for label in value):
        labels: str | list[str] = value
    elif isinstance(value, list):
        f.error("category", "must be a string or a list of strings")
        return ""
    else:
        labels = f.text("category")
    category, unknown = category_from_labels(labels) if labels else ("", [])
    if unknown:
        f.error("category", unknown_category_message(unknown))
    return category


def _proof(f: Fields | None) -> ProofRecord | None:
    if f is None:
        return None
    f.reject_unknown(PROOF_KEYS)
    model = version = ""
    sampling: dict = {}
    if f.has("generator"):
        g = Fields.of(f.data["generator"], f.name("generator"), f.line, f.errors)
        if g is not None:
            g.reject_unknown(GENERATOR_KEYS)
            model = g.text("model", limit=LIMITS["proof.generator_model"])
            version = g.text("version", limit=LIMITS["proof.generator_version"])
            sampling = g.mapping("sampling")
    return ProofRecord(
        text=f.text("text", required=True),
        external_id=f.text("external_id", limit=LIMITS["proof.external_id"]),
        generator_model=model,
        generator_version=version,
        sampling=sampling,
        human_author=f.text("author", limit=LIMITS["proof.human_author"]),
        self_evaluation=f.text("self_evaluation"),
        self_score=f.score("self_score"),
        metadata=f.mapping("metadata"),
    )


def _grade(f: Fields, proof: ProofRecord | None) -> GradeRecord:
    f.reject_unknown(GRADE_KEYS)
    issues = []
    for issue_fields in f.objects("issues"):
        faults = len(f.errors)
        issue = _issue(issue_fields)
        if proof is not None and proof.text and len(f.errors) == faults:
            check_issue_anchor(issue, proof.text, issue_fields.path, f.line, f.errors)
        issues.append(issue)
    return GradeRecord(
        grader=f.text("grader", required=True, limit=LIMITS["grade.grader"]),
        score=f.score("score", required=True),  # type: ignore[arg-type]
        comment=f.text("comment"),
        raw_score=f.number("raw_score"),
        raw_scale_max=f.number("raw_scale_max"),
        issues=issues,
    )


def _issue(f: Fields) -> IssueRecord:
    f.reject_unknown(ISSUE_KEYS)
    severity = f.text("severity") or "minor"
    if severity not in SEVERITY_VALUES:
        f.error("severity", f"must be one of {', '.join(sorted(SEVERITY_VALUES))}")
    return IssueRecord(
        start=f.offset("start"),
        end=f.offset("end"),
        quote=f.text("quote"),
        note=f.text("note"),
        severity=severity,
    )


def _analysis(f: Fields) -> AnalysisRecord:
    f.reject_unknown(ANALYSIS_KEYS)
    return AnalysisRecord(
        text=f.text("text", required=True),
        model=f.text("model", limit=LIMITS["analysis.model"]),
        prompt_version=f.text("prompt_version", limit=LIMITS["analysis.prompt_version"]),
        sampling=f.mapping("sampling"),
    )
