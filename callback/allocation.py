"""Sample sizes per stratum: exact allocations rounded by largest remainders, margin sizes."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from callback.designs import DesignError
from callback.errors import CallbackError
from callback.rates import z_value
from callback.sampling_design import SamplingDesign, StratumKey

K = TypeVar("K", bound=Hashable)


class AllocationError(CallbackError):
    """The frame cannot satisfy the design (e.g. at least k per stratum needs more than n)."""


def _water_level(
    weights: Mapping[K, int], lower: Mapping[K, int], upper: Mapping[K, int], total: int
) -> Fraction:
    """Find λ with sum(clip(λ·w_h, L_h, U_h)) == total, given sum(L) <= total <= sum(U).

    The sum is continuous, piecewise linear and non-decreasing in λ, with kinks only at
    L_h/w_h and U_h/w_h: find the segment by bisection over the kinks, then solve it exactly.
    """

    def level(lam: Fraction) -> Fraction:
        return sum(
            (min(max(lam * w, Fraction(lower[h])), Fraction(upper[h])) for h, w in weights.items()),
            Fraction(0),
        )

    kinks = sorted(
        {Fraction(0)} | {Fraction(b[h], w) for h, w in weights.items() for b in (lower, upper)}
    )
    lo, hi = 0, len(kinks) - 1  # level(kinks[lo]) <= total holds for lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if level(kinks[mid]) <= total:
            lo = mid
        else:
            hi = mid - 1
    start = kinks[lo]
    reached = level(start)
    if reached == total or lo == len(kinks) - 1:
        return start
    end = kinks[lo + 1]
    # Strata that move with λ on (start, end): the slope of the sum there.
    slope = sum(w for h, w in weights.items() if lower[h] <= start * w and upper[h] >= end * w)
    return start + (total - reached) / slope


def _round(quotas: Mapping[K, Fraction], population: Mapping[K, int], total: int) -> dict[K, int]:
    """Largest-remainder (Hamilton) rounding of quotas that sum to ``total``.

    Every stratum gets the floor of its quota; the seats left go to the largest fractional
    parts, ties to the larger stratum, then to the smaller key, so that the result does not
    depend on the order strata are listed in.
    """
    sizes = {h: math.floor(q) for h, q in quotas.items()}
    left = total - sum(sizes.values())
    ranked = sorted(
        (h for h, q in quotas.items() if q != sizes[h]),
        key=lambda h: (-(quotas[h] - sizes[h]), -population[h], h),
    )
    # The fractional parts sum to `left`, each below 1, so there are always enough of them;
    # and a quota with a fractional part lies below its integer upper bound, so +1 stays in.
    for h in ranked[:left]:
        sizes[h] += 1
    return sizes


def allocate(
    population: Mapping[K, int],
    size: int,
    allocation: str = "proportional",
    at_least: int = 0,
) -> dict[K, int]:
    """Split ``size`` over strata of sizes N_h: the n_h sum to ``size`` and never exceed N_h.

    ``proportional``: n_h ∝ N_h. ``equal``: the same n_h everywhere, strata smaller than that
    taken whole and the excess spread over the others. ``at-least``: proportional, but every
    stratum gets at least min(``at_least``, N_h). Real quotas are found exactly (rational
    arithmetic), then rounded by largest remainders. When ``size`` is at least the whole
    population, every case is taken. Keys must be sortable (ties are broken by key).
    """
    if size < 0:
        raise ValueError(f"the sample size cannot be negative: {size}")
    if any(n < 0 for n in population.values()):
        raise ValueError("stratum sizes cannot be negative")
    strata = {h: n for h, n in population.items() if n > 0}
    if size >= sum(strata.values()):
        return {h: population[h] for h in population}
    if allocation == "proportional":
        weights, lower = strata, dict.fromkeys(strata, 0)
    elif allocation == "equal":
        weights, lower = dict.fromkeys(strata, 1), dict.fromkeys(strata, 0)
    elif allocation == "at-least":
        weights, lower = strata, {h: min(at_least, n) for h, n in strata.items()}
        needed = sum(lower.values())
        if needed > size:
            raise AllocationError(
                f"at least {at_least} per stratum needs a sample of {needed:,} over "
                f"{len(strata):,} strata, more than the {size:,} asked for: lower k, raise the "
                "size or use fewer strata"
            )
    else:
        raise DesignError(f"unknown allocation {allocation!r}")
    lam = _water_level(weights, lower, strata, size)
    quotas = {
        h: min(max(lam * w, Fraction(lower[h])), Fraction(strata[h])) for h, w in weights.items()
    }
    sizes = _round(quotas, strata, size)
    return {h: sizes.get(h, 0) for h in population}


def margin_size(population: int, margin: float, confidence: float = 0.95, p: float = 0.5) -> int:
    """Return the sample size that estimates a proportion within ±``margin`` at ``confidence``.

    n0 = z²·p(1−p)/e² for an infinite population, then the finite-population correction
    n = n0 / (1 + (n0 − 1)/N) (Cochran 1977, §4.4), rounded up so the margin is met.
    """
    if population <= 0:
        return 0
    z = z_value(confidence)
    n0 = z * z * p * (1.0 - p) / (margin * margin)
    n = n0 / (1.0 + (n0 - 1.0) / population)
    # The tolerance keeps float noise (277.00000000001) from adding a whole interview.
    return min(population, max(1, math.ceil(n - 1e-9)))


@dataclass(frozen=True)
class Plan:
    """The sample size of every stratum, what was asked for, and what the frame allowed."""

    sizes: dict[StratumKey, int]
    requested: int
    notes: tuple[str, ...] = ()


def plan_sizes(design: SamplingDesign, population: Mapping[StratumKey, int]) -> Plan:
    """Decide n_h for every stratum from the design and the eligible stratum sizes N_h."""
    total = sum(population.values())
    notes: list[str] = []
    if design.margin is not None:
        units: dict[str, dict[StratumKey, int]] = {}
        for key, n in population.items():
            units.setdefault(dict(key)["unit"], {})[key] = n
        sizes: dict[StratumKey, int] = {}
        requested = 0
        for strata in units.values():
            n_unit = margin_size(
                sum(strata.values()), design.margin, design.confidence, design.proportion
            )
            requested += n_unit
            sizes.update(allocate(strata, n_unit, "proportional"))
        notes.append(
            f"sizes planned per unit for ±{design.margin:g} at {design.confidence:.0%} "
            f"confidence (p = {design.proportion:g}), with the finite-population correction"
        )
    else:
        assert design.size is not None
        requested = design.size
        sizes = allocate(population, design.size, design.allocation, design.at_least or 0)
        if total < design.size:
            notes.append(
                f"the eligible frame ({total:,} cases) is smaller than the sample size asked "
                f"for ({design.size:,}): every eligible case is taken"
            )
    whole = sum(1 for key, n in sizes.items() if 0 < n == population[key])
    if whole and total >= requested:
        notes.append(f"{whole} stratum(s) taken whole (n_h = N_h)")
    return Plan(sizes, requested, tuple(notes))
