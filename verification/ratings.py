"""Rating pairs from the database, and the agreement report built on them.

A handful of flat queries (grades, the release's verifier means, analysis scores, their
per-proof means), joined in memory into the `Pairs` of each comparison; nothing queries per
proof. `agreement_report` is the one function behind `manage.py agreement_report` (and the
dashboard and API to come), so they show the same numbers.

Comparisons (reference → candidate; the reference is the expert side):

- `expert_vs_expert`: two app grades of one proof in one campaign by different graders.
  Each pair appears in both orders, so the two experts are interchangeable (kappa pools
  their marginals) and the `grader` slice holds every pair a grader is in.
- `expert_vs_imported`: an app grade against an imported grade of the same proof.
- `expert_vs_release_verifier`: any expert grade (app or imported) against the verifier
  mean the DeepSeekMath-V2 release ships per proof (`Proof.metadata
  ["average_automatic_rating"]`, the mean of 64 verifier scores), mapped to the nearest
  level by `agreement.nearest_level`.
- `expert_vs_analysis`: any expert grade against each analysis with a parsed score, every
  analysis a rater of its own.
- `expert_vs_analysis_mean`: any expert grade against the mean parsed score of one verifier
  model's analyses of the proof, mapped to the nearest level.
- `expert_vs_analysis_majority`: the same against the most frequent score of those analyses;
  a tie goes to the lowest of the tied scores (a verifier split between accepting and
  rejecting a proof has not accepted it).

Slice labels of every pair: `category`, `level`, `problem` (external id), `generator`
(the proof's generator model) and `grader` (the expert of the pair).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.db.models import Avg, Q, QuerySet

from annotate.models import Campaign, Grade, Proof
from verification.agreement import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    K,
    Pairs,
    code_of,
    metrics,
    metrics_by,
    nearest_level,
)
from verification.models import Analysis
from verification.parsing import ParseStatus

RELEASE_MEAN_KEY = "average_automatic_rating"
SLICE_KEYS = ("category", "level", "problem", "generator", "grader")
COMPARISONS = {
    "expert_vs_expert": "Expert vs expert (app grades)",
    "expert_vs_imported": "Expert vs imported grade",
    "expert_vs_release_verifier": "Expert vs release verifier mean (64 runs)",
    "expert_vs_analysis": "Expert vs each verifier analysis",
    "expert_vs_analysis_mean": "Expert vs verifier mean per proof",
    "expert_vs_analysis_majority": "Expert vs verifier majority per proof",
}


@dataclass(frozen=True)
class Rating:
    """One rating of a proof, with what slices need to know about the proof."""

    proof: int
    problem: int
    rater: str
    code: int
    campaign: int | None = None
    # Keeps raters of different kinds apart even if their names coincide (a user called
    # like an imported grader is still another rater).
    kind: str = "app"
    model: str = ""  # the verifier model, for an analysis


class _Raters:
    """Integer ids for rater names, shared by both sides of every comparison."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}

    def __call__(self, rating: Rating) -> int:
        return self.ids.setdefault((rating.kind, rating.rater), len(self.ids))


def _proofs(campaign: Campaign | None) -> QuerySet[Proof]:
    proofs = Proof.objects.all()
    return proofs.filter(campaign_items__campaign=campaign) if campaign else proofs


def load_comparisons(campaign: Campaign | None = None) -> dict[str, Pairs]:
    """Every comparison's pairs, limited to the proofs of `campaign` when given.

    With a campaign, app grades are that campaign's; imported grades, verifier means and
    analyses are those of its proofs.
    """
    proof_ids = _proofs(campaign).values("id")
    grades = Grade.objects.filter(proof__in=proof_ids)
    if campaign is not None:
        grades = grades.filter(Q(origin=Grade.Origin.IMPORTED) | Q(campaign=campaign))
    info: dict[int, tuple[str, str, str, str]] = {}
    app: list[Rating] = []
    imported: list[Rating] = []
    rows = grades.values_list(
        "proof_id",
        "proof__problem_id",
        "origin",
        "campaign_id",
        "grader__username",
        "external_grader",
        "score",
        "proof__problem__category",
        "proof__problem__level",
        "proof__problem__external_id",
        "proof__generator_model",
    ).order_by()
    for proof, problem, origin, campaign_id, username, external, score, *labels in rows:
        info[proof] = tuple(labels)  # type: ignore[assignment]
        if origin == Grade.Origin.APP:
            app.append(Rating(proof, problem, username, code_of(score), campaign_id))
        else:
            imported.append(Rating(proof, problem, external, code_of(score), kind="imported"))
    experts = app + imported

    release = [
        Rating(proof, problem, "release verifier mean", nearest_level(float(mean)), kind="model")
        for proof, problem, mean in _proofs(campaign)
        .filter(**{f"metadata__{RELEASE_MEAN_KEY}__isnull": False})
        .values_list("id", "problem_id", f"metadata__{RELEASE_MEAN_KEY}")
        .order_by()
        if isinstance(mean, int | float) and not isinstance(mean, bool)
    ]
    parsed = Analysis.objects.filter(
        proof__in=proof_ids, parse_status=ParseStatus.OK, score__isnull=False
    )
    analyses = [
        Rating(
            proof,
            problem,
            f"analysis {pk} ({model or 'unknown model'})",
            code_of(cast(Decimal, score)),  # score__isnull=False
            kind="model",
            model=model or "unknown model",
        )
        for pk, proof, problem, model, score in parsed.values_list(
            "id", "proof_id", "proof__problem_id", "model", "score"
        ).order_by()
    ]
    analysis_means = [
        Rating(
            proof,
            problem,
            f"verifier mean ({model or 'unknown model'})",
            nearest_level(mean),
            kind="model",
        )
        for proof, problem, model, mean in parsed.values("proof_id", "proof__problem_id", "model")
        .annotate(mean=Avg("score"))
        .values_list("proof_id", "proof__problem_id", "model", "mean")
        .order_by()
    ]

    raters = _Raters()
    pairs_of = _PairBuilder(raters, info)
    return {
        "expert_vs_expert": pairs_of.within(app),
        "expert_vs_imported": pairs_of.across(app, imported),
        "expert_vs_release_verifier": pairs_of.across(experts, release),
        "expert_vs_analysis": pairs_of.across(experts, analyses),
        "expert_vs_analysis_mean": pairs_of.across(experts, analysis_means),
        "expert_vs_analysis_majority": pairs_of.across(experts, majorities(analyses)),
    }


def majorities(analyses: list[Rating]) -> list[Rating]:
    """Per proof and verifier model, the most frequent score; ties to the lowest score."""
    votes: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0] * K)
    for rating in analyses:
        votes[(rating.proof, rating.problem, rating.model)][rating.code] += 1
    return [
        Rating(
            proof, problem, f"verifier majority ({model})", counts.index(max(counts)), kind="model"
        )
        for (proof, problem, model), counts in votes.items()
    ]


class _PairBuilder:
    def __init__(self, raters: _Raters, info: dict[int, tuple[str, str, str, str]]) -> None:
        self.raters = raters
        self.info = info
        # Clusters numbered in the order of the problems' external ids, not of database ids:
        # the same data and seed then give the same intervals in any database.
        problems = sorted({problem for _, _, problem, _ in info.values()})
        self.cluster = {problem: number for number, problem in enumerate(problems)}

    def _row(self, ref: Rating, cand: Rating) -> tuple[Any, ...]:
        category, level, problem, generator = self.info[ref.proof]
        return (
            ref.proof,
            self.cluster[problem],
            self.raters(ref),
            ref.code,
            self.raters(cand),
            cand.code,
            category or "(none)",
            level or "(none)",
            problem,
            generator or "(none)",
            ref.rater,
        )

    def _build(self, rows: Iterable[tuple[Any, ...]]) -> Pairs:
        return Pairs.build(rows, SLICE_KEYS)

    def across(self, references: list[Rating], candidates: list[Rating]) -> Pairs:
        by_proof: dict[int, list[Rating]] = defaultdict(list)
        for cand in candidates:
            by_proof[cand.proof].append(cand)
        return self._build(
            self._row(ref, cand) for ref in references for cand in by_proof.get(ref.proof, ())
        )

    def within(self, grades: list[Rating]) -> Pairs:
        by_item: dict[tuple[int | None, int], list[Rating]] = defaultdict(list)
        for grade in grades:
            by_item[(grade.campaign, grade.proof)].append(grade)
        return self._build(
            self._row(a, b)
            for same in by_item.values()
            for a in same
            for b in same
            if a.rater != b.rater
        )


def agreement_report(
    campaign: Campaign | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    slice_keys: Iterable[str] = SLICE_KEYS,
) -> dict[str, Any]:
    """Every comparison's metrics, overall and per slice, as plain JSON-ready data."""
    slice_keys = tuple(slice_keys)
    comparisons = {}
    for name, pairs in load_comparisons(campaign).items():
        comparisons[name] = {
            "title": COMPARISONS[name],
            "overall": metrics(pairs, resamples=resamples, seed=seed).as_dict(),
            "slices": {
                key: {
                    label: m.as_dict()
                    for label, m in metrics_by(pairs, key, resamples=resamples, seed=seed).items()
                }
                for key in slice_keys
            }
            if len(pairs)
            else {},
        }
    return {
        "campaign": campaign.name if campaign else None,
        "resamples": resamples,
        "seed": seed,
        "comparisons": comparisons,
    }
