"""Gold labels: the one current label of each proof, where it comes from and the evidence it
was computed from. Dataset exports read these.

`recompute_gold_labels(proof_ids)` is the only writer. It is called after its inputs
change: a grade or an adjudication committed or edited (annotate/work/commit.py, once the
transaction has committed), grades imported (annotate/importers/engine.py), and by
`manage.py recompute_gold_labels` over existing data. The rules, in order:

1. The latest adjudication of the proof (by its last change) decides: `adjudicated`, with
   the adjudicator's reason.
2. Otherwise the experts' grades, made in Proofdesk (any campaign) or imported; one grade
   per expert (an expert's latest when they graded the proof in several campaigns):
   - one expert: `single_expert`;
   - every expert gives the same score: `unanimous_experts`;
   - a strict majority gives one score: `majority_experts`;
   - no strict majority (a tie): no label (an existing one is deleted);
   - when every grade is imported, the label reads `imported` (the rule that decided is in
     the evidence).
3. No adjudication and no grade: no label; except an `auto_label` label (reserved for
   auto-labels, which will write it with their n/m/k in the evidence), which stays.

Every change (a new label, a changed one, a deleted one) writes a `GoldLabelHistory` row
with the label as it was and became; recomputing without a change writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db import transaction

from annotate.models import (
    Adjudication,
    GoldLabel,
    GoldLabelHistory,
    Grade,
    Proof,
    Provenance,
    Role,
)

# Proofs per round of queries (SQLite allows 999 parameters a statement).
CHUNK = 500


def _score(value: Decimal) -> str:
    """A score as JSON text: "0", "0.5" or "1" (a stored 1.0 reads "1")."""
    return str(value.normalize())


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def recompute_gold_labels(proof_ids: Iterable[int]) -> int:
    """Recompute the gold labels of these proofs; the number of labels that changed
    (created, changed or deleted).

    Set-based: per `CHUNK` proofs, one statement locks the proofs (so two recomputes of one
    proof do not interleave on PostgreSQL), three read the adjudications, the grades and
    the current labels, and at most three write (one upsert, one delete, one insert of the
    history rows), whatever the number of proofs.
    """
    ids = sorted(set(proof_ids))
    return sum(_recompute(chunk) for chunk in _chunks(ids))


def _recompute(ids: list[int]) -> int:
    with transaction.atomic():
        # FOR NO KEY UPDATE: serialises recomputations, not the grades written meanwhile.
        locked = Proof.objects.select_for_update(no_key=True).filter(pk__in=ids)
        list(locked.order_by("pk").values("pk"))
        latest: dict[int, dict[str, Any]] = {}
        adjudications = (
            Adjudication.objects.filter(proof_id__in=ids)
            .order_by("proof_id", "-updated_at", "-id")
            .values("id", "proof_id", "score", "reason", "adjudicator_id", "campaign_id")
        )
        for adjudication in adjudications:
            latest.setdefault(adjudication["proof_id"], dict(adjudication))
        grades: dict[int, dict[tuple[Any, ...], dict[str, Any]]] = {}
        rows = (
            Grade.objects.filter(proof_id__in=ids)
            .order_by("id")
            .values("id", "proof_id", "origin", "score", "grader_id", "external_grader")
        )
        for grade in rows:
            if grade["origin"] == Grade.Origin.APP:
                expert: tuple[Any, ...] = ("app", grade["grader_id"])
            else:
                expert = ("imported", grade["external_grader"])
            # Ordered by id: an expert's later grade replaces their earlier one.
            grades.setdefault(grade["proof_id"], {})[expert] = dict(grade)
        current = {label.proof_id: label for label in GoldLabel.objects.filter(proof_id__in=ids)}

        upserts: list[GoldLabel] = []
        deletes: list[int] = []
        history: list[GoldLabelHistory] = []
        for proof_id in ids:
            old_label = current.get(proof_id)
            old = None if old_label is None else _snapshot(old_label)
            new = label_for(latest.get(proof_id), list(grades.get(proof_id, {}).values()))
            if new is None and old is not None and old["provenance"] == Provenance.AUTO_LABEL:
                continue  # no human evidence: an auto-label stands
            if new == old:
                continue
            if new is None:
                deletes.append(proof_id)
            else:
                upserts.append(
                    GoldLabel(
                        proof_id=proof_id,
                        score=Decimal(new["score"]),
                        provenance=new["provenance"],
                        reason=new["reason"],
                        evidence=new["evidence"],
                    )
                )
            history.append(GoldLabelHistory(proof_id=proof_id, old=old, new=new))
        if upserts:
            GoldLabel.objects.bulk_create(
                upserts,
                update_conflicts=True,
                unique_fields=["proof"],
                update_fields=["score", "provenance", "reason", "evidence", "updated_at"],
            )
        if deletes:
            GoldLabel.objects.filter(proof_id__in=deletes).delete()
        GoldLabelHistory.objects.bulk_create(history)
    return len(history)


def _snapshot(label: GoldLabel) -> dict[str, Any]:
    return {
        "score": _score(label.score),
        "provenance": label.provenance,
        "reason": label.reason,
        "evidence": label.evidence,
    }


def _grade_evidence(row: dict[str, Any]) -> dict[str, Any]:
    grade = {"id": row["id"], "origin": row["origin"], "score": _score(row["score"])}
    if row["origin"] == Grade.Origin.APP:
        return grade | {"grader": row["grader_id"]}
    return grade | {"grader": row["external_grader"]}


def label_for(
    adjudication: dict[str, Any] | None, grades: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The label the rules (module docstring) give: `{"score", "provenance", "reason",
    "evidence"}` as JSON values, or None for no label.

    `adjudication`: the proof's latest adjudication (id, score, reason, adjudicator_id,
    campaign_id); `grades`: one grade per expert (id, origin, score, grader_id,
    external_grader).
    """
    evidence_grades = [_grade_evidence(g) for g in sorted(grades, key=lambda g: g["id"])]
    if adjudication is not None:
        return {
            "score": _score(adjudication["score"]),
            "provenance": Provenance.ADJUDICATED.value,
            "reason": adjudication["reason"],
            "evidence": {
                "adjudication": adjudication["id"],
                "adjudicator": adjudication["adjudicator_id"],
                "campaign": adjudication["campaign_id"],
                "grades": evidence_grades,
            },
        }
    if not grades:
        return None
    counts = Counter(_score(g["score"]) for g in grades)
    (score, top), *_ = counts.most_common(1)
    n = len(grades)
    if n == 1:
        rule = Provenance.SINGLE_EXPERT
    elif top == n:
        rule = Provenance.UNANIMOUS_EXPERTS
    elif 2 * top > n:
        rule = Provenance.MAJORITY_EXPERTS
    else:
        return None  # a tie: no score has a strict majority
    only_imported = all(g["origin"] == Grade.Origin.IMPORTED for g in grades)
    return {
        "score": score,
        "provenance": (Provenance.IMPORTED if only_imported else rule).value,
        "reason": "",
        "evidence": {
            "rule": rule.value,
            "counts": dict(sorted(counts.items())),
            "grades": evidence_grades,
        },
    }


def work_committed(record: Any) -> None:
    """After committed work is written or edited (annotate/work/commit.py): recompute the
    gold label of its proof when the work is one of the label's inputs (a grade, an
    adjudication; a review of an analysis is not)."""
    if isinstance(record, Grade | Adjudication):
        recompute_gold_labels([record.proof_id])


def shown_to(roles: set[str], proof: Proof) -> dict[str, Any] | None:
    """The proof's gold label as the item page shows it to owners and adjudicators (None
    for other roles): `{"label": the label or None, "score", "grades": the evidence's
    grades}`. Callers check the blind rules first (the label reveals the grades)."""
    if not roles & {Role.OWNER, Role.ADJUDICATOR}:
        return None
    label = GoldLabel.objects.filter(proof=proof).first()
    if label is None:
        return {"label": None}
    evidence = label.evidence or {}
    adjudication = None
    if evidence.get("adjudication") is not None:
        # Who adjudicated, where and when: one more query, only for an adjudicated label.
        adjudication = (
            Adjudication.objects.filter(pk=evidence["adjudication"])
            .select_related("adjudicator", "campaign")
            .first()
        )
    return {
        "label": label,
        "score": _score(label.score),
        "rule": evidence.get("rule", ""),
        "adjudication": evidence.get("adjudication"),
        "adjudicated": None if adjudication is None else _adjudicated(adjudication),
        "grades": evidence.get("grades", []),
    }


def _adjudicated(adjudication: Adjudication) -> dict[str, Any]:
    """The adjudication a label came from, as the item page names it."""
    who = adjudication.adjudicator
    return {
        "by": who.get_full_name() or who.get_username(),
        "username": who.get_username(),
        "at": adjudication.updated_at,
        "campaign": adjudication.campaign.name,
        "version": adjudication.version,
    }
