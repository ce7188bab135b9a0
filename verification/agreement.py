"""Agreement between raters on the 0 / 0.5 / 1 scale, with cluster-bootstrap intervals.

Pure functions over numpy arrays; nothing here touches the database (the rating pairs come
from `verification.ratings`). A rater is anyone or anything that scores a proof: an expert,
an imported grade, a verifier analysis, a verifier's mean. The model counts as a rater like
any expert.

The scale is ordinal with three fixed categories, coded 0, 1, 2 for the scores 0, 0.5, 1.
The category set never depends on the data: a table in which nobody ever gave 0.5 is still
weighted as a 3-level scale, so kappa weights do not shift with what happened to be used.

A comparison is a set of `Pairs`: one row per (unit, reference rating, candidate rating),
where the unit is a proof, the reference is usually an expert and the candidate the rater
under test. Everything is computed from 3×3 confusion counts (rows: reference, columns:
candidate) and Krippendorff coincidence counts, summed per cluster (problem). The bootstrap
resamples clusters with replacement, because proofs of one problem are not independent
(one hard problem makes all its proofs wrong together); a resample's counts are a weighted
sum of the per-cluster counts, so thousands of resamples are one matrix product.

Undefined values are `None`, never a crash or a NaN in the output: a kappa whose expected
disagreement is zero (both raters used one and the same category throughout), an alpha with
fewer than two categories in use or no unit rated twice, a rate whose denominator is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import krippendorff
import numpy as np

LEVELS = (Decimal("0"), Decimal("0.5"), Decimal("1"))
K = len(LEVELS)
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
# Resamples per matrix product: bounds memory at (chunk × clusters) weights.
_CHUNK = 256

_I, _J = np.indices((K, K))
LINEAR_WEIGHTS = np.abs(_I - _J) / (K - 1)
QUADRATIC_WEIGHTS = LINEAR_WEIGHTS**2


def code_of(score: Decimal | float | str) -> int:
    """The category code (0, 1, 2) of a score on the scale; ValueError off the scale."""
    value = Decimal(str(score))
    for code, level in enumerate(LEVELS):
        if value == level:
            return code
    raise ValueError(f"{score!r} is not on the 0 / 0.5 / 1 scale")


def nearest_level(mean: float) -> int:
    """The code of the level nearest to a mean score in [0, 1] (e.g. of 64 verifier runs).

    Below 0.25 → 0; from 0.25 up to 0.75 → 0.5; from 0.75 → 1. A mean exactly halfway
    goes up (0.25 → 0.5, 0.75 → 1), as Python's `round` would not reliably do; such a mean
    is as close to either level, and the rule only has to be fixed and stated.
    """
    if not 0 <= mean <= 1:
        raise ValueError(f"mean score {mean!r} is outside [0, 1]")
    return 0 if mean < 0.25 else 1 if mean < 0.75 else 2


@dataclass(frozen=True)
class Pairs:
    """Paired ratings of one comparison; all arrays have one entry per pair.

    `unit`: the proof; `cluster`: the resampling cluster (the problem); `ref_rater` and
    `cand_rater`: integer rater ids (distinct ids for distinct raters across both sides);
    `ref`, `cand`: category codes 0 / 1 / 2. `labels`: slice labels per pair (e.g.
    "category", "grader"), strings.
    """

    unit: np.ndarray
    cluster: np.ndarray
    ref_rater: np.ndarray
    ref: np.ndarray
    cand_rater: np.ndarray
    cand: np.ndarray
    labels: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        rows: Iterable[Sequence[Any]],
        label_names: Sequence[str] = (),
    ) -> Pairs:
        """From rows (unit, cluster, ref_rater, ref_code, cand_rater, cand_code, *labels)."""
        listed = list(rows)
        width = 6 + len(label_names)
        columns = list(zip(*listed, strict=True)) if listed else [()] * width
        ints = [np.asarray(c, dtype=np.int64) for c in columns[:6]]
        labels = {
            name: np.asarray(columns[6 + i], dtype=object) for i, name in enumerate(label_names)
        }
        unit, cluster, ref_rater, ref, cand_rater, cand = ints
        return cls(unit, cluster, ref_rater, ref, cand_rater, cand, labels=labels)

    def __len__(self) -> int:
        return len(self.unit)

    def subset(self, mask: np.ndarray) -> Pairs:
        return Pairs(
            self.unit[mask],
            self.cluster[mask],
            self.ref_rater[mask],
            self.ref[mask],
            self.cand_rater[mask],
            self.cand[mask],
            {name: values[mask] for name, values in self.labels.items()},
        )

    def ratings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (unit, rater) ratings behind the pairs: (unit, rater, code, cluster).

        The reliability data for Krippendorff's alpha: every rater on either side of a pair
        is one rater, the model as much as an expert. A rater's rating of a unit counts once
        however many pairs it takes part in.
        """
        unit = np.concatenate([self.unit, self.unit])
        rater = np.concatenate([self.ref_rater, self.cand_rater])
        code = np.concatenate([self.ref, self.cand])
        cluster = np.concatenate([self.cluster, self.cluster])
        if len(unit) == 0:
            return unit, rater, code, cluster
        # One integer key per (unit, rater): a 1-D unique is several times faster than 2-D.
        key = unit * (int(rater.max()) + 1) + rater
        _, first = np.unique(key, return_index=True)
        return unit[first], rater[first], code[first], cluster[first]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % cluster-bootstrap interval (None when undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Metrics:
    """The metric set of one comparison (or one slice of it).

    `confusion[i][j]`: pairs where the reference said level i and the candidate level j
    (levels 0, 0.5, 1). `false_positive_rate`: of the pairs whose reference says 0 (a wrong
    proof), the share whose candidate says 1 (accepts it as correct), i.e.
    P(candidate = 1 | reference = 0). `false_negative_rate`: of the pairs whose reference
    says 1, the share whose candidate says 0, P(candidate = 0 | reference = 1). A candidate's
    0.5 is neither. Both are about the candidate (the verifier) against the reference (the
    experts). Every pair counts: a proof graded by two experts gives two pairs with the
    verifier, so a verifier that accepts it is one false positive per expert who said 0.
    """

    pairs: int
    units: int
    clusters: int
    exact_agreement: Estimate
    kappa_linear: Estimate
    kappa_quadratic: Estimate
    alpha_ordinal: Estimate
    false_positive_rate: Estimate
    false_negative_rate: Estimate
    false_positives: int
    false_negatives: int
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- point formulas, vectorised over a leading batch axis --------------------------------


def _exact(conf: np.ndarray) -> np.ndarray:
    n = conf.sum(axis=(-2, -1))
    trace = np.trace(conf, axis1=-2, axis2=-1)
    return _divide(trace, n)


def _kappa(conf: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Cohen's kappa 1 − Σ w·O / Σ w·E, E the product of the two marginals."""
    conf = conf.astype(float)
    n = conf.sum(axis=(-2, -1))
    rows = conf.sum(axis=-1)
    cols = conf.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[..., :, None] * cols[..., None, :] / n[..., None, None]
    observed_d = (weights * conf).sum(axis=(-2, -1))
    expected_d = (weights * expected).sum(axis=(-2, -1))
    ratio = _divide(observed_d, expected_d)
    return 1 - ratio


def _rate(conf: np.ndarray, reference: int, candidate: int) -> np.ndarray:
    return _divide(conf[..., reference, candidate], conf[..., reference, :].sum(axis=-1))


def _alpha(coincidence: np.ndarray) -> np.ndarray:
    """Ordinal Krippendorff's alpha from coincidence matrices ("Computing Krippendorff's
    Alpha-Reliability", K. Krippendorff, 2011).

    α = 1 − (n − 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck, with the ordinal metric
    δ_ck = Σ_{g=c..k} n_g − (n_c + n_k) / 2 built from the marginals n_c.
    """
    o = coincidence.astype(float)
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    cum = np.cumsum(n_c, axis=-1)
    lo = np.minimum(_I, _J)
    hi = np.maximum(_I, _J)
    below = np.where(lo > 0, np.take(cum, np.maximum(lo - 1, 0), axis=-1), 0.0)
    between = np.take(cum, hi, axis=-1) - below
    delta2 = (between - (n_c[..., _I] + n_c[..., _J]) / 2) ** 2
    delta2 = np.where(_I == _J, 0.0, delta2)
    observed = (o * delta2).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * delta2).sum(axis=(-2, -1))
    alpha: np.ndarray = 1 - (n - 1) * _divide(observed, expected)
    return alpha


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    quotient: np.ndarray = np.divide(numerator, denominator, out=out, where=denominator != 0)
    return quotient


# --- per-cluster counts -------------------------------------------------------------------


def confusion_by_cluster(pairs: Pairs, index: np.ndarray, groups: int) -> np.ndarray:
    # bincount over a flat cell index: an order of magnitude faster than np.add.at.
    cells = (index * K + pairs.ref) * K + pairs.cand
    return np.bincount(cells, minlength=groups * K * K).reshape(groups, K, K)


def coincidence_by_cluster(
    unit: np.ndarray, code: np.ndarray, index: np.ndarray, groups: int
) -> np.ndarray:
    """Krippendorff coincidence counts o_ck per cluster, from one rating per (unit, rater).

    In a unit with m_u ratings, of which n_uc in category c, each ordered pair of distinct
    ratings adds 1 / (m_u − 1): o_ck += n_uc (n_uk − [c = k]) / (m_u − 1). Units rated once
    are not pairable and add nothing.
    """
    units, unit_index = np.unique(unit, return_inverse=True)
    counts = np.bincount(unit_index * K + code, minlength=len(units) * K)
    per_unit = counts.reshape(len(units), K).astype(float)
    unit_cluster = np.zeros(len(units), dtype=np.int64)
    unit_cluster[unit_index] = index
    m = per_unit.sum(axis=1)
    pairable = m > 1
    per_unit, m, unit_cluster = per_unit[pairable], m[pairable], unit_cluster[pairable]
    coincidence = per_unit[:, :, None] * per_unit[:, None, :]
    coincidence -= per_unit[:, :, None] * np.eye(K)
    coincidence /= (m - 1)[:, None, None]
    flat = coincidence.reshape(-1, K * K)
    out = np.stack(
        [
            np.bincount(unit_cluster, weights=flat[:, cell], minlength=groups)
            for cell in range(K * K)
        ],
        axis=1,
    )
    return out.reshape(groups, K, K)


def krippendorff_alpha(unit: np.ndarray, rater: np.ndarray, code: np.ndarray) -> float | None:
    """Ordinal alpha by the `krippendorff` package (raters × units, NaN where missing)."""
    if len(unit) == 0:
        return None
    units, u = np.unique(unit, return_inverse=True)
    raters, r = np.unique(rater, return_inverse=True)
    table = np.full((len(raters), len(units)), np.nan)
    table[r, u] = code
    if np.count_nonzero((~np.isnan(table)).sum(axis=0) > 1) == 0:
        return None
    if len(np.unique(code)) < 2:
        return None
    value = krippendorff.alpha(
        reliability_data=table, level_of_measurement="ordinal", value_domain=list(range(K))
    )
    return None if np.isnan(value) else float(value)


# --- the metric set -----------------------------------------------------------------------


def _statistics(conf: np.ndarray, coincidence: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "exact_agreement": _exact(conf),
        "kappa_linear": _kappa(conf, LINEAR_WEIGHTS),
        "kappa_quadratic": _kappa(conf, QUADRATIC_WEIGHTS),
        "alpha_ordinal": _alpha(coincidence),
        "false_positive_rate": _rate(conf, 0, K - 1),
        "false_negative_rate": _rate(conf, K - 1, 0),
    }


def bootstrap_weights(
    groups: int, resamples: int, rng: np.random.Generator
) -> Iterable[np.ndarray]:
    """Chunks of (resamples × groups) counts: how often each cluster is drawn per resample."""
    done = 0
    while done < resamples:
        size = min(_CHUNK, resamples - done)
        yield rng.multinomial(groups, np.full(groups, 1 / groups), size=size)
        done += size


def metrics(
    pairs: Pairs,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Metrics:
    """Every metric of `pairs`, each with a percentile interval from a cluster bootstrap.

    The same `seed` gives the same intervals. `resamples=0` skips the bootstrap (intervals
    None). A replicate in which a metric is undefined (e.g. no reference 0 was drawn for the
    false-positive rate) is left out of that metric's interval.
    """
    clusters, index = np.unique(pairs.cluster, return_inverse=True)
    groups = len(clusters)
    conf_g = confusion_by_cluster(pairs, index, groups)
    unit, rater, code, cluster = pairs.ratings()
    coin_g = coincidence_by_cluster(unit, code, np.searchsorted(clusters, cluster), groups)
    conf = conf_g.sum(axis=0)
    point = _statistics(conf, coin_g.sum(axis=0))
    # The package is the reference implementation; the coincidence formula above is what the
    # bootstrap needs, and tests/test_agreement.py holds the two equal.
    point["alpha_ordinal"] = np.asarray(
        np.nan if (a := krippendorff_alpha(unit, rater, code)) is None else a
    )

    intervals: dict[str, tuple[float | None, float | None]] = {name: (None, None) for name in point}
    if resamples > 0 and groups > 0:
        rng = np.random.default_rng(seed)
        conf_flat = conf_g.reshape(groups, K * K)
        coin_flat = coin_g.reshape(groups, K * K)
        replicates: dict[str, list[np.ndarray]] = {name: [] for name in point}
        for weights in bootstrap_weights(groups, resamples, rng):
            stats = _statistics(
                (weights @ conf_flat).reshape(-1, K, K), (weights @ coin_flat).reshape(-1, K, K)
            )
            for name, values in stats.items():
                replicates[name].append(values)
        tail = (1 - confidence) / 2 * 100
        for name, chunks in replicates.items():
            values = np.concatenate(chunks)
            values = values[~np.isnan(values)]
            if len(values):
                low, high = np.percentile(values, [tail, 100 - tail])
                intervals[name] = (_rounded(low), _rounded(high))

    estimates = {name: Estimate(_value(value), *intervals[name]) for name, value in point.items()}
    return Metrics(
        pairs=len(pairs),
        units=len(np.unique(unit)),
        clusters=groups,
        confusion=conf.astype(int).tolist(),
        false_positives=int(conf[0, K - 1]),
        false_negatives=int(conf[K - 1, 0]),
        **estimates,
    )


def metrics_by(
    pairs: Pairs,
    key: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Metrics]:
    """The metric set per value of the slice label `key`, in sorted order of the values."""
    labels = pairs.labels[key]
    return {
        str(value): metrics(pairs.subset(labels == value), resamples=resamples, seed=seed)
        for value in sorted(set(labels.tolist()), key=str)
    }


def _value(value: np.ndarray) -> float | None:
    return None if np.isnan(value) else _rounded(float(value))


def _rounded(value: float) -> float:
    # Floating noise (1 − 1e-16) would otherwise print as a disagreement with a hand value.
    return round(float(value), 12)
