"""The import engine: validated records in, database rows out, all or nothing.

Adapters yield `Record`s (or the `LineError`s of a bad line); the engine writes them in
batches inside ONE transaction and rolls everything back if any line was bad, so a file
either imports completely or leaves the database untouched. Memory stays constant: only
the current batch and a map of problem ids are held; duplicates against earlier batches
are found by querying rows already written in the same transaction. (Parsing in a
read-ahead thread was tried and measured slower: the GIL hand-offs delay every wait on
the database.)

Idempotence comes from natural keys, the same ones the database enforces:
problem external_id; proof (problem, SHA-256 of its text); imported grade (proof,
grader, import source); imported analysis (proof, model, prompt version, text hash);
campaign item (campaign, proof). Re-importing a file creates nothing and counts every
row as already present.

Writing a batch, on every database:
1. look up the batch's problems, create the new ones (in line order, so a reference
   before its definition is an error, whatever the batch size);
2. hash the proofs, look up those already stored, create the rest;
3. for proofs not created just now, look up their grades, analyses and campaign items,
   create the missing ones (issues with their grades).
On PostgreSQL, step "create" is a `COPY ... FROM STDIN` with ids drawn from the table's
sequence beforehand (so no RETURNING is needed); elsewhere it is `bulk_create`. The
command, the upload job and the benchmark all take this same path. Imports take a
transaction-scoped advisory lock so that two imports never race on the same natural keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from annotate.anchoring import CONTEXT_CHARS
from annotate.gold import recompute_gold_labels
from annotate.importers.records import LineError, Record
from annotate.models import (
    Campaign,
    CampaignItem,
    Grade,
    GradeIssue,
    Problem,
    Proof,
    content_hash,
    order_key_for,
)
from verification.models import Analysis

MAX_ERRORS = 50
BATCH_RECORDS = 1000
BATCH_CHARS = 16_000_000  # text held per batch, whichever limit comes first
LOOKUP_CHUNK = 500  # ids per IN (...) clause; SQLite caps parameters per statement
ADVISORY_LOCK_KEY = 0x70726F6F66  # "proof": serialises imports on PostgreSQL

KINDS = ("problems", "proofs", "grades", "issues", "analyses", "campaign_items")


@dataclass
class ImportResult:
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {kind: {"created": 0, "existing": 0} for kind in KINDS}
    )
    errors: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def add_errors(self, errors: Iterable[LineError | str]) -> None:
        for error in errors:
            if self.full:
                self.truncated = True
                return
            self.errors.append(str(error))

    def count(self, kind: str, created: bool, n: int = 1) -> None:
        self.counts[kind]["created" if created else "existing"] += n

    def summary(self) -> list[str]:
        return [
            f"{kind.replace('_', ' ')}: {c['created']} created, {c['existing']} already present"
            for kind, c in self.counts.items()
            if c["created"] or c["existing"] or kind in ("problems", "proofs")
        ]

    def error_lines(self) -> list[str]:
        tail = [f"(stopped after {MAX_ERRORS} errors)"] if self.truncated else []
        return [*self.errors, *tail]

    def as_json(self) -> dict[str, Any]:
        return {"counts": self.counts if self.ok else {}, "errors": self.error_lines()}


class _RollBack(Exception):
    pass


def import_records(
    items: Iterable[Record | list[LineError]],
    *,
    source_name: str,
    campaign: Campaign | None = None,
) -> ImportResult:
    """Write `items` in one transaction; on any error, write nothing and report why."""
    result = ImportResult()

    def write_all() -> None:
        writer = _Writer(source_name, campaign, result)
        writer.lock()
        batch: list[Record] = []
        chars = 0
        for item in items:
            if isinstance(item, Record):
                batch.append(item)
                chars += _size(item)
            else:
                result.add_errors(item)
            if result.full:
                result.truncated = True
                break
            if len(batch) >= BATCH_RECORDS or chars >= BATCH_CHARS:
                writer.write(batch)
                batch, chars = [], 0
        if not result.full:
            writer.write(batch)

    return all_or_nothing(result, write_all, KINDS)


def all_or_nothing(
    result: ImportResult, work: Callable[[], None], kinds: Iterable[str]
) -> ImportResult:
    """Run `work` in one transaction: an error it records in `result`, or a row the database
    refuses, rolls everything back, and the counts then say nothing was written."""
    try:
        with transaction.atomic():
            work()
            if not result.ok:
                raise _RollBack
    except _RollBack:
        pass
    except IntegrityError as exc:
        # Only a concurrent writer outside the importer can get here (imports serialise).
        result.add_errors([f"file: the database refused a row ({exc}); nothing was imported"])
    if not result.ok:
        result.counts = {kind: {"created": 0, "existing": 0} for kind in kinds}
    return result


def _size(record: Record) -> int:
    size = len(record.problem.statement) + len(record.problem.reference_solution)
    if record.proof is not None:
        size += len(record.proof.text) + len(record.proof.self_evaluation)
    return size + sum(len(a.text) for a in record.analyses)


def _stored_proofs(column: str, keys: set[tuple[Any, str]]) -> list[tuple[int, str, str, int]]:
    """(problem_id, content_hash, external_id, id) of stored proofs whose
    (problem_id, `column`) is in `keys`.

    A row-value IN over VALUES (PostgreSQL and SQLite both have it) lets the planner probe
    the unique (problem, hash) or (problem, external id) index once per key, however large
    the table has grown inside this transaction; `problem_id IN (...) AND hash IN (...)`
    degenerates into a scan of every proof of those problems.
    """
    assert column in ("content_hash", "external_id")
    partial = " AND external_id <> ''" if column == "external_id" else ""
    rows: list[tuple[int, str, str, int]] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(sorted(keys)):
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"SELECT problem_id, content_hash, external_id, id FROM {Proof._meta.db_table} "
                f"WHERE (problem_id, {column}) IN (VALUES {values}){partial}",
                [value for key in chunk for value in key],
            )
            rows.extend(cursor.fetchall())
    return rows


def _chunks(values: Iterable[Any], size: int = LOOKUP_CHUNK) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Writer:
    def __init__(self, source_name: str, campaign: Campaign | None, result: ImportResult):
        self.source_name = source_name
        self.campaign = campaign
        self.result = result
        self.copy = connection.vendor == "postgresql"
        # external_id -> pk (None while validating only, after an error).
        self.problem_ids: dict[str, int | None] = {}
        self.problems_counted: set[str] = set()

    def lock(self) -> None:
        if self.copy:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])

    def error(self, record: Record, field_name: str, message: str) -> None:
        self.result.add_errors([LineError(record.line, field_name, message)])

    def write(self, batch: list[Record]) -> None:
        if not batch:
            return
        self.problems(batch)
        if not self.result.ok:
            return  # keep checking problem references, write nothing more
        with_proofs = [r for r in batch if r.proof is not None]
        self.proofs(with_proofs)
        if not self.result.ok:
            return
        self.grades(with_proofs)
        self.analyses(with_proofs)
        if self.campaign is not None:
            self.campaign_items(with_proofs)

    # -- problems ----------------------------------------------------------------------
    def problems(self, batch: list[Record]) -> None:
        unknown = {r.problem.external_id for r in batch} - self.problem_ids.keys()
        for chunk in _chunks(sorted(unknown)):
            rows = Problem.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
            self.problem_ids.update(rows)
        new: dict[str, dict[str, Any]] = {}
        for record in batch:
            p = record.problem
            if p.external_id in self.problem_ids or p.external_id in new:
                if p.external_id not in self.problems_counted:
                    self.problems_counted.add(p.external_id)
                    self.result.count("problems", created=False)
            elif p.statement:
                new[p.external_id] = {
                    "external_id": p.external_id,
                    "statement": p.statement,
                    "reference_solution": p.reference_solution,
                    "guidelines": p.guidelines,
                    "short_answer": p.short_answer,
                    "category": p.category,
                    "level": p.level,
                    "source": p.source,
                }
                self.problems_counted.add(p.external_id)
                self.result.count("problems", created=True)
            else:
                self.error(
                    record,
                    "problem.external_id",
                    f"unknown problem {p.external_id!r} (give its statement to create it)",
                )
        ids = self.insert(Problem, list(new.values())) if self.result.ok else [None] * len(new)
        self.problem_ids.update(zip(new, ids, strict=True))
        for record in batch:
            record.problem_id = self.problem_ids.get(record.problem.external_id)

    # -- proofs ------------------------------------------------------------------------
    def proofs(self, records: list[Record]) -> None:
        for record in records:
            record.proof.content_hash = content_hash(record.proof.text)  # type: ignore[union-attr]
        keys = {(r.problem_id, r.proof.content_hash) for r in records}  # type: ignore[union-attr]
        stored = {(pid, h): pk for pid, h, _, pk in _stored_proofs("content_hash", keys)}
        # (problem, external id) -> content hash, stored or claimed earlier in this batch.
        names = {(r.problem_id, r.proof.external_id) for r in records if r.proof.external_id}  # type: ignore[union-attr]
        named = {(pid, name): h for pid, h, name, _ in _stored_proofs("external_id", names)}
        new: dict[tuple[int, str], dict[str, Any]] = {}
        for record in records:
            proof = record.proof
            assert proof is not None and record.problem_id is not None
            key = (record.problem_id, proof.content_hash)
            if proof.external_id:
                other = named.setdefault((record.problem_id, proof.external_id), proof.content_hash)
                if other != proof.content_hash:
                    self.error(
                        record,
                        "proof.external_id",
                        f"{proof.external_id!r} already names a different proof of problem "
                        f"{record.problem.external_id!r}",
                    )
                    continue
            if key in stored:
                record.proof_id = stored[key]
                self.result.count("proofs", created=False)
            elif key in new:
                self.result.count("proofs", created=False)  # repeated in this batch
            else:
                record.proof_created = True
                new[key] = {
                    "problem_id": record.problem_id,
                    "external_id": proof.external_id,
                    "text": proof.text,
                    "content_hash": proof.content_hash,
                    "generator_model": proof.generator_model,
                    "generator_version": proof.generator_version,
                    "sampling": proof.sampling,
                    "human_author": proof.human_author,
                    "self_evaluation": proof.self_evaluation,
                    "self_score": proof.self_score,
                    "metadata": proof.metadata,
                }
                self.result.count("proofs", created=True)
        if not self.result.ok:
            return
        created = dict(zip(new, self.insert(Proof, list(new.values())), strict=True))
        for record in records:
            if record.proof_id is None:
                record.proof_id = created[(record.problem_id, record.proof.content_hash)]  # type: ignore[index,union-attr]

    # -- grades, analyses, campaign items ----------------------------------------------
    def _stored_for(self, records: list[Record], attribute: str) -> set[int]:
        """Proofs in `records` that existed before this batch and carry `attribute`."""
        return {r.proof_id for r in records if not r.proof_created and getattr(r, attribute)}  # type: ignore[misc]

    def grades(self, records: list[Record]) -> None:
        seen: set[tuple[int, str]] = set()
        for chunk in _chunks(self._stored_for(records, "grades")):
            seen.update(
                Grade.objects.imported()
                .filter(proof_id__in=chunk, import_source=self.source_name)
                .values_list("proof_id", "external_grader")
            )
        new: list[tuple[dict[str, Any], Record, list]] = []
        for record in records:
            for g in record.grades:
                key = (record.proof_id, g.grader)
                if key in seen:
                    self.result.count("grades", created=False)
                    continue
                seen.add(key)  # type: ignore[arg-type]
                grade = {
                    "proof_id": record.proof_id,
                    "origin": Grade.Origin.IMPORTED.value,
                    "external_grader": g.grader,
                    "import_source": self.source_name,
                    "score": g.score,
                    "raw_score": g.raw_score,
                    "raw_scale_max": g.raw_scale_max,
                    "comment": g.comment,
                }
                new.append((grade, record, g.issues))
                self.result.count("grades", created=True)
        grade_ids = self.insert(Grade, [grade for grade, _, _ in new])
        graded = sorted({grade["proof_id"] for grade, _, _ in new})
        transaction.on_commit(lambda: recompute_gold_labels(graded), robust=True)
        issues = []
        for grade_id, (_, record, grade_issues) in zip(grade_ids, new, strict=True):
            text = record.proof.text  # type: ignore[union-attr]
            for issue in grade_issues:
                start, end = issue.start, issue.end
                issues.append(
                    {
                        "grade_id": grade_id,
                        "start": start,
                        "end": end,
                        "quote": issue.quote,
                        "prefix": text[max(0, start - CONTEXT_CHARS) : start]
                        if start is not None
                        else "",
                        "suffix": text[end : end + CONTEXT_CHARS] if end is not None else "",
                        "note": issue.note,
                        "severity": issue.severity,
                    }
                )
        self.insert(GradeIssue, issues)
        self.result.count("issues", created=True, n=len(issues))

    def analyses(self, records: list[Record]) -> None:
        seen: set[tuple[int, str, str, str]] = set()
        for chunk in _chunks(self._stored_for(records, "analyses")):
            seen.update(
                Analysis.objects.filter(
                    origin=Analysis.Origin.IMPORTED, proof_id__in=chunk
                ).values_list("proof_id", "model", "prompt_version", "text_hash")
            )
        new = []
        for record in records:
            for a in record.analyses:
                text_hash = content_hash(a.text)
                key = (record.proof_id, a.model, a.prompt_version, text_hash)
                if key in seen:
                    self.result.count("analyses", created=False)
                    continue
                seen.add(key)  # type: ignore[arg-type]
                new.append(
                    {
                        "proof_id": record.proof_id,
                        "origin": Analysis.Origin.IMPORTED.value,
                        "text": a.text,
                        "text_hash": text_hash,
                        "model": a.model,
                        "prompt_version": a.prompt_version,
                        "sampling": a.sampling,
                        "import_source": self.source_name,
                        **Analysis.parsed_fields(a.text),
                    }
                )
                self.result.count("analyses", created=True)
        self.insert(Analysis, new)

    def campaign_items(self, records: list[Record]) -> None:
        assert self.campaign is not None
        seen: set[int] = set()
        for chunk in _chunks({r.proof_id for r in records if not r.proof_created}):
            seen.update(
                CampaignItem.objects.filter(campaign=self.campaign, proof_id__in=chunk).values_list(
                    "proof_id", flat=True
                )
            )
        new = []
        for record in records:
            if record.proof_id in seen:
                self.result.count("campaign_items", created=False)
                continue
            seen.add(record.proof_id)  # type: ignore[arg-type]
            new.append(
                {
                    "campaign_id": self.campaign.pk,
                    "proof_id": record.proof_id,
                    "order_key": order_key_for(self.campaign.seed, record.proof_id),  # type: ignore[arg-type]
                }
            )
            self.result.count("campaign_items", created=True)
        self.insert(CampaignItem, new)

    # -- writing -----------------------------------------------------------------------
    def insert(self, model: type[models.Model], rows: list[dict[str, Any]]) -> list[int]:
        """Insert new rows (field attname -> value; defaults for the rest); return their ids."""
        if not rows:
            return []
        if self.copy:
            return _copy_rows(model, rows)
        objs = [model(**row) for row in rows]
        model.objects.bulk_create(objs, batch_size=LOOKUP_CHUNK)  # type: ignore[attr-defined]
        return [obj.pk for obj in objs]


def _copy_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL: COPY the rows in, with ids taken from the table's sequence first."""
    meta = model._meta
    now = timezone.now()
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    # (attname, value when the row has none, is JSON, always `now`)
    plan = []
    for f in columns:
        stamped = getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        default = None if stamped else f.get_default()
        plan.append((f.attname, default, isinstance(f, models.JSONField), stamped))
    quote = connection.ops.quote_name
    sql = "COPY {} ({}, {}) FROM STDIN".format(
        quote(meta.db_table), quote(meta.pk.column), ", ".join(quote(f.column) for f in columns)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(sql) as copy:
            for pk, row in zip(ids, rows, strict=True):
                values: list[Any] = [pk]
                for attname, default, is_json, stamped in plan:
                    if stamped:
                        values.append(now)
                    elif is_json:
                        values.append(json.dumps(row.get(attname, default)))
                    else:
                        values.append(row.get(attname, default))
                copy.write_row(values)
    return ids
