"""Disagreements between the raters of a proof, kept as records (`Disagreement`); the
overview is docs/disagreements.md.

`record_disagreements(proof_ids)` is the one function that decides them. It is called after
a grade or review is committed or edited (annotate/work/commit.py), after a model run
stores analyses or meta-assessments (workers/runs.py), and by `manage.py
record_disagreements` over existing data. It reads everything about the proofs in a fixed
handful of queries, whatever their number, and is idempotent: it opens the disagreements
that hold and have no open record, updates the parties and gap of open ones, and resolves
("no longer disagrees") open ones that no longer hold.

The kinds, each at a gap of at least 0.5 on the 0 / 0.5 / 1 scale:

- `expert_vs_expert`: two experts' grades of the proof differ (grades of every campaign
  and imported grades; a single expert never disagrees with anyone). Gap: max − min.
- `experts_vs_verifier`: the expert consensus (mean of the proof's expert grades, app and
  imported) against each verifier: per verifier model, the mean and the majority of its
  analyses' parsed scores (a tie goes to the lowest tied score, as in
  `verification.ratings`), and the release verifier mean a DeepSeekMath-V2 proof carries
  (`Proof.metadata["average_automatic_rating"]`). Gap: the largest |consensus − verifier|.
- `review_vs_meta`: an expert review's quality score of an analysis against a model's
  meta-assessment of the same analysis (per model, the mean of its meta-verify samples:
  one dissenting sample of many is not the model's assessment). Gap: the largest
  |review − meta-assessment|.
- `auto_label_vs_experts`: reserved until auto-labels exist; never recorded yet.

A disagreement resolved by adjudication is not reopened while its parties stay as they
were; a new grade or score after the adjudication opens a new one.

Priority: each campaign item of the proofs gets `priority` = the largest gap of the open
disagreements about it plus `COUNT_WEIGHT` per open disagreement (0 when none), so a
campaign ordered by priority serves the most contested proofs first. An item of a proof
counts the proof's disagreements; an item of an analysis also those about its analysis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import CampaignItem, Grade, Proof, Review
from verification.models import Analysis, Disagreement, DisagreementQuerySet
from verification.parsing import ParseStatus

GAP = Fraction(1, 2)
COUNT_WEIGHT = 0.01
RELEASE_MEAN_KEY = "average_automatic_rating"
RELEASE_VERIFIER = "release verifier mean"
UNKNOWN_MODEL = "unknown model"
META_VERIFY = "meta_verify"  # workers.prompts.Kind.META_VERIFY

Kind = Disagreement.Kind
Key = tuple[int, str, int | None]  # (proof, kind, analysis)


@dataclass(frozen=True)
class Found:
    """A disagreement that holds now, as recomputed."""

    kind: str
    proof: int
    analysis: int | None
    parties: list[dict[str, Any]]
    gap: float
    campaigns: frozenset[int]
    model_names: str

    @property
    def key(self) -> Key:
        return (self.proof, self.kind, self.analysis)


@dataclass
class Recorded:
    """What one call did."""

    opened: int = 0
    updated: int = 0
    resolved: int = 0
    items_reprioritised: int = 0

    def add(self, other: Recorded) -> None:
        self.opened += other.opened
        self.updated += other.updated
        self.resolved += other.resolved
        self.items_reprioritised += other.items_reprioritised


@dataclass
class _Proof:
    """What one proof has, read in bulk."""

    generator: str = ""
    release_mean: float | None = None
    grades: list[dict[str, Any]] = field(default_factory=list)
    analyses: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    analysis_models: dict[int, str] = field(default_factory=dict)


def _num(value: Fraction | Decimal) -> float:
    return round(float(value), 4)


def _names(*names: str) -> str:
    """`Disagreement.model_names`: each name on its own line, a newline before and after."""
    clean = sorted({n.replace("\n", " ").strip() for n in names if n and n.strip()})
    return "\n" + "\n".join(clean) + "\n" if clean else ""


def _release_mean(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 1 else None


def release_mean(metadata: dict[str, Any] | None) -> float | None:
    """The verifier mean a release shipped with a proof (`Proof.metadata`), as the
    disagreement rules read it: a number in [0, 1], else None."""
    return _release_mean((metadata or {}).get(RELEASE_MEAN_KEY))


def _majority(scores: Sequence[Decimal]) -> Decimal:
    """The most frequent score; a tie goes to the lowest tied score."""
    counts: dict[Decimal, int] = defaultdict(int)
    for score in scores:
        counts[score] += 1
    return min(counts, key=lambda s: (-counts[s], s))


def _mean(scores: Iterable[Decimal]) -> Fraction:
    values = [Fraction(s) for s in scores]
    return sum(values, Fraction(0)) / len(values)


# --- reading --------------------------------------------------------------------------------


def _read(proof_ids: list[int]) -> dict[int, _Proof]:
    """Everything the rules need about the proofs, in five queries at most; the proofs are
    locked first, so two recomputations of one proof run one after the other (FOR NO KEY
    UPDATE: new work on the proof, which takes only a key-share lock, does not wait)."""
    proofs: dict[int, _Proof] = {}
    locked = (
        Proof.objects.select_for_update(no_key=True)
        .filter(pk__in=proof_ids)
        .order_by("pk")
        .values_list("pk", "generator_model", f"metadata__{RELEASE_MEAN_KEY}")
    )
    for pk, generator, mean in locked:
        proofs[pk] = _Proof(generator=generator, release_mean=_release_mean(mean))
    if not proofs:
        return proofs
    ids = list(proofs)
    grades = (
        Grade.objects.filter(proof_id__in=ids)
        .values_list(
            "pk",
            "proof_id",
            "origin",
            "campaign_id",
            "grader__username",
            "external_grader",
            "score",
        )
        .order_by("proof_id", "pk")
    )
    for pk, proof, origin, campaign, username, external, score in grades:
        who = username if origin == Grade.Origin.APP else f"imported: {external}"
        proofs[proof].grades.append(
            {"side": "expert", "who": who, "score": score, "grade": pk, "campaign": campaign}
        )
    analyses = (
        Analysis.objects.filter(proof_id__in=ids, parse_status=ParseStatus.OK, score__isnull=False)
        .values_list("pk", "proof_id", "model", "score")
        .order_by("proof_id", "pk")
    )
    for pk, proof, model, score in analyses:
        scored = cast(Decimal, score)  # score__isnull=False
        proofs[proof].analyses.setdefault(model or UNKNOWN_MODEL, []).append((pk, scored))
    reviews = (
        Review.objects.filter(analysis__proof_id__in=ids)
        .values_list(
            "pk",
            "analysis_id",
            "analysis__proof_id",
            "analysis__model",
            "campaign_id",
            "reviewer__username",
            "score",
        )
        .order_by("analysis_id", "pk")
    )
    reviewed: dict[int, int] = {}
    for pk, analysis, proof, model, campaign, username, score in reviews:
        entry = {"side": "review", "who": username, "score": score, "review": pk}
        proofs[proof].reviews.setdefault(analysis, []).append({**entry, "campaign": campaign})
        proofs[proof].analysis_models[analysis] = model or UNKNOWN_MODEL
        reviewed[analysis] = proof
    if reviewed:
        _read_meta(proofs, reviewed)
    return proofs


def _read_meta(proofs: dict[int, _Proof], reviewed: dict[int, int]) -> None:
    """Models' meta-assessments of the reviewed analyses, as one party per model."""
    from workers.models import ModelOutput

    outputs = (
        ModelOutput.objects.filter(
            run__kind=META_VERIFY,
            error_reason="",
            score__isnull=False,
            target_id__in=list(reviewed),
        )
        .values_list("pk", "target_id", "run_id", "run__model", "score")
        .order_by("target_id", "pk")
    )
    by_model: dict[tuple[int, str], list[tuple[int, int, Decimal]]] = defaultdict(list)
    for pk, analysis, run, model, score in outputs:
        by_model[(analysis, model or UNKNOWN_MODEL)].append((pk, run, cast(Decimal, score)))
    for (analysis, model), samples in sorted(by_model.items()):
        proofs[reviewed[analysis]].reviews[analysis].append(
            {
                "side": "meta",
                "who": model,
                "score": _mean(s for _, _, s in samples),
                "outputs": [pk for pk, _, _ in samples],
                "runs": sorted({run for _, run, _ in samples}),
            }
        )


# --- the rules ------------------------------------------------------------------------------


def _as_json(party: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(v) if isinstance(v, Fraction | Decimal) else v for k, v in party.items()}


def _campaigns(parties: Iterable[dict[str, Any]]) -> frozenset[int]:
    return frozenset(p["campaign"] for p in parties if p.get("campaign") is not None)


def _expert_vs_expert(proof_id: int, proof: _Proof) -> Found | None:
    grades = proof.grades
    if len({g["who"] for g in grades}) < 2:
        return None
    scores = [g["score"] for g in grades]
    gap = Fraction(max(scores)) - Fraction(min(scores))
    if gap < GAP:
        return None
    return Found(
        Kind.EXPERT_VS_EXPERT,
        proof_id,
        None,
        [_as_json(g) for g in grades],
        _num(gap),
        _campaigns(grades),
        _names(proof.generator),
    )


def _experts_vs_verifier(proof_id: int, proof: _Proof) -> Found | None:
    if not proof.grades:
        return None
    consensus = _mean(g["score"] for g in proof.grades)
    verifiers: list[tuple[dict[str, Any], list[Fraction]]] = []
    for model, analyses in sorted(proof.analyses.items()):
        scores = [score for _, score in analyses]
        mean, majority = _mean(scores), _majority(scores)
        party = {
            "side": "verifier",
            "who": model,
            "score": mean,
            "majority": majority,
            "analyses": [pk for pk, _ in analyses],
        }
        verifiers.append((party, [mean, Fraction(majority)]))
    if proof.release_mean is not None:
        mean = Fraction(str(proof.release_mean))
        party = {"side": "verifier", "who": RELEASE_VERIFIER, "score": mean}
        verifiers.append((party, [mean]))
    if not verifiers:
        return None
    gap = max(abs(consensus - value) for _, values in verifiers for value in values)
    if gap < GAP:
        return None
    consensus_party = {
        "side": "consensus",
        "who": "expert consensus",
        "score": consensus,
        "grades": len(proof.grades),
    }
    parties = [*proof.grades, consensus_party, *(party for party, _ in verifiers)]
    return Found(
        Kind.EXPERTS_VS_VERIFIER,
        proof_id,
        None,
        [_as_json(p) for p in parties],
        _num(gap),
        _campaigns(proof.grades),
        _names(proof.generator, *proof.analyses),
    )


def _reviews_vs_meta(proof_id: int, proof: _Proof) -> list[Found]:
    found = []
    for analysis, parties in sorted(proof.reviews.items()):
        reviews = [Fraction(p["score"]) for p in parties if p["side"] == "review"]
        metas = [Fraction(p["score"]) for p in parties if p["side"] == "meta"]
        if not reviews or not metas:
            continue
        gap = max(abs(r - m) for r in reviews for m in metas)
        if gap < GAP:
            continue
        models = [p["who"] for p in parties if p["side"] == "meta"]
        found.append(
            Found(
                Kind.REVIEW_VS_META,
                proof_id,
                analysis,
                [_as_json(p) for p in parties],
                _num(gap),
                _campaigns(parties),
                _names(proof.generator, proof.analysis_models[analysis], *models),
            )
        )
    return found


def find_disagreements(proofs: dict[int, _Proof]) -> dict[Key, Found]:
    """Every disagreement that holds among what `_read` found (no queries)."""
    found: list[Found] = []
    for proof_id, proof in proofs.items():
        for rule in (_expert_vs_expert, _experts_vs_verifier):
            if (hit := rule(proof_id, proof)) is not None:
                found.append(hit)
        found.extend(_reviews_vs_meta(proof_id, proof))
    return {f.key: f for f in found}


# --- writing --------------------------------------------------------------------------------


def _key(d: Disagreement) -> Key:
    return (d.proof_id, d.kind, d.analysis_id)


def record_disagreements(proof_ids: Iterable[int]) -> Recorded:
    """Bring the disagreement records of these proofs, and the priority of their campaign
    items, up to date with their grades, analyses, reviews and meta-assessments.

    In one transaction, in a fixed number of queries whatever the number of proofs:

    1. Lock the proofs (in id order) and read what the rules need (`_read`).
    2. Read the open disagreements of the proofs, and those resolved by adjudication.
    3. Open what holds and has no open record (unless an adjudication resolved the same
       disagreement with the same parties), update open ones whose parties, gap,
       campaigns or models changed, resolve open ones that no longer hold.
    4. Set the priority of the proofs' campaign items from their open disagreements.
    """
    ids = sorted(set(proof_ids))
    result = Recorded()
    if not ids:
        return result
    now = timezone.now()
    with transaction.atomic():
        proofs = _read(ids)
        if not proofs:
            return result
        found = find_disagreements(proofs)
        existing = list(
            Disagreement.objects.filter(proof_id__in=list(proofs))
            .filter(
                Q(status=Disagreement.Status.OPEN)
                | Q(resolution=Disagreement.Resolution.ADJUDICATED)
            )
            .order_by("resolved_at", "pk")
        )
        open_by_key = {_key(d): d for d in existing if d.status == Disagreement.Status.OPEN}
        adjudicated = {_key(d): d for d in existing if d.status != Disagreement.Status.OPEN}
        through = Disagreement.campaigns.through
        linked: dict[int, set[int]] = defaultdict(set)
        if open_by_key:
            rows = through.objects.filter(
                disagreement_id__in=[d.pk for d in open_by_key.values()]
            ).values_list("disagreement_id", "campaign_id")
            for disagreement, campaign in rows:
                linked[disagreement].add(campaign)

        gone = [d.pk for key, d in open_by_key.items() if key not in found]
        changed: list[Disagreement] = []
        relink: dict[int, frozenset[int]] = {}
        new: list[tuple[Disagreement, frozenset[int]]] = []
        for key, hit in found.items():
            current = open_by_key.get(key)
            if current is None:
                settled = adjudicated.get(key)
                if settled is not None and settled.parties == hit.parties:
                    continue
                record = Disagreement(
                    kind=hit.kind,
                    proof_id=hit.proof,
                    analysis_id=hit.analysis,
                    parties=hit.parties,
                    gap=hit.gap,
                    model_names=hit.model_names,
                )
                new.append((record, hit.campaigns))
                continue
            fields = (current.parties, current.gap, current.model_names)
            if fields != (hit.parties, hit.gap, hit.model_names):
                current.parties, current.gap = hit.parties, hit.gap
                current.model_names, current.updated_at = hit.model_names, now
                changed.append(current)
            if linked.get(current.pk, set()) != hit.campaigns:
                relink[current.pk] = hit.campaigns
                if current not in changed:
                    current.updated_at = now
                    changed.append(current)

        if gone:
            result.resolved = Disagreement.objects.filter(pk__in=gone).resolve(
                Disagreement.Resolution.NO_LONGER, now
            )
        if changed:
            Disagreement.objects.bulk_update(
                changed, ["parties", "gap", "model_names", "updated_at"]
            )
            result.updated = len(changed)
        if new:
            Disagreement.objects.bulk_create([record for record, _ in new])
            result.opened = len(new)
            relink.update({record.pk: campaigns for record, campaigns in new})
        if relink:
            stale = [pk for pk in relink if linked.get(pk)]
            if stale:
                through.objects.filter(disagreement_id__in=stale).delete()
            links = [
                through(disagreement_id=pk, campaign_id=campaign)
                for pk, campaigns in relink.items()
                for campaign in sorted(campaigns)
            ]
            if links:
                through.objects.bulk_create(links)

        still_open = [d for key, d in open_by_key.items() if key in found]
        still_open += [record for record, _ in new]
        result.items_reprioritised = _reprioritise(list(proofs), still_open)
    return result


def item_priority(gaps: Sequence[float]) -> float:
    """An item's priority from the gaps of its open disagreements (0 when none)."""
    if not gaps:
        return 0.0
    return round(max(gaps) + COUNT_WEIGHT * len(gaps), 4)


def _reprioritise(proof_ids: list[int], open_now: list[Disagreement]) -> int:
    """Set the priority of the proofs' campaign items; the number of items changed."""
    by_proof: dict[int, list[Disagreement]] = defaultdict(list)
    for d in open_now:
        by_proof[d.proof_id].append(d)
    items = CampaignItem.objects.filter(proof_id__in=proof_ids).values_list(
        "pk", "proof_id", "analysis_id", "priority"
    )
    changed = []
    for pk, proof, analysis, priority in items:
        gaps = [
            d.gap
            for d in by_proof.get(proof, ())
            if d.analysis_id is None or d.analysis_id == analysis
        ]
        wanted = item_priority(gaps)
        if priority != wanted:
            changed.append(CampaignItem(pk=pk, priority=wanted))
    if changed:
        CampaignItem.objects.bulk_update(changed, ["priority"])
    return len(changed)


# --- the hooks ------------------------------------------------------------------------------


def work_committed(proof_id: int) -> None:
    """After a grade or review of the proof is committed or edited (on commit)."""
    record_disagreements([proof_id])


def run_outputs_stored(kind: str, target_ids: Sequence[int]) -> None:
    """After a model run stored analyses of proofs (verify) or meta-assessments of
    analyses (meta_verify) for these targets (on commit); generated proofs have no raters
    yet."""
    if kind == "verify":
        record_disagreements(target_ids)
    elif kind == META_VERIFY:
        proofs = Analysis.objects.filter(pk__in=list(target_ids)).values_list("proof_id", flat=True)
        record_disagreements(set(proofs))


def open_about(proof_id: Any, analysis_id: int | None = None) -> DisagreementQuerySet:
    """The open disagreements about a proof (and, given one, about its analysis); the
    proof's id may be an `OuterRef`."""
    about = Q(analysis__isnull=True)
    if analysis_id is not None:
        about |= Q(analysis_id=analysis_id)
    return Disagreement.objects.open().filter(about, proof_id=proof_id)
