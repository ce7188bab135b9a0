"""A model run's targets chosen by a filter: `{"filter": {...}}` as a run's target.

The filters are the library's own (annotate/campaigns.py), so a run and a campaign made
with the same filter choose the same things: `proofs_matching` for the proofs a verify
run asks about, `analyses_matching` for the analyses a meta-verify run asks about,
`parse_filters` for the problems a generate run asks about. A run adds a few filters of
its own, each narrowing further:

| key | kinds | value |
| --- | --- | --- |
| `campaign` | all | a campaign, by id or name: proofs that are items of it |
| `problem` | all | problem ids (`external_id`; a list, or text with commas) |
| `category` | all | the problem's category |
| `source` | all | the problem's source, exactly (the set or competition it comes from) |
| `generator_model` | verify, meta_verify | the model that wrote the proof, exactly |
| `unanalysed` | verify | `yes`: proofs that have no analysis yet |
| `imported_from` | verify, meta_verify | a file an import read (its grades' or analyses' source) |
| `disagreements` | verify | `open`: proofs with an open disagreement |
| `model` | meta_verify | the verifier model of the analysis, exactly |
| `score` | meta_verify | the analysis's score (`0` or `0.5`; meta-verify asks below 1 only) |

`resolve(kind, filters)` reads them (`RunRequestError` naming a bad one, before anything is
written) and returns the target ids, in id order, and a description; the run freezes those
ids (`ModelRun.target_ids`), so a resumed run asks about the same things even when more
would match the filter by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from annotate.campaigns import (
    FILTERS as ANALYSIS_FILTERS,
)
from annotate.campaigns import (
    PROOF_FILTERS,
    analyses_matching,
    parse_filters,
    proofs_matching,
)
from annotate.inputs import InputError
from annotate.models import Campaign, Grade, Problem, Proof
from verification.models import Analysis
from verification.parsing import ParseStatus
from workers.prompts import Kind

RUN_FILTERS = ("source", "generator_model", "unanalysed", "imported_from")
# The filters each kind reads, in the order a description names them.
KIND_FILTERS: dict[str, tuple[str, ...]] = {
    Kind.GENERATE: ("campaign", "problem", "category", "source"),
    Kind.VERIFY: (*PROOF_FILTERS, "source", "generator_model", "unanalysed", "imported_from"),
    Kind.META_VERIFY: (
        *(f for f in ANALYSIS_FILTERS if f != "parse_status"),
        "source",
        "generator_model",
        "imported_from",
    ),
}
MAX_TEXT = 200
YES = ("yes", "true", "1", "on")


class FilterError(ValueError):
    """A filter that cannot be read, in words (the run's `RunRequestError`)."""


def _text(filters: Mapping[str, Any], key: str) -> str:
    value = filters.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise FilterError(f"the {key} filter is a text of at most {MAX_TEXT} characters")
    return value.strip()


def _yes(filters: Mapping[str, Any], key: str) -> bool:
    value = filters.get(key)
    if value is None or value == "" or value is False:
        return False
    if value is True or (isinstance(value, str) and value.strip().lower() in YES):
        return True
    raise FilterError(f'the {key} filter is "yes" (or absent)')


def _campaign_id(value: Any) -> Any:
    """The library's filters name a campaign by id; a run may name it by name too."""
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        found = Campaign.objects.filter(name=value.strip()).values_list("pk", flat=True).first()
        if found is None:
            raise FilterError(f"no campaign named {value.strip()!r}")
        return found
    return value


def normalise(kind: str, filters: Any) -> dict[str, Any]:
    """The filters as given, checked for their keys, with empty values dropped."""
    if not isinstance(filters, Mapping):
        raise FilterError("the filter is an object of filters")
    known = KIND_FILTERS.get(kind, ())
    unknown = sorted(str(k) for k in filters if k not in known)
    if unknown:
        raise FilterError(
            f"there is no filter {unknown[0]!r} for a {kind.replace('_', '-')} run "
            f"(filters: {', '.join(known)})"
        )
    chosen = {k: v for k, v in filters.items() if v not in (None, "", [], False)}
    if not chosen:
        raise FilterError("choose at least one filter")
    if "campaign" in chosen:
        chosen["campaign"] = _campaign_id(chosen["campaign"])
    return dict(sorted(chosen.items(), key=lambda kv: known.index(kv[0])))


def _proof_narrowing(proofs: QuerySet[Proof], filters: Mapping[str, Any]) -> QuerySet[Proof]:
    if source := _text(filters, "source"):
        proofs = proofs.filter(problem__source=source)
    if model := _text(filters, "generator_model"):
        proofs = proofs.filter(generator_model=model)
    if _yes(filters, "unanalysed"):
        proofs = proofs.exclude(Exists(Analysis.objects.filter(proof=OuterRef("pk"))))
    if name := _text(filters, "imported_from"):
        proofs = proofs.filter(
            Exists(Grade.objects.filter(proof=OuterRef("pk"), import_source=name))
            | Exists(Analysis.objects.filter(proof=OuterRef("pk"), import_source=name))
        )
    return proofs


def _library(filters: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if k in keys}


def matching(kind: str, filters: Mapping[str, Any]) -> QuerySet[Any]:
    """The problems, proofs or analyses (below 1) that every filter admits, by id."""
    try:
        if kind == Kind.GENERATE:
            f = parse_filters(_library(filters, ("campaign", "problem", "category")))
            problems = Problem.objects.all()
            if f.campaign is not None:
                problems = problems.filter(proofs__campaign_items__campaign=f.campaign)
            if f.problems:
                problems = problems.filter(pk__in=[p.pk for p in f.problems])
            if f.category:
                problems = problems.filter(category=f.category)
            if source := _text(filters, "source"):
                problems = problems.filter(source=source)
            return problems.order_by("id").distinct()
        if kind == Kind.VERIFY:
            proofs = proofs_matching(_library(filters, PROOF_FILTERS))
            return _proof_narrowing(proofs, filters).order_by("id")
        analyses = analyses_matching(_library(filters, ANALYSIS_FILTERS))
        # Meta-verification asks about the analyses that found something wrong.
        analyses = analyses.filter(parse_status=ParseStatus.OK, score__lt=1)
        if any(k in filters for k in RUN_FILTERS):
            proofs = _proof_narrowing(Proof.objects.all(), filters)
            analyses = analyses.filter(proof__in=proofs)
        return analyses.order_by("id")
    except InputError as exc:
        message = str(exc)
        raise FilterError(message[:1].lower() + message[1:].rstrip(".")) from None


def describe(kind: str, filters: Mapping[str, Any], count: int) -> str:
    what = {"generate": "problems", "verify": "proofs"}.get(kind, "analyses below 1")
    shown = ", ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"
        for k, v in filters.items()
    )
    return f"{count} {what} by filter {shown}"


def resolve(kind: str, filters: Any) -> tuple[dict[str, Any], list[int], str]:
    """(the filters as recorded, the target ids in id order, a description)."""
    chosen = normalise(kind, filters)
    ids = list(matching(kind, chosen).values_list("pk", flat=True))
    return chosen, ids, describe(kind, chosen, len(ids))
