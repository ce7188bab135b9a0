"""Making campaigns from the library: a "review analyses" campaign from analyses chosen by
filter (docs/work.md: a review item names its analysis; its `proof` is the analysed proof),
and an "adjudicate" campaign from proofs chosen by id or by filter
(`create_adjudication_campaign`).

`analyses_matching(filters)` reads the filters an owner chose (each narrows the
selection) and returns the matching analyses; `create_review_campaign` makes the campaign,
the owner's membership and one item per matching analysis, in one transaction. A filter
that cannot be read is an `InputError` naming it, and nothing is written.

The filters, all optional (absent or empty: no narrowing):

| key | value |
| --- | --- |
| `model` | the verifier model's exact name |
| `score` | the analysis's score, `0`, `0.5` or `1`, or `none` for analyses without one |
| `parse_status` | how the score was read: `ok`, `no_score`, `conflicting`, `truncated` |
| `campaign` | a campaign (object or id): analyses of proofs that are items of it |
| `problem` | one or more problem ids (`external_id`; a list, or text with commas) |
| `category` | the problem's category (`algebra`, `geometry`, ...) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotate.inputs import MAX_COMMENT_CHARS, InputError, parse_score, parse_text
from annotate.models import (
    Campaign,
    CampaignItem,
    Category,
    Membership,
    Problem,
    Proof,
    Role,
    order_key_for,
)
from verification.models import Analysis
from verification.parsing import ParseStatus

FILTERS = ("model", "score", "parse_status", "campaign", "problem", "category")
NO_SCORE = "none"
# Rows per INSERT: 100k analyses make 20 statements; SQLite lowers it to its own limit.
ITEM_BATCH = 5000
MAX_OVERLAP = 20
MAX_NAME_CHARS = 200
MAX_PROBLEMS = 1000
NO_CAMPAIGN = "There is no such campaign, or it is not yours to choose."


@dataclass(frozen=True)
class AnalysisFilters:
    """The filters as read: what `analyses_matching` applies."""

    model: str = ""
    score: Decimal | str | None = None  # a score, NO_SCORE, or None (any)
    parse_status: str = ""
    campaign: Campaign | None = None
    problems: tuple[Problem, ...] = ()
    category: str = ""


def _text(raw: Mapping[str, Any], field: str, limit: int = 200) -> str:
    label = f"The {field.replace('_', ' ')} filter"
    return parse_text(raw.get(field), field, label, limit).strip()


def _score(raw: Mapping[str, Any]) -> Decimal | str | None:
    value = raw.get("score")
    if isinstance(value, str):
        value = value.strip()
        if value.lower() == NO_SCORE:
            return NO_SCORE
    if value is None or value == "":
        return None
    try:
        return parse_score(value, field="score")
    except InputError:
        raise InputError("score", "The score filter is 0, 0.5, 1 or none.") from None


def _campaign(raw: Mapping[str, Any], visible: QuerySet[Campaign] | None) -> Campaign | None:
    value = raw.get("campaign")
    if value is None or value == "":
        return None
    campaigns = Campaign.objects.all() if visible is None else visible
    if isinstance(value, Campaign):
        pk: Any = value.pk
    elif isinstance(value, int) and not isinstance(value, bool):
        pk = value
    elif isinstance(value, str) and value.strip().isdigit():
        pk = int(value.strip())
    else:
        raise InputError("campaign", "The campaign filter is a campaign id.")
    campaign = campaigns.filter(pk=pk).first()
    if campaign is None:
        raise InputError("campaign", NO_CAMPAIGN)
    return campaign


def _problems(raw: Mapping[str, Any]) -> tuple[Problem, ...]:
    value = raw.get("problem")
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        names: Iterable[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        names = value
    else:
        raise InputError("problem", "The problem filter is a list of problem ids.")
    wanted: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InputError("problem", "The problem filter is a list of problem ids.")
        name = name.strip()
        if name and name not in wanted:
            wanted.append(name)
    if len(wanted) > MAX_PROBLEMS:
        raise InputError("problem", f"Choose at most {MAX_PROBLEMS} problems.")
    found = {p.external_id: p for p in Problem.objects.filter(external_id__in=wanted)}
    missing = [name for name in wanted if name not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError("problem", f"No problem has the id {shown}.")
    return tuple(found[name] for name in wanted)


def parse_filters(
    raw: Mapping[str, Any] | AnalysisFilters, *, campaigns: QuerySet[Campaign] | None = None
) -> AnalysisFilters:
    """Read the filters (see the module docstring); `InputError` names a bad one.

    `campaigns`, when given, is what the `campaign` filter may name (the campaigns an owner
    sees); any other campaign reads as one that does not exist.
    """
    if isinstance(raw, AnalysisFilters):
        return raw
    if not isinstance(raw, Mapping):
        raise InputError("filters", "The filters must be an object.")
    unknown = sorted(str(k) for k in raw if k not in FILTERS)
    if unknown:
        raise InputError(unknown[0], f"There is no filter {unknown[0]!r}.")
    parse_status = _text(raw, "parse_status")
    if parse_status and parse_status not in ParseStatus.values:
        raise InputError(
            "parse_status", "The parse status is one of " + ", ".join(ParseStatus.values) + "."
        )
    category = _text(raw, "category")
    if category and category not in Category.values:
        raise InputError("category", "The category is one of " + ", ".join(Category.values) + ".")
    return AnalysisFilters(
        model=_text(raw, "model"),
        score=_score(raw),
        parse_status=parse_status,
        campaign=_campaign(raw, campaigns),
        problems=_problems(raw),
        category=category,
    )


def analyses_matching(
    filters: Mapping[str, Any] | AnalysisFilters, *, campaigns: QuerySet[Campaign] | None = None
) -> QuerySet[Analysis]:
    """The analyses that every given filter admits, by id; `InputError` for a bad filter."""
    f = parse_filters(filters, campaigns=campaigns)
    analyses = Analysis.objects.all()
    if f.model:
        analyses = analyses.filter(model=f.model)
    if f.score == NO_SCORE:
        analyses = analyses.filter(score__isnull=True)
    elif f.score is not None:
        analyses = analyses.filter(score=f.score)
    if f.parse_status:
        analyses = analyses.filter(parse_status=f.parse_status)
    if f.campaign is not None:
        # A subquery, not a join: a proof that is several items (a review campaign's
        # analyses of one proof) must not repeat its analyses.
        in_campaign = CampaignItem.objects.filter(campaign=f.campaign).values("proof_id")
        analyses = analyses.filter(proof_id__in=in_campaign)
    if f.problems:
        analyses = analyses.filter(proof__problem__in=f.problems)
    if f.category:
        analyses = analyses.filter(proof__problem__category=f.category)
    return analyses.order_by("id")


def _overlap(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OVERLAP:
        raise InputError("overlap", f"Overlap is a whole number of reviewers, 1 to {MAX_OVERLAP}.")
    return value


def _seed(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise InputError("seed", "The seed is a whole number (32-bit).")
    return value


def _name(value: Any) -> str:
    name = parse_text(value, "name", "The name", MAX_NAME_CHARS).strip()
    if not name:
        raise InputError("name", "Give the campaign a name.")
    if Campaign.objects.filter(name=name).exists():
        raise InputError("name", f"A campaign named {name!r} exists already.")
    return name


def _settings(
    name: Any, *, overlap: Any = 1, seed: Any = 0, instructions: Any = "", blind: Any = True
) -> dict[str, Any]:
    """A new campaign's own fields, checked (`InputError` names a bad one)."""
    if not isinstance(blind, bool):
        raise InputError("blind", "Blind is yes or no.")
    return {
        "name": _name(name),
        "overlap": _overlap(overlap),
        "seed": _seed(seed),
        "instructions": parse_text(
            instructions, "instructions", "The instructions", MAX_COMMENT_CHARS
        ),
        "blind": blind,
    }


def _create(
    owner: User,
    kind: str,
    fields: dict[str, Any],
    selected: Callable[[], list[tuple[int | None, int]]],
    nothing: str,
    members: Iterable[tuple[User, str]] = (),
) -> tuple[Campaign, int]:
    """Make a campaign of `kind` with `fields`, `owner` as its owner (and `members`, each
    with their role), and one item per (analysis id or None, proof id) that `selected`
    reads, in one transaction; `nothing` is the `InputError` for an empty selection (then
    nothing is written)."""
    seed = fields["seed"]
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(kind=kind, created_by=owner, **fields)
            Membership.objects.bulk_create(
                Membership(campaign=campaign, user=user, role=role)
                for user, role in [(owner, Role.OWNER), *members]
            )
            rows = selected()
            if not rows:
                raise InputError("filters", nothing)
            for start in range(0, len(rows), ITEM_BATCH):
                CampaignItem.objects.bulk_create(
                    [
                        CampaignItem(
                            campaign=campaign,
                            analysis_id=analysis_id,
                            proof_id=proof_id,
                            # As `CampaignItem.save`: by the analysis, else by the proof.
                            order_key=order_key_for(seed, analysis_id or proof_id),
                        )
                        for analysis_id, proof_id in rows[start : start + ITEM_BATCH]
                    ],
                    batch_size=ITEM_BATCH,
                )
    except IntegrityError:
        # Another owner took the name between the check and the insert.
        name = fields["name"]
        if Campaign.objects.filter(name=name).exists():
            raise InputError("name", f"A campaign named {name!r} exists already.") from None
        raise
    return campaign, len(rows)


def create_review_campaign(
    owner: User,
    name: Any,
    filters: Mapping[str, Any] | AnalysisFilters,
    *,
    overlap: Any = 1,
    blind: bool = True,
    instructions: Any = "",
    seed: Any = 0,
    campaigns: QuerySet[Campaign] | None = None,
) -> tuple[Campaign, int]:
    """Make a "review analyses" campaign of every analysis the filters select: (the
    campaign, the number of items).

    In one transaction: the campaign (created by `owner`), `owner`'s membership as its
    owner, and one item per analysis (`proof` the analysed proof, the seeded random
    `order_key`), written with `bulk_create` in batches of `ITEM_BATCH`. Every argument is
    checked first; a bad one, a taken name or an empty selection is an `InputError`
    naming it, and nothing is written. `campaigns` as in `parse_filters`.
    """
    fields = _settings(name, overlap=overlap, seed=seed, instructions=instructions, blind=blind)
    analyses = analyses_matching(filters, campaigns=campaigns)
    # Two integers a row: even 100k analyses are read at once in a few MB.
    return _create(
        owner,
        Campaign.Kind.REVIEW_ANALYSES,
        fields,
        lambda: list(analyses.values_list("pk", "proof_id")),
        "No analysis matches these filters.",
    )


# -- adjudication campaigns --------------------------------------------------------------------

# The filters of proofs to adjudicate: `campaign`, `problem`, `category` as for analyses,
# and `disagreements`: "open" for proofs with an open disagreement (verification/).
PROOF_FILTERS = ("campaign", "problem", "category", "disagreements")
MAX_PROOF_IDS = 100_000


def _with_open_disagreements(proofs: QuerySet[Proof], value: Any) -> QuerySet[Proof]:
    if value is None or value == "":
        return proofs
    if value != "open":
        raise InputError("disagreements", 'The disagreements filter is "open".')
    try:
        disagreement = apps.get_model("verification", "Disagreement")
    except LookupError:
        raise InputError("disagreements", "Disagreements are not recorded here.") from None
    open_ones = disagreement._default_manager.filter(status="open", proof=OuterRef("pk"))
    return proofs.filter(Exists(open_ones))


def proofs_matching(
    filters: Mapping[str, Any], *, campaigns: QuerySet[Campaign] | None = None
) -> QuerySet[Proof]:
    """The proofs every given filter admits (`PROOF_FILTERS`), by id; `InputError` for a
    bad filter. `campaigns` as in `parse_filters`."""
    if not isinstance(filters, Mapping):
        raise InputError("filters", "The filters must be an object.")
    unknown = sorted(str(k) for k in filters if k not in PROOF_FILTERS)
    if unknown:
        raise InputError(unknown[0], f"There is no filter {unknown[0]!r} for proofs.")
    f = parse_filters(
        {k: v for k, v in filters.items() if k != "disagreements"}, campaigns=campaigns
    )
    proofs = _with_open_disagreements(Proof.objects.all(), filters.get("disagreements"))
    if f.campaign is not None:
        proofs = proofs.filter(
            pk__in=CampaignItem.objects.filter(campaign=f.campaign).values("proof_id")
        )
    if f.problems:
        proofs = proofs.filter(problem__in=f.problems)
    if f.category:
        proofs = proofs.filter(problem__category=f.category)
    return proofs.order_by("id")


def _proof_ids(raw: Any) -> list[int]:
    """A list of proof ids (or text with commas), each an existing proof."""
    values: Iterable[Any] = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(values, list | tuple):
        raise InputError("proofs", "The proofs are a list of proof ids.")
    ids: list[int] = []
    for value in values:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        elif isinstance(value, str) and not value.strip():
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError("proofs", f"{value!r} is not a proof id.")
        if value not in ids:
            ids.append(value)
    if len(ids) > MAX_PROOF_IDS:
        raise InputError("proofs", f"Choose at most {MAX_PROOF_IDS} proofs.")
    found = set(Proof.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [str(pk) for pk in ids if pk not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError("proofs", f"No proof has the id {shown}.")
    return ids


def _adjudicators(raw: Any) -> list[User]:
    """Users by username (a list, or text with commas), each an existing user."""
    names: Iterable[Any] = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise InputError("adjudicators", "The adjudicators are a list of usernames.")
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    found = {u.get_username(): u for u in User.objects.filter(username__in=wanted)}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise InputError("adjudicators", f"No user is named {missing[0]!r}.")
    return [found[n] for n in wanted]


def create_adjudication_campaign(
    owner: User,
    name: Any,
    *,
    proof_ids: Any = None,
    filters: Mapping[str, Any] | None = None,
    adjudicators: Any = (),
    campaigns: QuerySet[Campaign] | None = None,
    **settings: Any,
) -> tuple[Campaign, int]:
    """Make an "adjudicate" campaign: (the campaign, the number of items), one item per
    proof, chosen by id (`proof_ids`) or by filter (`filters`, see `proofs_matching`), not
    both; `settings` are the campaign's `overlap`, `blind`, `instructions` and `seed`, as
    for `create_review_campaign`. As there: every argument is checked first, and a bad
    one, a taken name or an empty selection is an `InputError` naming it, with nothing
    written. `adjudicators` (users by username) become its adjudicators.
    """
    if (proof_ids is None) == (filters is None):
        raise InputError("proofs", "Choose the proofs either by id or by filter.")
    fields = _settings(name, **settings)
    members = [(user, Role.ADJUDICATOR) for user in _adjudicators(adjudicators)]
    if proof_ids is not None:
        ids = _proof_ids(proof_ids)
        chosen = Proof.objects.filter(pk__in=ids).order_by("id")
    else:
        chosen = proofs_matching(filters or {}, campaigns=campaigns)
    return _create(
        owner,
        Campaign.Kind.ADJUDICATE,
        fields,
        lambda: [(None, pk) for pk in chosen.values_list("pk", flat=True)],
        "No proof matches this choice.",
        members,
    )
