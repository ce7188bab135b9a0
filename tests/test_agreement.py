"""Agreement metrics (verification/agreement.py), the rating pairs read from the database
(verification/ratings.py), `manage.py agreement_report`, and the shipped DeepSeekMath-V2
release as a check computed independently from its files."""

from __future__ import annotations

import ast
import io
import json
from decimal import Decimal

import krippendorff
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotate.importers import import_path
from annotate.models import Campaign, Grade, Problem, Proof
from tests.import_support import DEEPSEEK_JSONL
from verification.agreement import (
    Pairs,
    code_of,
    coincidence_by_cluster,
    krippendorff_alpha,
    metrics,
    metrics_by,
    nearest_level,
)
from verification.agreement import _alpha as alpha_from_coincidence
from verification.models import Analysis
from verification.ratings import agreement_report, load_comparisons

REF, CAND = 100, 200  # rater ids of the two sides in hand-built tables


def pairs_of(
    table: list[tuple[int, int]], clusters: list[int] | None = None, **labels: list
) -> Pairs:
    """Pairs (reference code, candidate code), one proof each, one problem each by default."""
    clusters = clusters or list(range(len(table)))
    rows = [
        (unit, cluster, REF, ref, CAND, cand, *(values[unit] for values in labels.values()))
        for unit, ((ref, cand), cluster) in enumerate(zip(table, clusters, strict=True))
    ]
    return Pairs.build(rows, tuple(labels))


# --- the scale ----------------------------------------------------------------------------


def test_scores_map_to_three_fixed_codes():
    assert [code_of(s) for s in (Decimal("0"), "0.5", 1, Decimal("1.0"))] == [0, 1, 2, 2]
    with pytest.raises(ValueError):
        code_of("0.7")


def test_a_verifier_mean_goes_to_the_nearest_level_halfway_up():
    means = [0, 0.24, 0.25, 0.5, 0.74, 0.75, 0.9296875, 1]
    assert [nearest_level(m) for m in means] == [0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        nearest_level(1.5)


# --- point estimates against hand computation ---------------------------------------------


def test_exact_agreement_and_weighted_kappas_match_hand_computation():
    # confusion [[1,0,1],[0,1,0],[0,0,2]]; rows (2,1,2), columns (1,1,3), n = 5.
    # E = rows ⊗ columns / 5. Linear: Σw·O = 1, Σw·E = 12/5 → κ = 1 − 5/12 = 7/12.
    # Quadratic: Σw·O = 1, Σw·E = 10/5 → κ = 1/2.
    m = metrics(pairs_of([(2, 2), (0, 2), (1, 1), (2, 2), (0, 0)]), resamples=0)
    assert m.confusion == [[1, 0, 1], [0, 1, 0], [0, 0, 2]]
    assert m.exact_agreement.value == pytest.approx(4 / 5)
    assert m.kappa_linear.value == pytest.approx(7 / 12)
    assert m.kappa_quadratic.value == pytest.approx(1 / 2)
    assert (m.pairs, m.units, m.clusters) == (5, 5, 5)


def test_kappa_weights_keep_the_unused_middle_level():
    # Only 0 and 1 are used: on the fixed 3-level scale they are the full distance apart, so
    # both weightings reduce to unweighted kappa: p_o = 3/4, p_e = (2·1 + 2·3)/16 = 1/2.
    m = metrics(pairs_of([(0, 0), (0, 2), (2, 2), (2, 2)]), resamples=0)
    assert m.kappa_linear.value == pytest.approx(1 / 2)
    assert m.kappa_quadratic.value == pytest.approx(1 / 2)


def test_alpha_matches_hand_computation_and_the_krippendorff_package():
    # Units (0,0), (1,1), (0,1): coincidences o_00 = 2, o_22 = 2, o_02 = o_20 = 1; n_c =
    # (3, 0, 3), n = 6; ordinal δ²_02 = (6 − 3)² = 9. α = 1 − 5·(2·9) / (2·3·3·9) = 4/9.
    table = [(0, 0), (2, 2), (0, 2)]
    m = metrics(pairs_of(table), resamples=0)
    assert m.alpha_ordinal.value == pytest.approx(4 / 9)
    package = krippendorff.alpha(
        reliability_data=np.array(table).T, level_of_measurement="ordinal", value_domain=[0, 1, 2]
    )
    assert package == pytest.approx(4 / 9)


def test_the_bootstrap_alpha_formula_equals_the_package_with_many_raters_and_gaps():
    rng = np.random.default_rng(7)
    for _ in range(20):
        raters, units = rng.integers(2, 6), rng.integers(5, 40)
        truth = rng.integers(0, 3, units)
        table = np.where(rng.random((raters, units)) < 0.6, truth, rng.integers(0, 3, units))
        table = table.astype(float)
        table[rng.random((raters, units)) < 0.3] = np.nan  # missing ratings
        r, u = np.nonzero(~np.isnan(table))
        code = table[r, u].astype(int)
        expected = krippendorff_alpha(u, r, code)
        if expected is None:
            continue
        coincidence = coincidence_by_cluster(u, code, np.zeros(len(u), dtype=int), 1)
        assert float(alpha_from_coincidence(coincidence[0])) == pytest.approx(expected)
        assert expected == pytest.approx(
            krippendorff.alpha(table, level_of_measurement="ordinal", value_domain=[0, 1, 2])
        )


def test_alpha_counts_every_rater_and_ignores_units_rated_once():
    # Three raters; proof 0 rated by all three (the model among them), proof 1 by one only.
    rows = [
        (0, 0, 1, 2, 2, 2),  # expert 1 vs model 2
        (0, 0, 3, 0, 2, 2),  # expert 3 vs model 2
        (1, 1, 1, 1, 1, 1),  # a unit with one rating (the same rater on both sides)
    ]
    m = metrics(Pairs.build(rows), resamples=0)
    table = np.array([[2, 1], [2, np.nan], [0, np.nan]])  # raters 1, 2, 3 × proofs 0, 1
    expected = krippendorff.alpha(table, level_of_measurement="ordinal", value_domain=[0, 1, 2])
    assert m.alpha_ordinal.value == pytest.approx(expected)


def test_false_positive_and_negative_rates_are_conditional_on_the_expert_side():
    # Experts say 0 four times: the verifier says 1, 1, 0.5, 0 → FPR 2/4 (0.5 is neither).
    # Experts say 1 twice: the verifier says 0 once → FNR 1/2.
    table = [(0, 2), (0, 2), (0, 1), (0, 0), (2, 0), (2, 2)]
    m = metrics(pairs_of(table), resamples=0)
    assert (m.false_positives, m.false_negatives) == (2, 1)
    assert m.false_positive_rate.value == pytest.approx(1 / 2)
    assert m.false_negative_rate.value == pytest.approx(1 / 2)


# --- edge cases ---------------------------------------------------------------------------


def test_perfect_agreement_gives_one_everywhere():
    m = metrics(pairs_of([(0, 0), (1, 1), (2, 2), (2, 2)]), resamples=100)
    for estimate in (m.exact_agreement, m.kappa_linear, m.kappa_quadratic, m.alpha_ordinal):
        assert estimate.value == pytest.approx(1)
    assert (m.false_positive_rate.value, m.false_negative_rate.value) == (0, 0)


def test_perfect_disagreement_gives_kappa_minus_one():
    m = metrics(pairs_of([(0, 2), (2, 0)] * 3), resamples=100)
    assert m.exact_agreement.value == 0
    assert m.kappa_linear.value == pytest.approx(-1)
    assert m.kappa_quadratic.value == pytest.approx(-1)
    assert m.alpha_ordinal.value < 0
    assert m.false_positive_rate.value == m.false_negative_rate.value == 1


def test_kappa_is_undefined_not_a_crash_when_both_raters_are_constant_and_equal():
    m = metrics(pairs_of([(2, 2)] * 5), resamples=50)
    assert m.exact_agreement.value == 1
    assert m.kappa_linear == m.kappa_quadratic == m.alpha_ordinal
    assert m.kappa_linear.value is None and m.kappa_linear.low is None
    assert m.false_positive_rate.value is None  # no expert 0 to be wrong about
    json.dumps(m.as_dict())  # None, never NaN, in the JSON


def test_one_constant_rater_gives_kappa_zero():
    # A verifier that accepts everything agrees only by chance: O equals E exactly.
    m = metrics(pairs_of([(0, 2), (1, 2), (2, 2), (2, 2)]), resamples=0)
    assert m.kappa_linear.value == pytest.approx(0)
    assert m.kappa_quadratic.value == pytest.approx(0)
    assert m.false_positive_rate.value == 1


def test_no_pairs_gives_undefined_metrics():
    m = metrics(Pairs.build([]), resamples=100)
    assert (m.pairs, m.units, m.clusters, m.confusion) == (0, 0, 0, [[0] * 3] * 3)
    assert m.exact_agreement.value is None and m.alpha_ordinal.value is None


# --- slices -------------------------------------------------------------------------------


def test_metrics_by_slice_equal_the_metrics_of_each_subset():
    table = [(0, 0), (2, 2), (0, 2), (2, 2), (1, 1), (2, 0)]
    category = ["algebra", "algebra", "algebra", "geometry", "geometry", "geometry"]
    pairs = pairs_of(table, [0, 0, 1, 2, 2, 3], category=category)
    by_category = metrics_by(pairs, "category", resamples=200)
    assert list(by_category) == ["algebra", "geometry"]
    assert by_category["algebra"] == metrics(pairs_of(table[:3], [0, 0, 1]), resamples=200)
    assert by_category["geometry"].exact_agreement.value == pytest.approx(2 / 3)
    assert by_category["algebra"].false_positives == 1


# --- the bootstrap ------------------------------------------------------------------------


def noisy_pairs(problems: int, proofs_per_problem: int, seed: int) -> Pairs:
    rng = np.random.default_rng(seed)
    n = problems * proofs_per_problem
    ref = rng.integers(0, 3, n)
    cand = np.where(rng.random(n) < 0.7, ref, rng.integers(0, 3, n))
    cluster = np.repeat(np.arange(problems), proofs_per_problem)
    return Pairs(np.arange(n), cluster, np.zeros(n, int), ref, np.ones(n, int), cand)


NAMES = (
    "exact_agreement",
    "kappa_linear",
    "kappa_quadratic",
    "alpha_ordinal",
    "false_positive_rate",
    "false_negative_rate",
)


def test_bootstrap_intervals_contain_the_estimate_and_repeat_with_the_seed():
    pairs = noisy_pairs(40, 3, seed=1)
    m = metrics(pairs, resamples=500, seed=3)
    for name in NAMES:
        estimate = getattr(m, name)
        assert estimate.low <= estimate.value <= estimate.high, name
        assert estimate.low < estimate.high, name
    assert metrics(pairs, resamples=500, seed=3) == m
    assert metrics(pairs, resamples=500, seed=4) != m


def test_bootstrap_intervals_shrink_with_more_problems():
    small = metrics(noisy_pairs(30, 3, seed=1), resamples=500)
    large = metrics(noisy_pairs(600, 3, seed=1), resamples=500)
    for name in NAMES:
        few, many = getattr(small, name), getattr(large, name)
        assert many.high - many.low < (few.high - few.low) / 2, name


def test_bootstrap_resamples_problems_not_proofs():
    # The same 40 ratings: each proof its own problem, or 4 problems of 10 proofs that agree
    # or disagree together. Correlated proofs carry less information: a wider interval.
    table = ([(2, 2)] * 10 + [(0, 2)] * 10) * 2
    independent = metrics(pairs_of(table), resamples=1000)
    clustered = metrics(pairs_of(table, [i // 10 for i in range(40)]), resamples=1000)
    assert clustered.exact_agreement.value == independent.exact_agreement.value == 0.5
    width = lambda e: e.high - e.low  # noqa: E731
    assert width(clustered.exact_agreement) > 1.5 * width(independent.exact_agreement)
    one_problem = metrics(pairs_of(table, [0] * 40), resamples=200)
    assert one_problem.exact_agreement.low == one_problem.exact_agreement.high == 0.5


# --- rating pairs from the database -------------------------------------------------------

pytest_db = pytest.mark.django_db


def grade(proof, score: str, campaign=None, grader=None, external: str = "") -> Grade:
    if external:
        return Grade.objects.create(
            proof=proof,
            origin=Grade.Origin.IMPORTED,
            external_grader=external,
            import_source="test.jsonl",
            score=Decimal(score),
        )
    return Grade.objects.create(proof=proof, campaign=campaign, grader=grader, score=Decimal(score))


def analysis(proof, score: str | None, model: str = "verifier-v1", n: int = 0) -> Analysis:
    text = f"Analysis {n}. Here is my evaluation.\n\n\\boxed{{{score}}}" if score else f"x {n}"
    return Analysis.objects.create(
        proof=proof, text=text, text_hash=str(n), model=model, **Analysis.parsed_fields(text)
    )


@pytest.fixture
def rated(db, owner, expert, expert2):
    """Two problems; app grades by two experts, an imported grade, verifier outputs."""
    algebra = Problem.objects.create(external_id="A-1", statement="s", category="algebra")
    geometry = Problem.objects.create(external_id="G-1", statement="s", category="geometry")
    p1 = Proof.objects.create(problem=algebra, text="p1", generator_model="gen-a")
    p2 = Proof.objects.create(problem=algebra, text="p2", generator_model="gen-b")
    p3 = Proof.objects.create(
        problem=geometry,
        text="p3",
        generator_model="gen-a",
        metadata={"average_automatic_rating": 0.8},
    )
    campaign = Campaign.objects.create(name="C", overlap=2, created_by=owner)
    other = Campaign.objects.create(name="Other", created_by=owner)
    for p in (p1, p2, p3):
        campaign.items.create(proof=p)
    grade(p1, "1", campaign, expert)
    grade(p1, "0.5", campaign, expert2)
    grade(p2, "0", campaign, expert)
    grade(p2, "0", campaign, expert2)
    grade(p3, "0", campaign, expert)
    grade(p3, "0", external="contest jury")
    grade(p1, "0", other, expert2)  # another campaign: never paired with campaign C's grades
    analysis(p3, "1", n=1)
    analysis(p3, "1", n=2)
    analysis(p3, "0", n=3)
    analysis(p3, None, n=4)  # no score parsed: not a rating
    return campaign


@pytest_db
def test_comparisons_pair_the_right_ratings_in_a_few_queries(rated, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        comparisons = load_comparisons()
    ee = comparisons["expert_vs_expert"]
    # p1 and p2 in campaign C, each pair in both orders; p3 has one app grade in C.
    assert len(ee) == 4 and sorted(set(ee.unit.tolist())) == sorted(
        Proof.objects.filter(text__in=["p1", "p2"]).values_list("id", flat=True)
    )
    assert sorted(zip(ee.ref.tolist(), ee.cand.tolist(), strict=True)) == [
        (0, 0),
        (0, 0),
        (1, 2),
        (2, 1),
    ]
    assert set(ee.labels["grader"].tolist()) == {"emmy_expert", "david_expert"}
    imported = comparisons["expert_vs_imported"]
    assert list(zip(imported.ref.tolist(), imported.cand.tolist(), strict=True)) == [(0, 0)]
    release = comparisons["expert_vs_release_verifier"]
    # p3's mean 0.8 → 1, against both expert grades of p3 (app and imported), both 0.
    assert sorted(release.labels["grader"].tolist()) == ["contest jury", "emmy_expert"]
    assert set(release.cand.tolist()) == {2} and set(release.ref.tolist()) == {0}
    each = comparisons["expert_vs_analysis"]
    assert len(each) == 6  # 3 parsed analyses × 2 expert grades
    mean = comparisons["expert_vs_analysis_mean"]
    assert mean.cand.tolist() == [1, 1]  # mean of 1, 1, 0 is 2/3: nearest level 0.5
    majority = comparisons["expert_vs_analysis_majority"]
    assert majority.cand.tolist() == [2, 2]  # two of the three analyses say 1
    assert set(mean.labels["category"].tolist()) == {"geometry"}


@pytest_db
def test_a_campaign_report_leaves_out_other_campaigns_grades(rated):
    ee = load_comparisons(rated)["expert_vs_expert"]
    other = Campaign.objects.get(name="Other")
    assert len(ee) == 4
    assert len(load_comparisons(other)["expert_vs_expert"]) == 0
    release = load_comparisons(other)["expert_vs_release_verifier"]
    assert len(release) == 0  # p3 is not in the other campaign


@pytest_db
def test_a_split_verifier_majority_goes_to_the_lower_score(problem, expert, owner):
    proof = Proof.objects.create(problem=problem, text="p")
    campaign = Campaign.objects.create(name="C", created_by=owner)
    grade(proof, "1", campaign, expert)
    for n, score in enumerate(["1", "0", "1", "0", "0.5"]):
        analysis(proof, score, n=n)
    analysis(proof, "1", model="other-verifier", n=9)
    majority = load_comparisons()["expert_vs_analysis_majority"]
    assert sorted(majority.cand.tolist()) == [0, 2]  # verifier-v1 split 2–2: 0; the other: 1
    assert majority.ref_rater[0] == majority.ref_rater[1] != majority.cand_rater[0]


@pytest_db
def test_the_intervals_do_not_depend_on_the_order_rows_were_created_in(db):
    def report_after_creating(external_ids: list[str]) -> dict:
        Grade.objects.all().delete()
        Proof.objects.all().delete()
        Problem.objects.all().delete()
        for external_id in external_ids:
            problem = Problem.objects.create(external_id=external_id, statement="s")
            proofs = int(external_id[-2:]) % 3 + 1  # the same data whatever the order
            for k, (human, mean) in enumerate([("0", 1.0), ("1", 1.0), ("0", 0.1)][:proofs]):
                proof = Proof.objects.create(
                    problem=problem, text=f"p{k}", metadata={"average_automatic_rating": mean}
                )
                grade(proof, human, external="jury")
        return agreement_report(resamples=300, slice_keys=())

    ids = [f"P-{n:02}" for n in range(12)]
    forward = report_after_creating(ids)
    assert forward == report_after_creating(ids[::-1])
    assert forward["comparisons"]["expert_vs_release_verifier"]["overall"]["pairs"] == 24


@pytest_db
def test_an_imported_grader_named_like_a_user_is_another_rater(problem, expert, owner):
    proof = Proof.objects.create(problem=problem, text="p")
    campaign = Campaign.objects.create(name="C", created_by=owner)
    grade(proof, "1", campaign, expert)
    grade(proof, "0", external=expert.username)
    pairs = load_comparisons()["expert_vs_imported"]
    assert len(pairs) == 1 and pairs.ref_rater[0] != pairs.cand_rater[0]
    assert len(pairs.ratings()[0]) == 2  # both ratings of the proof count


@pytest_db
def test_the_report_command_prints_the_same_numbers_as_the_function(rated):
    out = io.StringIO()
    call_command("agreement_report", "--json", "--resamples", "50", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed == json.loads(json.dumps(agreement_report(resamples=50)))
    assert set(printed["comparisons"]["expert_vs_expert"]["slices"]) == {
        "category",
        "level",
        "problem",
        "generator",
        "grader",
    }
    text = io.StringIO()
    call_command("agreement_report", "--campaign", "C", "--slice", "grader", stdout=text)
    assert "Expert vs expert (app grades): 4 pairs, 2 proofs, 1 problems" in text.getvalue()
    assert "emmy_expert" in text.getvalue()
    with pytest.raises(CommandError, match="no campaign named 'Nope'"):
        call_command("agreement_report", "--campaign", "Nope")


# --- the shipped DeepSeekMath-V2 release (issue §5) ---------------------------------------

SCALE = {"IMO": 7, "PB": 7, "CMO": 21, "Putnam": 10}


def independent_release_pairs() -> list[tuple[str, float, float]]:
    """(problem, verifier mean, converted human score) straight from the files: json only."""
    rows = []
    for path in DEEPSEEK_JSONL:
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            prediction = data["model_prediction"]
            if isinstance(prediction, str):
                prediction = ast.literal_eval(prediction)
            idx = data["problem_idx"]
            scale = next(v for k, v in SCALE.items() if idx.startswith(k))
            fraction = prediction["human_rating"] / scale
            human = 1.0 if fraction >= 1 else 0.5 if fraction >= 0.8 else 0.0
            rows.append((idx, prediction["average_automatic_rating"], human))
    return rows


def test_the_release_verifier_against_experts_matches_a_computation_from_the_files(db):
    for path in DEEPSEEK_JSONL:
        assert import_path(path, "deepseek").ok
    report = agreement_report(resamples=200)["comparisons"]["expert_vs_release_verifier"]
    m = report["overall"]

    rows = independent_release_pairs()
    assert len(rows) == m["pairs"] == m["units"] == 84
    levels = [0.0, 0.5, 1.0]
    # The mean of 64 verifier scores, to the nearest level (halfway goes up).
    verifier = [0.0 if mean < 0.25 else 0.5 if mean < 0.75 else 1.0 for _, mean, _ in rows]
    human = [h for _, _, h in rows]
    confusion = [[0] * 3 for _ in levels]
    for h, v in zip(human, verifier, strict=True):
        confusion[levels.index(h)][levels.index(v)] += 1
    assert m["confusion"] == confusion
    false_positives = sum(1 for h, v in zip(human, verifier, strict=True) if h == 0 and v == 1)
    assert m["false_positives"] == false_positives == 6
    assert m["false_positive_rate"]["value"] == pytest.approx(false_positives / human.count(0))
    assert m["false_negatives"] == 0
    # Which proofs they are, by the per-problem slice (one proof per problem here); four of
    # the six were accepted by all 64 verifier runs (mean 1.0).
    by_problem = report["slices"]["problem"]
    flagged = sorted(idx for idx, s in by_problem.items() if s["false_positives"])
    pairs = zip(rows, verifier, strict=True)
    assert flagged == sorted(idx for (idx, _, h), v in pairs if h == 0 and v == 1)
    assert flagged == [
        "CMO2024-3",
        "IMO2025-6",
        "PB-Advanced-003",
        "PB-Advanced-020",
        "PB-Advanced-024",
        "PB-Advanced-030",
    ]
    assert sum(1 for _, mean, h in rows if mean == 1 and h == 0) == 4
    n = len(rows)
    exact = sum(1 for h, v in zip(human, verifier, strict=True) if h == v) / n
    assert m["exact_agreement"]["value"] == pytest.approx(exact)
    observed = sum((h - v) ** 2 for h, v in zip(human, verifier, strict=True)) / n
    expected = sum((h - v) ** 2 for h in human for v in verifier) / n**2
    assert m["kappa_quadratic"]["value"] == pytest.approx(1 - observed / expected)
    linear_o = sum(abs(h - v) for h, v in zip(human, verifier, strict=True)) / n
    linear_e = sum(abs(h - v) for h in human for v in verifier) / n**2
    assert m["kappa_linear"]["value"] == pytest.approx(1 - linear_o / linear_e)
    assert m["clusters"] == len({idx for idx, _, _ in rows})
    low, high = m["exact_agreement"]["low"], m["exact_agreement"]["high"]
    assert low < exact < high
