"""Tests of callback.rates and callback.estimates: worked examples by hand, then independent
computations with statsmodels and scipy (imported inside the tests that need them)."""

from __future__ import annotations

import math
import random
from datetime import date
from operator import attrgetter

import pytest

from callback.estimates import Observation, district_rates, weighted_proportion
from callback.rates import (
    Interview,
    SpotCheck,
    count_outcomes,
    eligibility_rate,
    group_by,
    hotline_rates,
    hotline_rates_by,
    interview_rates,
    interview_rates_by,
    outcome_rates,
    outcome_rates_by,
    proportion,
    proportion_of,
    wilson_interval,
    z_value,
)

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def approx(value: float, tolerance: float = 1e-12) -> object:
    return pytest.approx(value, rel=tolerance, abs=tolerance)


# -- Wilson interval, by hand ------------------------------------------------------------------


def test_z_value_for_95_percent() -> None:
    assert z_value(0.95) == approx(Z95)


def test_wilson_8_of_10_by_hand() -> None:
    # p = 0.8, z²/n = 3.841458820694124 / 10 = 0.3841458820694124
    # centre = (0.8 + 0.3841458820694124 / 2) / (1 + 0.3841458820694124)
    #        = 0.9920729410347062 / 1.3841458820694124 = 0.7167363...
    # half   = 1.959963984540054 / 1.3841458820694124
    #          * sqrt(0.8 * 0.2 / 10 + 3.841458820694124 / (4 * 10 * 10))
    #        = 1.4160017... * sqrt(0.016 + 0.0096036470517353) = 1.4160017... * 0.1600114...
    #        = 0.2265819...
    centre = 0.9920729410347062 / 1.3841458820694124
    half = Z95 / 1.3841458820694124 * math.sqrt(0.016 + 0.0096036470517353)
    low, high = proportion(8, 10).low, proportion(8, 10).high
    assert low == approx(centre - half)
    assert high == approx(centre + half)
    # Published value of the Wilson interval for 8/10 (Newcombe 1998, method 3): 0.4902-0.9433.
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # type: ignore[arg-type]


def test_wilson_with_no_successes_keeps_a_proper_upper_bound() -> None:
    # k = 0: centre = half, so low = 0 and high = 2·centre = (z²/n) / (1 + z²/n) = z² / (n + z²)
    #      = 3.841458820694124 / 13.841458820694124 = 0.2775328...
    p = proportion(0, 10)
    assert (p.estimate, p.low) == (0.0, 0.0)
    assert p.high == approx(3.841458820694124 / 13.841458820694124)


def test_wilson_with_all_successes_keeps_a_proper_lower_bound() -> None:
    # k = n: by symmetry low = 1 - z² / (n + z²) = n / (n + z²) = 10 / 13.841458820694124
    p = proportion(10, 10)
    assert (p.estimate, p.high) == (1.0, 1.0)
    assert p.low == approx(10 / 13.841458820694124)


def test_empty_group_has_no_estimate_and_no_interval() -> None:
    p = proportion(0, 0)
    assert (p.k, p.n, p.estimate, p.low, p.high) == (0, 0, None, None, None)
    assert wilson_interval(0, 0) is None


def test_confidence_is_configurable() -> None:
    # A 99% interval is wider than the 95% one and both contain the estimate.
    p95, p99 = proportion(30, 50, 0.95), proportion(30, 50, 0.99)
    assert p99.confidence == 0.99
    assert p99.low < p95.low < 0.6 < p95.high < p99.high  # type: ignore[operator]


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_confidence_outside_0_1_is_rejected(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        proportion(1, 2, confidence)
    with pytest.raises(ValueError, match="confidence"):
        proportion(0, 0, confidence)


def test_more_successes_than_trials_is_rejected() -> None:
    with pytest.raises(ValueError):
        proportion(3, 2)


def test_proportion_of_leaves_out_missing_answers() -> None:
    # True, True, False, None -> 2 of 3
    p = proportion_of([True, True, False, None])
    assert (p.k, p.n) == (2, 3)


def test_wilson_agrees_with_statsmodels() -> None:
    smp = pytest.importorskip("statsmodels.stats.proportion")
    for confidence in (0.8, 0.9, 0.95, 0.99):
        for n in (1, 2, 3, 7, 10, 41, 250):
            for k in range(0, n + 1, max(1, n // 9)):
                ours = wilson_interval(k, n, confidence)
                theirs = smp.proportion_confint(k, n, alpha=1 - confidence, method="wilson")
                assert ours == pytest.approx(theirs, abs=1e-12), (k, n, confidence)


# -- 实现率 and 满意率 ---------------------------------------------------------------------------


def interview(unit: str, once: bool | None, satisfied: bool | None, **more: object) -> Interview:
    return Interview(unit=unit, went_at_most_once=once, satisfied=satisfied, **more)  # type: ignore[arg-type]


def test_realisation_and_satisfaction_by_hand() -> None:
    interviews = [
        interview("A", True, True),
        interview("A", True, True),
        interview("A", False, True),
        interview("A", None, True),  # could not say: left out of 实现率 only
        interview("A", True, False),
    ]
    rates = interview_rates(interviews)
    assert rates.completes == 5
    # 实现率: went at most once in 3 of the 4 usable answers = 0.75
    assert (rates.realisation.k, rates.realisation.n) == (3, 4)
    assert rates.realisation.estimate == 0.75
    # 满意率: satisfied in 4 of 5 = 0.8
    assert (rates.satisfaction.k, rates.satisfaction.n) == (4, 5)
    assert rates.satisfaction.estimate == 0.8


def test_interview_rates_of_no_interviews_are_undefined() -> None:
    rates = interview_rates([])
    assert rates.completes == 0
    assert rates.realisation.estimate is None and rates.realisation.low is None
    assert rates.satisfaction.estimate is None and rates.satisfaction.high is None


def test_interview_rates_by_unit_and_week() -> None:
    week1, week2 = date(2024, 5, 2), date(2024, 5, 9)  # Thursdays
    interviews = [
        interview("A", True, True, week=week1),
        interview("A", False, True, week=week2),
        interview("B", True, True, week=week1),
        interview("B", True, True, week=week1),
    ]
    by_unit = interview_rates_by(interviews, attrgetter("unit"))
    assert list(by_unit) == ["A", "B"]
    assert by_unit["A"].realisation.estimate == 0.5  # 1 of 2
    # Unit B is all-satisfied (k = n = 2): still a proper interval, n / (n + z²) to 1.
    assert by_unit["B"].satisfaction.low == approx(2 / (2 + Z95**2))
    assert by_unit["B"].satisfaction.high == 1.0
    by_week = interview_rates_by(interviews, attrgetter("week"))
    assert by_week[week1].completes == 3 and by_week[week2].completes == 1


def test_group_by_keeps_first_appearance_order() -> None:
    assert group_by([3, 1, 4, 1, 5], lambda x: x % 2) == {1: [3, 1, 1, 5], 0: [4]}


# -- 接通率, 实时答复率, time to answer ----------------------------------------------------------


def test_hotline_rates_by_hand() -> None:
    calls = [
        SpotCheck("X", answered=True, answered_on_the_spot=True, seconds_to_answer=10),
        SpotCheck("X", answered=True, answered_on_the_spot=False, seconds_to_answer=20),
        SpotCheck("X", answered=True, answered_on_the_spot=None, seconds_to_answer=None),
        SpotCheck("X", answered=True, answered_on_the_spot=True, seconds_to_answer=90),
        SpotCheck("X", answered=False),
    ]
    rates = hotline_rates(calls)
    assert rates.calls == 5
    # 接通率: 4 answered of 5 calls = 0.8
    assert (rates.connection.k, rates.connection.n, rates.connection.estimate) == (4, 5, 0.8)
    # 实时答复率: 2 answered on the spot of the 3 answered calls with a record
    assert (rates.real_time_answer.k, rates.real_time_answer.n) == (2, 3)
    # median of [10, 20, 90] = 20 (the mean would be 40), over 3 timed calls
    assert (rates.median_seconds_to_answer, rates.timed_calls) == (20, 3)


def test_a_pending_call_is_in_neither_side_of_the_connection_rate() -> None:
    calls = [
        SpotCheck("X", answered=True, seconds_to_answer=10),
        SpotCheck("X", answered=False),
        SpotCheck("X", answered=False, pending=True),
        SpotCheck("X", answered=False, pending=True),
    ]
    rates = hotline_rates(calls)
    assert (rates.calls, rates.pending) == (4, 2)
    assert (rates.connection.k, rates.connection.n) == (1, 2)
    with pytest.raises(ValueError, match="not pending"):
        SpotCheck("X", answered=True, pending=True)


def test_hotline_that_never_answers() -> None:
    rates = hotline_rates_by(
        [SpotCheck("Y", answered=False), SpotCheck("Y", answered=False)], attrgetter("unit")
    )["Y"]
    assert rates.connection.estimate == 0.0
    # k = 0: upper bound z² / (n + z²) with n = 2
    assert rates.connection.high == approx(Z95**2 / (2 + Z95**2))
    assert rates.real_time_answer.n == 0 and rates.real_time_answer.estimate is None
    assert rates.median_seconds_to_answer is None and rates.timed_calls == 0


def test_hotline_rates_of_no_calls_are_undefined() -> None:
    rates = hotline_rates([])
    assert rates.calls == 0 and rates.connection.estimate is None


def test_unanswered_call_cannot_be_answered_on_the_spot() -> None:
    with pytest.raises(ValueError, match="real-time"):
        SpotCheck("X", answered=False, answered_on_the_spot=True)
    with pytest.raises(ValueError, match="time to answer"):
        SpotCheck("X", answered=False, seconds_to_answer=3)
    with pytest.raises(ValueError, match="seconds"):
        SpotCheck("X", answered=True, seconds_to_answer=-1)


# -- AAPOR outcome rates -----------------------------------------------------------------------

EXAMPLE = {"I": 40, "P": 5, "R": 10, "NC": 15, "O": 5, "UH": 20, "UO": 5, "NE": 25}


def test_default_e_is_share_eligible_among_determined_cases() -> None:
    # eligible (I+P+R+NC+O) = 40+5+10+15+5 = 75; determined = 75 + NE 25 = 100; e = 0.75
    assert eligibility_rate(EXAMPLE) == 0.75


def test_aapor_rates_by_hand() -> None:
    r = outcome_rates(EXAMPLE)
    # I+P = 45; R+NC+O = 30; UH+UO = 25; e(UH+UO) = 0.75 * 25 = 18.75
    # all = 45+30+25 = 100; with e = 45+30+18.75 = 93.75; known eligible = 75
    # contacted (I+P)+R+O = 45+10+5 = 60
    assert (r.e, r.e_source) == (0.75, "estimated")
    expected = {
        "RR1": 40 / 100,  # 0.4
        "RR2": 45 / 100,  # 0.45
        "RR3": 40 / 93.75,  # 0.42666...
        "RR4": 45 / 93.75,  # 0.48
        "RR5": 40 / 75,  # 0.5333...
        "RR6": 45 / 75,  # 0.6
        "COOP1": 40 / 60,  # I / ((I+P)+R+O)
        "COOP2": 45 / 60,  # 0.75
        "COOP3": 40 / 55,  # I / ((I+P)+R)
        "COOP4": 45 / 55,
        "REF1": 10 / 100,
        "REF2": 10 / 93.75,
        "REF3": 10 / 75,
        "CON1": 60 / 100,
        "CON2": 60 / 93.75,  # 0.64
        "CON3": 60 / 75,  # 0.8
    }
    assert r.rates() == pytest.approx(expected, rel=1e-15)
    assert (r.rr4, r.con2, r.con3) == (0.48, 0.64, 0.8)


def test_given_e_is_used_and_stated() -> None:
    r = outcome_rates(EXAMPLE, e=0.5)
    # RR3 = 40 / (75 + 0.5 * 25) = 40 / 87.5
    assert (r.e, r.e_source) == (0.5, "given")
    assert r.rr3 == approx(40 / 87.5)
    # e = 1 makes RR3 RR1; e = 0 makes RR3 RR5
    assert outcome_rates(EXAMPLE, e=1.0).rr3 == approx(0.4)
    assert outcome_rates(EXAMPLE, e=0.0).rr3 == approx(40 / 75)


def test_zero_denominators_give_none() -> None:
    r = outcome_rates({})
    assert all(value is None for value in r.rates().values())
    assert (r.e, r.e_source) == (None, "unavailable")


def test_rates_needing_an_unavailable_e_are_none() -> None:
    # Only unknown-eligibility cases: no determined case, so no e.
    r = outcome_rates({"UH": 3})
    assert r.e is None
    assert r.rr1 == 0.0  # 0 / (0 + 3)
    assert (r.rr3, r.ref2, r.con2) == (None, None, None)
    assert (r.rr5, r.coop1) == (None, None)  # 0 / 0


def test_e_is_not_needed_without_unknown_cases() -> None:
    # No UH/UO: e multiplies nothing, RR3 = RR1 = RR5 = 2 / (2 + 2)
    r = outcome_rates({"I": 2, "R": 2})
    assert r.rr3 == r.rr1 == r.rr5 == 0.5


def test_bad_counts_and_e_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown disposition"):
        outcome_rates({"X": 1})
    with pytest.raises(ValueError, match=">= 0"):
        outcome_rates({"I": -1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        outcome_rates({"I": 1}, e=1.2)


def test_rates_by_group_share_one_pooled_e() -> None:
    counts = count_outcomes(
        [("A", "I"), ("A", "I"), ("A", "UH"), ("A", "NE"), ("B", "I"), ("B", "NC"), ("B", "UO")]
    )
    assert counts["A"]["I"] == 2 and counts["B"]["UO"] == 1 and counts["B"]["NE"] == 0
    rates = outcome_rates_by(counts)
    # pooled eligible = A(2 I) + B(1 I + 1 NC) = 4; pooled NE = 1; e = 4 / 5 = 0.8
    assert {r.e for r in rates.values()} == {0.8}
    assert {r.e_source for r in rates.values()} == {"pooled"}
    # A: RR3 = 2 / (2 + 0.8 * 1) = 2 / 2.8
    assert rates["A"].rr3 == approx(2 / 2.8)
    # B: RR3 = 1 / (2 + 0.8 * 1) = 1 / 2.8
    assert rates["B"].rr3 == approx(1 / 2.8)
    assert outcome_rates_by(counts, e=0.3)["A"].e_source == "given"


def test_count_outcomes_rejects_unknown_categories() -> None:
    with pytest.raises(ValueError):
        count_outcomes([("A", "complete")])


# -- design-weighted stratified estimate, by hand ---------------------------------------------


def stratum(name: str, weight: float, yes: int, no: int) -> list[Observation]:
    return [Observation(name, weight, True)] * yes + [Observation(name, weight, False)] * no


# Stratum A: N = 100, 4 completes (w = 25), 3 yes; stratum B: N = 300, 5 completes (w = 60), 2 yes.
HAND = stratum("A", 25, 3, 1) + stratum("B", 60, 2, 3)
HAND_SIZES = {"A": 100, "B": 300}


def test_weighted_estimate_with_fpc_by_hand() -> None:
    r = weighted_proportion(HAND, HAND_SIZES)
    # W_A = 100/400 = 0.25, p_A = 0.75; W_B = 300/400 = 0.75, p_B = 0.4
    # p = 0.25 * 0.75 + 0.75 * 0.4 = 0.1875 + 0.3 = 0.4875
    assert r.estimate == approx(0.4875)
    # Cochran: v = sum W_h² (1 - f_h) p_h q_h / (n_h - 1)
    # A: 0.0625 * (1 - 4/100) * 0.75 * 0.25 / 3 = 0.0625 * 0.96 * 0.0625 = 0.00375
    # B: 0.5625 * (1 - 5/300) * 0.4 * 0.6 / 4 = 0.5625 * (295/300) * 0.06 = 0.0331875
    assert [s.variance for s in r.strata] == [approx(0.00375), approx(0.0331875)]
    assert r.standard_error == approx(math.sqrt(0.00375 + 0.0331875))
    assert (r.estimator, r.finite_population_correction) == ("separate ratio", True)
    # The unweighted figure beside it: 5 yes of 9
    assert (r.unweighted.k, r.unweighted.n) == (5, 9)


def test_weighted_estimate_without_sizes_by_hand() -> None:
    r = weighted_proportion(HAND)
    # sum(w y) / sum(w) = (3*25 + 2*60) / (4*25 + 5*60) = 195 / 400 = 0.4875, as above
    assert r.estimate == approx(0.4875)
    # Same terms without the FPC: 0.0625 * 0.0625 + 0.5625 * 0.06 = 0.00390625 + 0.03375
    assert r.standard_error == approx(math.sqrt(0.00390625 + 0.03375))
    assert (r.estimator, r.finite_population_correction) == ("combined ratio", False)


def test_interval_is_wilson_at_the_effective_sample_size() -> None:
    r = weighted_proportion(HAND, HAND_SIZES)
    # n_eff = p q / v = 0.4875 * 0.5125 / 0.0369375 = 6.7639...; deff = 9 / n_eff
    n_eff = 0.4875 * 0.5125 / 0.0369375
    assert r.effective_n == approx(n_eff)
    assert r.design_effect == approx(9 / n_eff)
    assert (r.low, r.high) == pytest.approx(wilson_interval(0.4875 * n_eff, n_eff), abs=1e-12)


def test_single_complete_stratum_gets_the_conservative_variance() -> None:
    # Add stratum C: N = 50, one complete (w = 50), yes. N = 450, W_C = 50/450 = 1/9
    r = weighted_proportion(HAND + stratum("C", 50, 1, 0), {**HAND_SIZES, "C": 50})
    c = r.strata[2]
    # contribution = W_C² (1 - 1/50) * 1/4 = (1/81) * 0.98 * 0.25
    assert c.variance == approx(0.98 * 0.25 / 81)
    assert c.variance_rule == "single complete"
    assert r.single_complete_strata == ("C",)
    assert any("'C' has 1 complete" in note for note in r.notes)
    # p = (100 * 0.75 + 300 * 0.4 + 50 * 1) / 450 = 245 / 450
    assert r.estimate == approx(245 / 450)


def test_single_complete_stratum_without_sizes() -> None:
    r = weighted_proportion(HAND + stratum("C", 50, 0, 1))
    # sum(w) = 400 + 50 = 450: contribution = (50/450)² * 1/4
    assert r.strata[2].variance == approx((50 / 450) ** 2 / 4)
    assert r.single_complete_strata == ("C",)


def test_stratum_without_completes_is_left_out_and_said() -> None:
    with_d = weighted_proportion(HAND, {**HAND_SIZES, "D": 80})
    without = weighted_proportion(HAND, HAND_SIZES)
    assert with_d.empty_strata == ("D",)
    assert (with_d.estimate, with_d.standard_error) == (without.estimate, without.standard_error)
    assert any("'D' (N=80) has no completes" in note for note in with_d.notes)


def test_no_completes_means_no_estimate() -> None:
    r = weighted_proportion([], {"A": 10})
    assert (r.estimate, r.standard_error, r.low, r.high) == (None, None, None, None)
    assert r.n == 0 and r.unweighted.estimate is None and r.empty_strata == ("A",)


def test_all_yes_sample_is_exactly_one_with_a_proper_interval() -> None:
    r = weighted_proportion(stratum("A", 3, 4, 0) + stratum("B", 7, 3, 0), {"A": 40, "B": 90})
    # p = (40 * 1 + 90 * 1) / 130 = 1 exactly, and every stratum variance is 0
    assert (r.estimate, r.standard_error, r.high) == (1.0, 0.0, 1.0)
    # design effect 0/0: Wilson at the actual n = 7, low = 7 / (7 + z²)
    assert r.design_effect is None and r.effective_n == 7
    assert r.low == approx(7 / (7 + Z95**2))


def test_census_has_no_sampling_error() -> None:
    r = weighted_proportion(stratum("A", 1, 2, 1) + stratum("B", 1, 1, 1), {"A": 3, "B": 2})
    # p = (3 * 2/3 + 2 * 1/2) / 5 = 3 / 5
    assert r.estimate == approx(0.6)
    assert (r.standard_error, r.low, r.high) == (0.0, r.estimate, r.estimate)


def test_equal_weights_one_stratum_reduce_to_the_simple_formula() -> None:
    # p = 3/5; v = n/(n-1) * sum((y - p)²) / n² = p q / (n - 1) = 0.24 / 4 = 0.06
    r = weighted_proportion(stratum("all", 2.0, 3, 2))
    assert r.estimate == approx(0.6)
    assert r.standard_error == approx(math.sqrt(0.06))


@pytest.mark.parametrize(
    ("observations", "sizes", "message"),
    [
        ([Observation("A", 0.0, True)], None, "weights must be > 0"),
        ([Observation("A", 1.0, True)], {"B": 3}, "no population size"),
        (stratum("A", 1, 2, 2), {"A": 3}, "smaller than its 4 completes"),
        ([], {"A": -1}, ">= 0"),
    ],
)
def test_inconsistent_design_is_rejected(
    observations: list[Observation], sizes: dict[str, int] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        weighted_proportion(observations, sizes)


def test_district_rates_weight_both_questions() -> None:
    interviews = [
        Interview("u1", True, True, stratum="A", weight=25),
        Interview("u1", True, False, stratum="A", weight=25),
        Interview("u2", False, None, stratum="B", weight=60),
        Interview("u2", True, True, stratum="B", weight=60),
    ]
    rates = district_rates(interviews, {"A": 50, "B": 120})
    assert rates.completes == 4
    # 实现率: A all yes (p_A = 1), B 1 of 2; p = (50 * 1 + 120 * 0.5) / 170 = 110 / 170
    assert rates.realisation.estimate == approx(110 / 170)
    # 满意率: A 1 of 2; B only one usable answer, yes; p = (50 * 0.5 + 120 * 1) / 170
    assert rates.satisfaction.estimate == approx(145 / 170)
    assert rates.satisfaction.single_complete_strata == ("B",)
    assert rates.satisfaction.unweighted.n == 3


def test_district_rates_need_strata() -> None:
    with pytest.raises(ValueError, match="no stratum"):
        district_rates([Interview("u1", True, True)])


# -- design-weighted stratified estimate, against independent computations --------------------


def random_sample(seed: int) -> tuple[list[Observation], dict[str, int]]:
    rng = random.Random(seed)
    observations: list[Observation] = []
    sizes: dict[str, int] = {}
    for h in range(rng.randint(2, 6)):
        n_h = rng.randint(2, 15)
        sizes[f"s{h}"] = n_h + rng.randint(0, 200)
        share_yes = rng.random()
        for _ in range(n_h):
            # Weights vary inside a stratum, as after a non-response adjustment.
            weight = rng.uniform(1.0, 30.0)
            observations.append(Observation(f"s{h}", weight, rng.random() < share_yes))
    return observations, sizes


@pytest.mark.parametrize("seed", range(25))
def test_separate_ratio_estimate_agrees_with_statsmodels(seed: int) -> None:
    np = pytest.importorskip("numpy")
    sm = pytest.importorskip("statsmodels.api")
    observations, sizes = random_sample(seed)
    total = sum(sizes.values())
    estimate = variance = 0.0
    for h, size in sizes.items():
        y = np.array([o.value for o in observations if o.stratum == h], dtype=float)
        w = np.array([o.weight for o in observations if o.stratum == h])
        # The weighted mean is WLS on a constant; its HC1 sandwich variance is the
        # with-replacement linearisation variance n/(n-1) sum(w²e²)/sum(w)².
        fit = sm.WLS(y, np.ones_like(y), weights=w).fit(cov_type="HC1")
        estimate += size / total * fit.params[0]
        variance += (size / total) ** 2 * (1 - len(y) / size) * fit.bse[0] ** 2
    r = weighted_proportion(observations, sizes)
    assert r.estimate == pytest.approx(estimate, rel=1e-10)
    assert r.standard_error == pytest.approx(math.sqrt(variance), rel=1e-9)


@pytest.mark.parametrize("seed", range(25))
def test_combined_ratio_estimate_agrees_with_the_ratio_variance_formula(seed: int) -> None:
    np = pytest.importorskip("numpy")
    observations, _ = random_sample(seed)
    strata = sorted({o.stratum for o in observations})
    # Cochran (1977, ch. 6): v(R) = [V(Y) - 2 R C(Y, X) + R² V(X)] / X², with Y = sum(w y),
    # X = sum(w) and stratum-wise covariances n_h · cov(w y, w) of the weighted values.
    wy = {h: np.array([o.weight * o.value for o in observations if o.stratum == h]) for h in strata}
    w = {h: np.array([o.weight for o in observations if o.stratum == h]) for h in strata}
    total_y = sum(wy[h].sum() for h in strata)
    total_x = sum(w[h].sum() for h in strata)
    ratio = total_y / total_x
    v_y = v_x = c_yx = 0.0
    for h in strata:
        cov = np.cov(np.vstack([wy[h], w[h]]), ddof=1)
        n_h = len(w[h])
        v_y += n_h * cov[0, 0]
        v_x += n_h * cov[1, 1]
        c_yx += n_h * cov[0, 1]
    variance = (v_y - 2 * ratio * c_yx + ratio**2 * v_x) / total_x**2
    r = weighted_proportion(observations)
    assert r.estimate == pytest.approx(ratio, rel=1e-10)
    assert r.standard_error == pytest.approx(math.sqrt(variance), rel=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_constant_weights_match_cochrans_stratified_formula(seed: int) -> None:
    np = pytest.importorskip("numpy")
    observations, sizes = random_sample(seed)
    # Give every complete its stratum's N_h / n_h, the textbook design weight.
    n_h = {h: sum(o.stratum == h for o in observations) for h in sizes}
    observations = [Observation(o.stratum, sizes[o.stratum] / n_h[o.stratum], o.value)
                    for o in observations]  # fmt: skip
    shares = np.array([sizes[h] for h in sizes]) / sum(sizes.values())
    p = np.array([np.mean([o.value for o in observations if o.stratum == h]) for h in sizes])
    n = np.array([n_h[h] for h in sizes])
    f = n / np.array([sizes[h] for h in sizes])
    variance = np.sum(shares**2 * (1 - f) * p * (1 - p) / (n - 1))
    r = weighted_proportion(observations, sizes)
    assert r.estimate == pytest.approx(float(np.sum(shares * p)), rel=1e-10)
    assert r.standard_error == pytest.approx(math.sqrt(variance), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_weighted_interval_agrees_with_statsmodels_wilson(seed: int) -> None:
    smp = pytest.importorskip("statsmodels.stats.proportion")
    stats = pytest.importorskip("scipy.stats")
    observations, sizes = random_sample(seed)
    r = weighted_proportion(observations, sizes, confidence=0.9)
    assert r.estimate is not None and r.standard_error is not None
    if not 0 < r.estimate < 1:
        pytest.skip("an all-one-class sample has no design effect")
    n_eff = r.estimate * (1 - r.estimate) / r.standard_error**2
    low, high = smp.proportion_confint(r.estimate * n_eff, n_eff, alpha=0.1, method="wilson")
    assert (r.low, r.high) == pytest.approx((low, high), abs=1e-12)
    assert z_value(0.9) == pytest.approx(stats.norm.ppf(0.95), abs=1e-12)
