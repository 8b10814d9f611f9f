"""The design-weighted district estimate of a proportion from a stratified sample.

A campaign samples cases by stratum (unit, town, channel...) with unequal probabilities, so the
unweighted share of the completes is not the district's share. Each complete carries its
stratum and design weight (inverse inclusion probability); the estimate here is the ratio
(Hájek) form, its variance the stratified Taylor-linearisation formula with a finite-population
correction when stratum sizes are known. docs/rates.md derives both and gives the sources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

from callback.rates import (
    DEFAULT_CONFIDENCE,
    Interview,
    Proportion,
    group_by,
    proportion,
    wilson_interval,
    z_value,
)

#: The estimator used: "separate ratio" when stratum population sizes N_h are known (each
#: stratum's weighted mean, combined with shares N_h / N), "combined ratio" otherwise
#: (sum of w·y over sum of w across all strata).
Estimator = Literal["separate ratio", "combined ratio"]

#: How a stratum's variance contribution was obtained.
#:  "linearised": the stratified linearisation formula (two or more completes);
#:  "single complete": one complete, within-stratum variance taken as 1/4 (conservative);
#:  "census": every case of the stratum was interviewed, no sampling error;
#:  "no completes": the stratum has no completes and is left out of the estimate.
VarianceRule = Literal["linearised", "single complete", "census", "no completes"]

#: The largest variance a yes/no answer can have, p(1 - p) at p = 1/2: what a stratum with a
#: single complete is assumed to have, since one answer says nothing about spread.
LONELY_VARIANCE = 0.25


@dataclass(frozen=True)
class Observation:
    """One yes/no answer of a completed interview with its sampling stratum and design weight."""

    stratum: str
    weight: float
    value: bool


@dataclass(frozen=True)
class StratumEstimate:
    """What one stratum contributes to a WeightedProportion."""

    stratum: str
    completes: int
    population: int | None  # N_h, when given
    weight_sum: float
    #: The stratum's share of the estimate: N_h / N or sum of its weights / all weights.
    share: float | None
    estimate: float | None  # the stratum's weighted share of yes
    variance: float  # its contribution to the variance of the district estimate
    variance_rule: VarianceRule


@dataclass(frozen=True)
class WeightedProportion:
    """A design-weighted proportion with its standard error and interval, beside the raw one.

    ``low``/``high`` are the Wilson interval at the effective sample size
    ``effective_n = estimate (1 - estimate) / variance``. ``notes`` says in words which
    estimator ran and every rule applied to small strata; reports print them.
    """

    estimate: float | None
    standard_error: float | None
    low: float | None
    high: float | None
    confidence: float
    n: int
    effective_n: float | None
    design_effect: float | None
    estimator: Estimator
    finite_population_correction: bool
    strata: tuple[StratumEstimate, ...]
    notes: tuple[str, ...]
    unweighted: Proportion

    @property
    def single_complete_strata(self) -> tuple[str, ...]:
        """Strata whose variance contribution is the conservative single-complete one."""
        return tuple(s.stratum for s in self.strata if s.variance_rule == "single complete")

    @property
    def empty_strata(self) -> tuple[str, ...]:
        """Strata with a known population but no completes, left out of the estimate."""
        return tuple(s.stratum for s in self.strata if s.variance_rule == "no completes")


def _checked(
    observations: Iterable[Observation], population_sizes: Mapping[str, int] | None
) -> dict[str, list[Observation]]:
    by_stratum = group_by(observations, attrgetter("stratum"))
    for stratum, members in by_stratum.items():
        for obs in members:
            if not (math.isfinite(obs.weight) and obs.weight > 0):
                raise ValueError(f"stratum {stratum!r}: weights must be > 0, not {obs.weight!r}")
        if population_sizes is not None:
            if stratum not in population_sizes:
                raise ValueError(f"stratum {stratum!r} has completes but no population size")
            if population_sizes[stratum] < len(members):
                raise ValueError(
                    f"stratum {stratum!r}: population size {population_sizes[stratum]} is"
                    f" smaller than its {len(members)} completes"
                )
    if population_sizes is not None:
        for stratum, size in population_sizes.items():
            if size < 0:
                raise ValueError(f"stratum {stratum!r}: population size must be >= 0")
    return by_stratum


def _sum_of_squares(deviations: Sequence[float], centred: bool) -> float:
    mean = math.fsum(deviations) / len(deviations) if centred else 0.0
    return math.fsum((d - mean) ** 2 for d in deviations)


def _separate(
    by_stratum: dict[str, list[Observation]], sizes: Mapping[str, int]
) -> tuple[float, list[StratumEstimate]]:
    """p = sum_h (N_h / N) p_h with p_h = sum(w y) / sum(w) within h (Cochran 1977, ch. 6)."""
    represented = math.fsum(sizes[h] for h in by_stratum)
    strata: list[StratumEstimate] = []
    for stratum, size in sizes.items():
        members = by_stratum.get(stratum, [])
        if not members:
            strata.append(StratumEstimate(stratum, 0, size, 0.0, None, None, 0.0, "no completes"))
            continue
        n_h = len(members)
        weight_sum = math.fsum(o.weight for o in members)
        p_h = math.fsum(o.weight for o in members if o.value) / weight_sum
        share = size / represented
        fpc = 1.0 - n_h / size
        rule: VarianceRule
        if fpc == 0.0:
            variance_h, rule = 0.0, "census"
        elif n_h == 1:
            variance_h, rule = fpc * LONELY_VARIANCE, "single complete"
        else:
            # Linearised variance of the stratum's ratio mean: z_i = w_i (y_i - p_h) / sum(w),
            # which sum to zero within the stratum, so no centring is needed.
            z = [o.weight * (o.value - p_h) / weight_sum for o in members]
            variance_h = fpc * n_h / (n_h - 1) * _sum_of_squares(z, centred=False)
            rule = "linearised"
        strata.append(
            StratumEstimate(
                stratum, n_h, size, weight_sum, share, p_h, share * share * variance_h, rule
            )
        )
    # Summing N_h p_h over N (rather than shares times p_h) keeps an all-yes sample at exactly 1.
    estimate = math.fsum(
        s.estimate * s.population
        for s in strata
        if s.estimate is not None and s.population is not None
    )
    return min(1.0, max(0.0, estimate / represented)), strata


def _combined(by_stratum: dict[str, list[Observation]]) -> tuple[float, list[StratumEstimate]]:
    """p = sum(w y) / sum(w) over all completes, the Hájek ratio estimator."""
    everyone = [o for members in by_stratum.values() for o in members]
    total_weight = math.fsum(o.weight for o in everyone)
    estimate = math.fsum(o.weight for o in everyone if o.value) / total_weight
    strata: list[StratumEstimate] = []
    for stratum, members in by_stratum.items():
        n_h = len(members)
        weight_sum = math.fsum(o.weight for o in members)
        p_h = math.fsum(o.weight for o in members if o.value) / weight_sum
        rule: VarianceRule
        if n_h == 1:
            variance_h = (members[0].weight / total_weight) ** 2 * LONELY_VARIANCE
            rule = "single complete"
        else:
            # z_i = w_i (y_i - p) / sum(w) is the linearised ratio; its stratum totals are
            # estimated independently, hence centring within the stratum.
            z = [o.weight * (o.value - estimate) / total_weight for o in members]
            variance_h = n_h / (n_h - 1) * _sum_of_squares(z, centred=True)
            rule = "linearised"
        strata.append(
            StratumEstimate(
                stratum, n_h, None, weight_sum, weight_sum / total_weight, p_h, variance_h, rule
            )
        )
    return min(1.0, max(0.0, estimate)), strata


def weighted_proportion(
    observations: Iterable[Observation],
    population_sizes: Mapping[str, int] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> WeightedProportion:
    """The design-weighted share of yes among ``observations``, stratified, with its interval.

    With ``population_sizes`` (N_h per stratum) the separate ratio estimator runs and each
    stratum's variance carries the finite-population correction 1 - n_h / N_h; without them,
    the combined ratio estimator runs with no correction. Strata with fewer than two completes
    follow the rules in ``VarianceRule`` and are named in ``notes``.
    """
    z_value(confidence)
    by_stratum = _checked(observations, population_sizes)
    n = sum(len(members) for members in by_stratum.values())
    k = sum(o.value for members in by_stratum.values() for o in members)
    unweighted = proportion(k, n, confidence)
    estimator: Estimator = "combined ratio" if population_sizes is None else "separate ratio"
    fpc = population_sizes is not None

    if n == 0:
        empty = tuple(
            StratumEstimate(h, 0, size, 0.0, None, None, 0.0, "no completes")
            for h, size in (population_sizes or {}).items()
        )
        return WeightedProportion(
            None, None, None, None, confidence, 0, None, None, estimator, fpc, empty,
            ("no completes: nothing to estimate",), unweighted,
        )  # fmt: skip

    if population_sizes is None:
        estimate, strata = _combined(by_stratum)
        notes = ["combined ratio estimator sum(w·y)/sum(w); no stratum sizes, no FPC"]
    else:
        estimate, strata = _separate(by_stratum, population_sizes)
        notes = ["separate ratio estimator sum_h (N_h/N)·p_h, FPC 1 - n_h/N_h"]
    for s in strata:
        if s.variance_rule == "single complete":
            notes.append(
                f"stratum {s.stratum!r} has 1 complete: its variance is taken as the largest"
                " a yes/no answer can have, p(1-p) = 1/4 (conservative)"
            )
        elif s.variance_rule == "no completes" and s.population:
            notes.append(
                f"stratum {s.stratum!r} (N={s.population}) has no completes: left out, the"
                " estimate stands for the other strata"
            )

    variance = math.fsum(s.variance for s in strata)
    effective_n: float | None
    design_effect: float | None
    if all(s.variance_rule == "census" for s in strata if s.completes):
        # Every case was interviewed: the figure is exact, not an estimate.
        effective_n, design_effect, low, high = None, None, estimate, estimate
        notes.append("every stratum fully interviewed: no sampling error")
    else:
        if 0.0 < estimate < 1.0 and variance > 0.0:
            effective_n = estimate * (1.0 - estimate) / variance
            design_effect = n / effective_n
        else:
            # At 0 or 1 (or with zero estimated variance) the design effect is 0/0; Wilson at
            # the actual number of completes still gives an honest one-sided width.
            effective_n, design_effect = float(n), None
            notes.append("design effect not estimable: interval uses the number of completes")
        interval = wilson_interval(estimate * effective_n, effective_n, confidence)
        assert interval is not None  # effective_n > 0 here
        low, high = interval
    return WeightedProportion(
        estimate=estimate,
        standard_error=math.sqrt(variance),
        low=low,
        high=high,
        confidence=confidence,
        n=n,
        effective_n=effective_n,
        design_effect=design_effect,
        estimator=estimator,
        finite_population_correction=fpc,
        strata=tuple(strata),
        notes=tuple(notes),
        unweighted=unweighted,
    )


@dataclass(frozen=True)
class DistrictRates:
    """Design-weighted 实现率 and 满意率 of a district, each beside its unweighted figure."""

    completes: int
    realisation: WeightedProportion  # 实现率
    satisfaction: WeightedProportion  # 满意率


def district_rates(
    interviews: Iterable[Interview],
    population_sizes: Mapping[str, int] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> DistrictRates:
    """Design-weighted 实现率 and 满意率 over the completed interviews of a stratified sample.

    Every interview needs its ``stratum``; interviews without a usable answer to a question
    are left out of that question's rate (as in ``callback.rates.interview_rates``).
    """
    realised: list[Observation] = []
    satisfied: list[Observation] = []
    completes = 0
    for interview in interviews:
        completes += 1
        if interview.stratum is None:
            raise ValueError(f"an interview of unit {interview.unit!r} has no stratum")
        if interview.went_at_most_once is not None:
            realised.append(
                Observation(interview.stratum, interview.weight, interview.went_at_most_once)
            )
        if interview.satisfied is not None:
            satisfied.append(Observation(interview.stratum, interview.weight, interview.satisfied))
    return DistrictRates(
        completes=completes,
        realisation=weighted_proportion(realised, population_sizes, confidence),
        satisfaction=weighted_proportion(satisfied, population_sizes, confidence),
    )
