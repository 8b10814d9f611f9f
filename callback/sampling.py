"""Stratified, seeded, reproducible samples of cases and hotline spot-check plans (pure).

Nothing here reads the database or the clock: campaigns.py fetches the frame and writes the
sample, this module decides. docs/sampling.md explains the statistics and cites the sources.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from itertools import chain, filterfalse
from operator import itemgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callback import calendar
from callback.errors import CallbackError
from callback.rates import z_value
from callback.rules import CallingRules, Window, is_callable

STRATUM_VARIABLES = ("unit", "town", "month", "channel", "item")
ALLOCATIONS = ("proportional", "equal", "at-least")
#: queue_items.stratum is VARCHAR(300); longer labels are shortened with a hash (see label).
MAX_LABEL = 300

K = TypeVar("K", bound=Hashable)
#: A stratum: its variables and their values, e.g. (("unit", "区民政局"), ("month", "2018-07")).
StratumKey = tuple[tuple[str, str], ...]


class DesignError(CallbackError):
    """A sampling or spot-check design is malformed."""


class AllocationError(CallbackError):
    """The frame cannot satisfy the design (e.g. at least k per stratum needs more than n)."""


# -- designs -----------------------------------------------------------------------------------


def _fail(what: str) -> DesignError:
    return DesignError(f"sampling design: {what}")


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"unknown time zone {name!r}") from None


def _int(value: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{what} must be a whole number, not {value!r}")
    if minimum is not None and value < minimum:
        raise _fail(f"{what} must be at least {minimum}, not {value}")
    return value


def _share(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise _fail(f"{what} must be a number strictly between 0 and 1, not {value!r}")
    return float(value)


def _date(value: Any, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _fail(f"{what} must be a date like 2018-06-01, not {value!r}") from None


def _period(start: date, end: date) -> None:
    if start > end:
        raise _fail(f"the period ends ({end}) before it starts ({start})")


def _known_keys(data: Mapping[str, Any], allowed: Collection[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise _fail(f"{what} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:  # a misspelt key would otherwise be silently ignored
        raise _fail(f"unknown {what} key(s) {', '.join(unknown)}; known: {', '.join(allowed)}")


@dataclass(frozen=True)
class Exclusions:
    """Which cases are left out before the draw (each is counted in the sample report)."""

    #: Not called in any campaign within this many days before sampling; 0 turns it off.
    contact_gap_days: int = 30
    #: One citizen (telephone number) at most once per campaign.
    one_per_phone: bool = True

    def __post_init__(self) -> None:
        _int(self.contact_gap_days, "exclusions.contact_gap_days", 0)
        if not isinstance(self.one_per_phone, bool):
            raise _fail(f"exclusions.one_per_phone must be true or false: {self.one_per_phone!r}")


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
        _period(self.period_start, self.period_end)
        _int(self.seed, "seed")
        _zone(self.timezone)
        for name in self.strata:
            if name not in STRATUM_VARIABLES:
                raise _fail(
                    f"unknown stratum variable {name!r}; choose from {', '.join(STRATUM_VARIABLES)}"
                )
        if len(set(self.strata)) != len(self.strata):
            raise _fail(f"a stratum variable is named twice: {', '.join(self.strata)}")
        if self.allocation not in ALLOCATIONS:
            raise _fail(
                f"unknown allocation {self.allocation!r}; choose from {', '.join(ALLOCATIONS)}"
            )
        if (self.size is None) == (self.margin is None):
            raise _fail("give either a sample size or a margin of error, not both or neither")
        if self.size is not None:
            _int(self.size, "the sample size", 1)
        if self.allocation == "at-least":
            if self.at_least is None:
                raise _fail("allocation 'at-least' needs k, the least sample of each stratum")
            _int(self.at_least, "at_least", 1)
        elif self.at_least is not None:
            raise _fail(f"at_least applies only to allocation 'at-least', not {self.allocation!r}")
        _share(self.confidence, "confidence")
        _share(self.proportion, "proportion")
        if self.margin is not None:
            _share(self.margin, "margin")
            if "unit" not in self.strata:
                raise _fail("a margin of error plans each unit's size: add 'unit' to the strata")
            if self.allocation != "proportional":
                raise _fail(
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
        _known_keys(data, _DESIGN_KEYS, "design")
        period = data.get("period")
        _known_keys(period if period is not None else {}, ("start", "end"), "period")
        if period is None or "start" not in period or "end" not in period:
            raise _fail('the period is required: {"start": "2018-06-01", "end": "2018-09-30"}')
        if "seed" not in data:
            raise _fail("the seed is required, so that the sample can be drawn again")
        exclusions = data.get("exclusions", {})
        _known_keys(exclusions, ("contact_gap_days", "one_per_phone"), "exclusions")
        strata = data.get("strata", ["unit"])
        if not isinstance(strata, list | tuple):
            raise _fail(f"strata must be a list of variables, not {strata!r}")
        options = {k: data[k] for k in _DESIGN_OPTIONS if k in data}
        return cls(
            _date(period["start"], "period.start"),
            _date(period["end"], "period.end"),
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


# -- hotline spot checks -----------------------------------------------------------------------

DEFAULT_OFFICE_HOURS = (Window(time(9), time(11, 30)), Window(time(14), time(17)))
#: The report week (周) runs Thursday to Wednesday; datetime.weekday() of Thursday.
WEEK_STARTS_ON = 3


@dataclass(frozen=True)
class HotlineDesign:
    """How a hotline campaign plans its spot checks: k calls per hotline per report week.

    Calls fall at random minutes inside office hours on working days (the holiday calendar's,
    so a swapped working Saturday counts and a holiday does not), never on ``closed_dates``.
    """

    period_start: date
    period_end: date
    seed: int
    calls_per_week: int = 2
    office_hours: tuple[Window, ...] = DEFAULT_OFFICE_HOURS
    closed_dates: frozenset[date] = frozenset()
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        object.__setattr__(self, "office_hours", tuple(self.office_hours))
        object.__setattr__(self, "closed_dates", frozenset(self.closed_dates))
        _period(self.period_start, self.period_end)
        _int(self.seed, "seed")
        _int(self.calls_per_week, "calls_per_week", 1)
        _zone(self.timezone)
        if not self.office_hours:
            raise _fail("spot checks need at least one span of office hours")

    @property
    def rules(self) -> CallingRules:
        """Office hours as calling rules, so that callback.rules can check every planned call."""
        return CallingRules(
            windows=self.office_hours, timezone=self.timezone, closed_dates=self.closed_dates
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {"start": self.period_start.isoformat(), "end": self.period_end.isoformat()},
            "timezone": self.timezone,
            "calls_per_week": self.calls_per_week,
            "office_hours": [[f"{w.start:%H:%M}", f"{w.end:%H:%M}"] for w in self.office_hours],
            "closed_dates": sorted(d.isoformat() for d in self.closed_dates),
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HotlineDesign:
        keys = ("period", "timezone", "calls_per_week", "office_hours", "closed_dates", "seed")
        _known_keys(data, keys, "design")
        period = data.get("period") or {}
        _known_keys(period, ("start", "end"), "period")
        if "start" not in period or "end" not in period or "seed" not in data:
            raise _fail("a spot-check design needs a period (start, end) and a seed")
        options: dict[str, Any] = {}
        if "office_hours" in data:
            try:
                options["office_hours"] = tuple(
                    Window(time.fromisoformat(a), time.fromisoformat(b))
                    for a, b in data["office_hours"]
                )
            except (TypeError, ValueError, CallbackError) as exc:
                raise _fail(f'office_hours must be like [["09:00", "11:30"]]: {exc}') from None
        if "closed_dates" in data:
            options["closed_dates"] = frozenset(
                _date(d, "closed_dates") for d in data["closed_dates"]
            )
        for key in ("timezone", "calls_per_week"):
            if key in data:
                options[key] = data[key]
        return cls(
            _date(period["start"], "period.start"),
            _date(period["end"], "period.end"),
            data["seed"],
            **options,
        )


@dataclass(frozen=True)
class PlannedCheck:
    """One spot-check call: which hotline, in which report week, at what instant (UTC)."""

    hotline_id: int
    week: date  # the Thursday the report week starts on
    at: datetime


def report_weeks(start: date, end: date) -> list[date]:
    """Return the Thursdays starting the report weeks that overlap [start, end]."""
    first = start - timedelta(days=(start.weekday() - WEEK_STARTS_ON) % 7)
    return [first + timedelta(weeks=i) for i in range((end - first).days // 7 + 1)]


def _office_spans(
    design: HotlineDesign, first: date, last: date, not_before: datetime | None
) -> list[tuple[datetime, int]]:
    """The callable office-hour spans of the days first..last: (UTC start, whole minutes)."""
    zone = ZoneInfo(design.timezone)
    spans: list[tuple[datetime, int]] = []
    day = first
    while day <= last:
        if calendar.is_working_day(day, design.closed_dates):
            for window in design.office_hours:
                if day.weekday() not in window.weekdays:
                    continue
                begin = datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)
                end = datetime.combine(day, window.end, tzinfo=zone).astimezone(UTC)
                if not_before is not None and begin < not_before:
                    # Whole minutes only: a call is planned on the minute, never before now.
                    begin = max(begin, _ceil_minute(not_before.astimezone(UTC)))
                minutes = int((end - begin).total_seconds() // 60)
                if minutes > 0:
                    spans.append((begin, minutes))
        day += timedelta(days=1)
    return spans


def _ceil_minute(at: datetime) -> datetime:
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(minutes=1)


def plan_spot_checks(
    design: HotlineDesign, hotlines: Iterable[int], not_before: datetime | None = None
) -> list[PlannedCheck]:
    """Plan ``calls_per_week`` checks of each hotline in every report week of the period.

    Each week's office time (working days only, inside the period, not before ``not_before``)
    is cut into whole minutes, and k distinct minutes are drawn uniformly with a generator
    seeded from (seed, hotline, week): the same design gives the same plan, and adding a
    hotline changes no other hotline's plan. A week with fewer office minutes than k gets
    one call per minute it has. Raises calendar.CalendarUnknownError for a year whose
    holidays are not published, rather than guess.
    """
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be a timezone-aware datetime")
    rules = design.rules
    weeks = []
    for week in report_weeks(design.period_start, design.period_end):
        first = max(week, design.period_start)
        last = min(week + timedelta(days=6), design.period_end)
        spans = _office_spans(design, first, last, not_before)
        weeks.append((week, spans, sum(minutes for _, minutes in spans)))
    plan: list[PlannedCheck] = []
    for hotline in sorted(set(hotlines)):
        for week, spans, total in weeks:
            rng = random.Random(f"{design.seed}/hotline={hotline}/week={week.isoformat()}")
            for offset in sorted(rng.sample(range(total), min(design.calls_per_week, total))):
                for begin, minutes in spans:
                    if offset < minutes:
                        at = begin + timedelta(minutes=offset)
                        break
                    offset -= minutes
                # The rules module is the judge of "callable"; a plan it rejects is a bug here.
                assert is_callable(rules, at), at
                plan.append(PlannedCheck(hotline, week, at))
    return plan
