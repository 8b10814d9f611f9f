"""Stratified, seeded, reproducible samples of cases (pure; spot checks: callback.spotchecks).

Nothing here reads the database or the clock: campaigns.py fetches the frame and writes the
sample, this module decides. docs/sampling.md explains the statistics and cites the sources.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from itertools import chain, filterfalse
from operator import itemgetter
from typing import Any, TypeVar

from callback.designs import (
    DesignError,
    check_date,
    check_int,
    check_keys,
    check_period,
    check_share,
    check_zone,
    invalid,
)
from callback.errors import CallbackError
from callback.rates import z_value

STRATUM_VARIABLES = ("unit", "town", "month", "channel", "item")
ALLOCATIONS = ("proportional", "equal", "at-least")
#: queue_items.stratum is VARCHAR(300); longer labels are shortened with a hash (see label).
MAX_LABEL = 300

K = TypeVar("K", bound=Hashable)
#: A stratum: its variables and their values, e.g. (("unit", "区民政局"), ("month", "2018-07")).
StratumKey = tuple[tuple[str, str], ...]


class AllocationError(CallbackError):
    """The frame cannot satisfy the design (e.g. at least k per stratum needs more than n)."""


# -- designs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusions:
    """Which cases are left out before the draw (each is counted in the sample report)."""

    #: Not called in any campaign within this many days before sampling; 0 turns it off.
    contact_gap_days: int = 30
    #: One citizen (telephone number) at most once per campaign.
    one_per_phone: bool = True

    def __post_init__(self) -> None:
        check_int(self.contact_gap_days, "exclusions.contact_gap_days", 0)
        if not isinstance(self.one_per_phone, bool):
            raise invalid(f"exclusions.one_per_phone must be true or false: {self.one_per_phone!r}")


@dataclass(frozen=True)
class SamplingDesign:
    """How a case campaign draws its sample.

    Either ``size`` (a total n, spread by ``allocation``) or ``margin`` (a margin of error for
    a proportion, which plans each unit's size; ``unit`` must then be a stratum variable).
    """

    period_start: date
    period_end: date
    seed: int
    strata: tuple[str, ...] = ("unit",)
    allocation: str = "proportional"
    size: int | None = None
    #: k of the "at-least" allocation: every stratum gets min(k, N_h) before the rest is spread.
    at_least: int | None = None
    margin: float | None = None
    confidence: float = 0.95
    #: The proportion the margin is planned for; 0.5 gives the largest (safest) sizes.
    proportion: float = 0.5
    exclusions: Exclusions = field(default_factory=Exclusions)
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strata", tuple(self.strata))
        check_period(self.period_start, self.period_end)
        check_int(self.seed, "seed")
        check_zone(self.timezone)
        for name in self.strata:
            if name not in STRATUM_VARIABLES:
                raise invalid(
                    f"unknown stratum variable {name!r}; choose from {', '.join(STRATUM_VARIABLES)}"
                )
        if len(set(self.strata)) != len(self.strata):
            raise invalid(f"a stratum variable is named twice: {', '.join(self.strata)}")
        if self.allocation not in ALLOCATIONS:
            raise invalid(
                f"unknown allocation {self.allocation!r}; choose from {', '.join(ALLOCATIONS)}"
            )
        if (self.size is None) == (self.margin is None):
            raise invalid("give either a sample size or a margin of error, not both or neither")
        if self.size is not None:
            check_int(self.size, "the sample size", 1)
        if self.allocation == "at-least":
            if self.at_least is None:
                raise invalid("allocation 'at-least' needs k, the least sample of each stratum")
            check_int(self.at_least, "at_least", 1)
        elif self.at_least is not None:
            raise invalid(
                f"at_least applies only to allocation 'at-least', not {self.allocation!r}"
            )
        check_share(self.confidence, "confidence")
        check_share(self.proportion, "proportion")
        if self.margin is not None:
            check_share(self.margin, "margin")
            if "unit" not in self.strata:
                raise invalid("a margin of error plans each unit's size: add 'unit' to the strata")
            if self.allocation != "proportional":
                raise invalid(
                    "a margin of error spreads each unit's size over its strata proportionally;"
                    f" allocation {self.allocation!r} does not apply"
                )

    @classmethod
    def summer(cls, year: int, seed: int, **options: Any) -> SamplingDesign:
        """Return a design for cases handled 1 June to 30 September of ``year`` (the default)."""
        return cls(date(year, 6, 1), date(year, 9, 30), seed, **options)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "timezone": self.timezone,
            "strata": list(self.strata),
            "allocation": self.allocation,
            "size": self.size,
            "at_least": self.at_least,
            "margin": self.margin,
            "confidence": self.confidence,
            "proportion": self.proportion,
            "exclusions": {
                "contact_gap_days": self.exclusions.contact_gap_days,
                "one_per_phone": self.exclusions.one_per_phone,
            },
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SamplingDesign:
        """Read a design written by ``to_json`` (or by hand); unknown keys are errors."""
        check_keys(data, _DESIGN_KEYS, "design")
        period = data.get("period")
        check_keys(period if period is not None else {}, ("start", "end"), "period")
        if period is None or "start" not in period or "end" not in period:
            raise invalid('the period is required: {"start": "2018-06-01", "end": "2018-09-30"}')
        if "seed" not in data:
            raise invalid("the seed is required, so that the sample can be drawn again")
        exclusions = data.get("exclusions", {})
        check_keys(exclusions, ("contact_gap_days", "one_per_phone"), "exclusions")
        strata = data.get("strata", ["unit"])
        if not isinstance(strata, list | tuple):
            raise invalid(f"strata must be a list of variables, not {strata!r}")
        options = {k: data[k] for k in _DESIGN_OPTIONS if k in data}
        return cls(
            check_date(period["start"], "period.start"),
            check_date(period["end"], "period.end"),
            data["seed"],
            strata=tuple(strata),
            exclusions=Exclusions(**exclusions),
            **options,
        )


_DESIGN_OPTIONS = (
    "allocation",
    "size",
    "at_least",
    "margin",
    "confidence",
    "proportion",
    "timezone",
)
_DESIGN_KEYS = ("period", "strata", "exclusions", "seed", *_DESIGN_OPTIONS)


# -- allocation --------------------------------------------------------------------------------


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


# -- the draw ----------------------------------------------------------------------------------


def label(key: StratumKey) -> str:
    """Return the readable name of a stratum, e.g. ``unit=区民政局|month=2018-07``.

    An unstratified design has the one stratum ``all``. A label longer than the queue's column
    is cut and ends with a hash of the whole, so that it stays unique.
    """
    text = "|".join(f"{name}={value}" for name, value in key) or "all"
    if len(text) <= MAX_LABEL:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
    return f"{text[: MAX_LABEL - 12]}…#{digest}"


def stratum_rng(seed: int, key: StratumKey) -> random.Random:
    """The generator of one stratum's draw: seeded from the campaign seed and the stratum.

    A string seed goes through SHA-512 (random.seed, version 2), so it is the same in every
    process and on every platform, unaffected by PYTHONHASHSEED.
    """
    return random.Random(f"{seed}/{label(key)}")


def choose_representatives(
    groups: Iterable[Sequence[int]], seed: int
) -> tuple[dict[int, int], set[int]]:
    """Keep one case of each group of cases that share a telephone number, chosen at random.

    Returns the chosen cases with their group size k (each was chosen with probability 1/k)
    and the set of cases left out. Groups are put in a canonical order (members sorted, groups
    by their smallest member) before one generator walks them, so the choice depends on the
    seed and on the groups only, not on the order they came in.
    """
    canonical = [sorted(group) for group in groups if len(group) > 1]
    canonical.sort(key=itemgetter(0))  # groups are disjoint: their smallest members differ
    # floor(U·k) with U from random(), the one method whose stream Python promises to keep
    # across versions; its bias is below 2**-53 per member.
    uniform = random.Random(f"{seed}/one-per-phone").random
    chosen = {members[int(uniform() * len(members))]: len(members) for members in canonical}
    dropped = set(chain.from_iterable(canonical)).difference(chosen)
    return chosen, dropped


def draw(
    population: Mapping[StratumKey, Iterable[int]], sizes: Mapping[StratumKey, int], seed: int
) -> dict[StratumKey, list[int]]:
    """Draw n_h cases from each stratum by simple random sampling without replacement.

    Each stratum's case ids are sorted, then ``random.sample`` picks n_h of them with the
    stratum's own generator: the same ids, size and seed always give the same cases, however
    the frame was ordered, and one stratum's draw never depends on another's.
    """
    drawn: dict[StratumKey, list[int]] = {}
    for key, ids in population.items():
        ordered = sorted(ids)
        n = sizes.get(key, 0)
        if n >= len(ordered):
            drawn[key] = ordered
        else:
            drawn[key] = sorted(stratum_rng(seed, key).sample(ordered, n))
    return drawn


@dataclass(frozen=True)
class SampledCase:
    """A drawn case with its stratum, inclusion probability π and design weight 1/π."""

    case_id: int
    stratum: str
    probability: float
    weight: float
    #: Cases that shared its telephone number (1 when none did).
    phone_group: int = 1


@dataclass(frozen=True)
class StratumSample:
    key: StratumKey
    label: str
    population: int  # N_h: eligible cases after the one-citizen rule, drawn from
    size: int  # n_h
    #: Eligible cases before the one-citizen rule (some are represented from other strata).
    cases: int


@dataclass(frozen=True)
class Sample:
    cases: tuple[SampledCase, ...]
    strata: tuple[StratumSample, ...]
    #: Eligible cases left out because another case with their number represents them.
    duplicates: int
    requested: int
    notes: tuple[str, ...]

    @property
    def eligible(self) -> int:
        return sum(s.population for s in self.strata)


def select_sample(
    design: SamplingDesign,
    strata: Mapping[StratumKey, Sequence[int]],
    shared_phones: Iterable[Sequence[int]] = (),
) -> Sample:
    """Apply the one-citizen rule, plan the sizes and draw: the whole sample of a campaign.

    ``strata`` holds the eligible case ids of each stratum; ``shared_phones`` the groups of
    those cases that share their representative number. π = (1/k)·(n_h/N_h): the first
    phase keeps one of k cases per number, the second draws n_h of the N_h kept (see
    docs/sampling.md for why this product is the right weight).
    """
    chosen: dict[int, int] = {}
    dropped: set[int] = set()
    if design.exclusions.one_per_phone:
        chosen, dropped = choose_representatives(shared_phones, design.seed)
    kept = {key: list(filterfalse(dropped.__contains__, ids)) for key, ids in strata.items()}
    population = {key: len(ids) for key, ids in kept.items()}
    plan = plan_sizes(design, population)
    drawn = draw(kept, plan.sizes, design.seed)
    cases: list[SampledCase] = []
    summary: list[StratumSample] = []
    for key in sorted(population):
        name, big_n, ids = label(key), population[key], drawn[key]
        summary.append(StratumSample(key, name, big_n, len(ids), len(strata[key])))
        for case_id in ids:
            k = chosen.get(case_id, 1)
            # One correctly rounded division each: a census stratum gets exactly 1 and 1.
            cases.append(
                SampledCase(case_id, name, len(ids) / (big_n * k), big_n * k / len(ids), k)
            )
    return Sample(tuple(cases), tuple(summary), len(dropped), plan.requested, plan.notes)


# -- screening the frame -----------------------------------------------------------------------


_DNC, _RECENT = -1, -2


@dataclass
class Screened:
    """The frame after the case-level exclusions, before the one-citizen rule."""

    #: Eligible case ids by stratum, in no particular order.
    strata: dict[Any, list[int]] = field(default_factory=dict)
    #: Groups of two or more eligible cases with the same representative number.
    shared_phones: list[list[int]] = field(default_factory=list)
    frame: int = 0
    no_valid_phone: int = 0
    do_not_call: int = 0
    recently_called: int = 0


def screen(
    rows: Iterable[tuple[int, Any, str | None]],
    do_not_call: Collection[str],
    recently_called: Collection[str],
    one_per_phone: bool = True,
) -> Screened:
    """Apply the case-level exclusions to frame rows ``(case id, stratum, number)``.

    A case has one row per valid number, or one row with None when it has none. It is
    excluded, under the first reason that applies: no valid number; every valid number on the
    do-not-call list; any of its valid numbers called within the contact gap (the cap protects
    the person, whichever number reached them). Its representative number, used to find cases
    of one citizen, is the smallest number it may still be called on. Rows may come in any
    order; this loop runs once per row of a million-case frame, hence its plain style.
    """
    result = Screened()
    strata = result.strata
    rows = rows if isinstance(rows, list) else list(rows)
    # Cases with several numbers are rare; find them first (set.add returns None) so that the
    # common one-row case is decided as soon as its row is read.
    seen: set[int] = set()
    several = {cid for cid, _, _ in rows if cid in seen or seen.add(cid)}  # type: ignore[func-returns-value]
    del seen
    # One dict answers every question about a number in one lookup: the barred numbers map to
    # a negative reason, every other number to the first eligible case seen with it. Case ids
    # are positive, so the two never meet.
    owner: dict[str, int] = dict.fromkeys(recently_called, _RECENT)
    owner.update(dict.fromkeys(do_not_call, _DNC))
    lookup = owner.setdefault if one_per_phone else owner.get
    shared: dict[str, list[int]] = {}
    numbers_of: dict[int, tuple[Any, list[str]]] = {}
    no_phone = dnc = recent = extra = 0
    for cid, stratum, number in rows:
        if cid in several:
            extra += 1
            entry = numbers_of.setdefault(cid, (stratum, []))
            if number is not None:
                entry[1].append(number)
            continue
        if number is None:
            no_phone += 1
            continue
        first = lookup(number, cid)
        if first < 0:
            if first == _DNC:
                dnc += 1
            else:
                recent += 1
            continue
        group = strata.get(stratum)
        if group is None:
            group = strata[stratum] = []
        group.append(cid)
        if first != cid:
            shared.setdefault(number, [first]).append(cid)
    for cid, (stratum, numbers) in numbers_of.items():
        usable = [n for n in numbers if owner.get(n) != _DNC]
        if not numbers:
            no_phone += 1
        elif not usable:
            dnc += 1
        elif any(n in recently_called for n in numbers):
            recent += 1
        else:
            strata.setdefault(stratum, []).append(cid)
            number = min(usable)
            first = lookup(number, cid)
            if first != cid:
                shared.setdefault(number, [first]).append(cid)
    result.frame = len(rows) - extra + len(several)
    result.no_valid_phone, result.do_not_call, result.recently_called = no_phone, dnc, recent
    result.shared_phones = list(shared.values())
    return result
