"""The rates of the reports: proportions with Wilson intervals, survey, hotline and AAPOR rates.

Everything here is pure: small records in, frozen dataclasses out, no I/O and no dependency
beyond the standard library, so that a report is reproducible from its inputs alone. The
design-weighted district estimate lives in ``callback.estimates``; the formulas, their sources
and the choices made are written out in ``docs/rates.md``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeVar

R = TypeVar("R")
K = TypeVar("K", bound=Hashable)

DEFAULT_CONFIDENCE = 0.95


# -- Proportions and the Wilson score interval ------------------------------------------------


@dataclass(frozen=True)
class Proportion:
    """``k`` of ``n`` with its estimate and Wilson score interval at ``confidence``.

    With ``n == 0`` there is nothing to estimate: ``estimate``, ``low`` and ``high`` are None
    (a report prints "—", never 0% and never a division error).
    """

    k: int
    n: int
    estimate: float | None
    low: float | None
    high: float | None
    confidence: float


def z_value(confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The two-sided standard normal quantile for ``confidence`` (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(
    k: float, n: float, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float] | None:
    """The Wilson score interval for ``k`` successes in ``n`` trials, or None when ``n == 0``.

    ``k`` and ``n`` may be fractional: ``callback.estimates`` passes an effective sample size.
    Unlike the Wald interval, Wilson's stays inside [0, 1] and keeps a useful width when
    ``k == 0`` or ``k == n`` (Wilson 1927; Brown, Cai & DasGupta 2001).
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return None
    z = z_value(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At k = 0 (k = n) the bound is 0 (1) exactly; rounding would leave a -1e-17 behind.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def proportion(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Proportion:
    """``k`` of ``n`` as a Proportion with its Wilson interval."""
    interval = wilson_interval(k, n, confidence)
    if interval is None:
        z_value(confidence)  # still reject a bad confidence on an empty group
        return Proportion(k, n, None, None, None, confidence)
    return Proportion(k, n, k / n, interval[0], interval[1], confidence)


def proportion_of(
    answers: Iterable[bool | None], confidence: float = DEFAULT_CONFIDENCE
) -> Proportion:
    """The share of True among the answers that are not None (None is "no usable answer")."""
    k = n = 0
    for answer in answers:
        if answer is None:
            continue
        n += 1
        k += bool(answer)
    return proportion(k, n, confidence)


def group_by(records: Iterable[R], key: Callable[[R], K]) -> dict[K, list[R]]:
    """Records grouped by ``key(record)``, groups in order of first appearance.

    For example ``group_by(interviews, operator.attrgetter("unit"))``.
    """
    groups: dict[K, list[R]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


# -- Service callbacks: 实现率 and 满意率 ------------------------------------------------------


@dataclass(frozen=True)
class Interview:
    """One completed interview (AAPOR I) of a service callback, as the rates see it."""

    unit: str
    #: 最多跑一次: the citizen went to the service centre at most once. None: no usable answer.
    went_at_most_once: bool | None
    #: The answer counts as satisfied under the script's rules. None: no usable answer.
    satisfied: bool | None
    town: str | None = None
    item: str | None = None
    channel: str | None = None
    #: The Thursday that starts the report week (Asia/Shanghai) the interview falls in.
    week: date | None = None
    #: The sampling stratum and design weight (inverse inclusion probability) of the case.
    stratum: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class InterviewRates:
    """实现率 and 满意率 over a group of completed interviews.

    Each rate counts only the interviews with a usable answer to its question, so
    ``realisation.n`` may be below ``completes``; the difference is item non-response.
    """

    completes: int
    realisation: Proportion  # 实现率
    satisfaction: Proportion  # 满意率


def interview_rates(
    interviews: Iterable[Interview], confidence: float = DEFAULT_CONFIDENCE
) -> InterviewRates:
    """实现率 and 满意率 (unweighted) of the completed interviews, with Wilson intervals."""
    completes = realised = realised_n = satisfied = satisfied_n = 0
    for interview in interviews:
        completes += 1
        if interview.went_at_most_once is not None:
            realised_n += 1
            realised += interview.went_at_most_once
        if interview.satisfied is not None:
            satisfied_n += 1
            satisfied += interview.satisfied
    return InterviewRates(
        completes=completes,
        realisation=proportion(realised, realised_n, confidence),
        satisfaction=proportion(satisfied, satisfied_n, confidence),
    )


def interview_rates_by(
    interviews: Iterable[Interview],
    key: Callable[[Interview], K],
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[K, InterviewRates]:
    """Interview rates per group (unit, town, item, channel, week: whatever ``key`` returns)."""
    return {
        group: interview_rates(members, confidence)
        for group, members in group_by(interviews, key).items()
    }


# -- Hotline spot checks: 接通率, 实时答复率 and the time to answer ------------------------------


@dataclass(frozen=True)
class SpotCheck:
    """One spot-check call to a unit's consultation hotline (咨询电话)."""

    unit: str
    #: A person answered (not a recording, not voicemail, not ringing out).
    answered: bool
    #: The question was answered on the spot. None when not answered or not recorded.
    answered_on_the_spot: bool | None = None
    #: Seconds from the first ring to the answer; None when not answered or not measured.
    seconds_to_answer: float | None = None
    week: date | None = None
    #: Answered, and nobody has said yet whether by a person: the dialer could not tell and
    #: the tester it went to has not recorded it. Out of 接通率 until someone does.
    pending: bool = False

    def __post_init__(self) -> None:
        if self.pending and self.answered:
            raise ValueError(f"{self.unit}: a call a person answered is not pending")
        if not self.answered and self.answered_on_the_spot is not None:
            raise ValueError(f"{self.unit}: an unanswered call cannot have a real-time answer")
        if not self.answered and self.seconds_to_answer is not None:
            raise ValueError(f"{self.unit}: an unanswered call cannot have a time to answer")
        seconds = self.seconds_to_answer
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"{self.unit}: seconds to answer must be >= 0, not {seconds!r}")


@dataclass(frozen=True)
class HotlineRates:
    """接通率, 实时答复率 and the median time to answer of a group of spot-check calls."""

    calls: int
    connection: Proportion  # 接通率: answered / (calls - pending)
    real_time_answer: Proportion  # 实时答复率: answered on the spot / answered (with a record)
    #: Median seconds to answer over the answered calls that were timed; None if none were.
    median_seconds_to_answer: float | None
    #: How many answered calls the median is over.
    timed_calls: int
    #: Calls answered by someone nobody has yet identified (in ``calls``, not in 接通率).
    pending: int = 0


def hotline_rates(
    calls: Iterable[SpotCheck], confidence: float = DEFAULT_CONFIDENCE
) -> HotlineRates:
    """接通率, 实时答复率 and median seconds to answer of the spot-check calls.

    A pending call (answered, by whom not yet known) counts in ``calls`` and ``pending`` but
    in neither side of 接通率: counted as unanswered it would lower the rate until the tester
    calls, counted as answered it would raise it for every voicemail.
    """
    total = answered = pending = 0
    on_the_spot: list[bool | None] = []
    seconds: list[float] = []
    for call in calls:
        total += 1
        pending += call.pending
        if not call.answered:
            continue
        answered += 1
        on_the_spot.append(call.answered_on_the_spot)
        if call.seconds_to_answer is not None:
            seconds.append(call.seconds_to_answer)
    return HotlineRates(
        calls=total,
        connection=proportion(answered, total - pending, confidence),
        real_time_answer=proportion_of(on_the_spot, confidence),
        median_seconds_to_answer=statistics.median(seconds) if seconds else None,
        timed_calls=len(seconds),
        pending=pending,
    )


def hotline_rates_by(
    calls: Iterable[SpotCheck],
    key: Callable[[SpotCheck], K],
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[K, HotlineRates]:
    """Hotline rates per group, usually per unit (``operator.attrgetter("unit")``)."""
    return {
        group: hotline_rates(members, confidence) for group, members in group_by(calls, key).items()
    }


# -- AAPOR outcome rates ------------------------------------------------------------------------

#: AAPOR's final disposition categories (Standard Definitions, "Calculating rates"):
#: I complete, P partial, R refusal and break-off, NC non-contact, O other, UH unknown if
#: household/unit, UO unknown other, NE not eligible (used only to estimate e).
CATEGORIES = ("I", "P", "R", "NC", "O", "UH", "UO", "NE")

#: The rates of an OutcomeRates, as attribute names (upper-cased, their AAPOR names).
RATE_NAMES = (
    "rr1", "rr2", "rr3", "rr4", "rr5", "rr6", "coop1", "coop2", "coop3", "coop4",
    "ref1", "ref2", "ref3", "con1", "con2", "con3",
)  # fmt: skip

#: Where the e of an OutcomeRates came from.
ESource = Literal["given", "estimated", "pooled", "unavailable"]


@dataclass(frozen=True)
class OutcomeRates:
    """AAPOR response, cooperation, refusal and contact rates of one set of dispositions.

    A rate whose denominator is zero is None. ``e`` is the share of unknown-eligibility cases
    (UH + UO) taken to be eligible; RR3, RR4, REF2 and CON2 depend on it and are None when it
    is needed but unavailable.
    """

    counts: Mapping[str, float]
    e: float | None
    e_source: ESource
    rr1: float | None
    rr2: float | None
    rr3: float | None
    rr4: float | None
    rr5: float | None
    rr6: float | None
    coop1: float | None
    coop2: float | None
    coop3: float | None
    coop4: float | None
    ref1: float | None
    ref2: float | None
    ref3: float | None
    con1: float | None
    con2: float | None
    con3: float | None

    def rates(self) -> dict[str, float | None]:
        """The rates under their AAPOR names, RR1 to CON3."""
        return {name.upper(): getattr(self, name) for name in RATE_NAMES}


def _checked_counts(counts: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(counts) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown disposition categories {unknown}; expected {CATEGORIES}")
    for category, count in counts.items():
        if not (math.isfinite(count) and count >= 0):
            raise ValueError(f"count of {category} must be a number >= 0, not {count!r}")
    return {category: counts.get(category, 0) for category in CATEGORIES}


def eligibility_rate(counts: Mapping[str, float]) -> float | None:
    """The default estimate of e: the share eligible among cases whose eligibility is known.

    e = (I + P + R + NC + O) / (I + P + R + NC + O + NE), the default of AAPOR's Outcome Rate
    Calculator. None when no case's eligibility was determined. Without NE counts it is 1,
    which is the conservative end (it gives the lowest RR3).
    """
    c = _checked_counts(counts)
    eligible = c["I"] + c["P"] + c["R"] + c["NC"] + c["O"]
    determined = eligible + c["NE"]
    return eligible / determined if determined > 0 else None


def _ratio(numerator: float, denominator: float | None) -> float | None:
    if denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def outcome_rates(counts: Mapping[str, float], e: float | None = None) -> OutcomeRates:
    """AAPOR RR1–RR6, COOP1–COOP4, REF1–REF3 and CON1–CON3 of disposition counts.

    ``counts`` maps categories (``CATEGORIES``) to counts, missing ones being 0; weighted
    counts are fine. ``e`` defaults to ``eligibility_rate(counts)``.
    """
    c = _checked_counts(counts)
    if e is not None:
        return _outcome_rates(c, _checked_e(e), "given")
    e = eligibility_rate(c)
    return _outcome_rates(c, e, "estimated" if e is not None else "unavailable")


def _checked_e(e: float) -> float:
    if not (math.isfinite(e) and 0.0 <= e <= 1.0):
        raise ValueError(f"e must be between 0 and 1, not {e!r}")
    return e


def _outcome_rates(c: dict[str, float], e: float | None, source: ESource) -> OutcomeRates:
    # The formulas of AAPOR Standard Definitions, "Calculating rates from response
    # distributions"; docs/rates.md writes each one out.
    interviews = c["I"] + c["P"]
    unknown = c["UH"] + c["UO"]
    eligible_known = interviews + c["R"] + c["NC"] + c["O"]
    contacted = interviews + c["R"] + c["O"]
    # Without unknown-eligibility cases e multiplies nothing, so an unavailable e is harmless.
    e_unknown = 0.0 if unknown == 0 else (e * unknown if e is not None else None)
    all_cases = eligible_known + unknown
    with_e = None if e_unknown is None else eligible_known + e_unknown

    return OutcomeRates(
        counts=c,
        e=e,
        e_source=source,
        rr1=_ratio(c["I"], all_cases),
        rr2=_ratio(interviews, all_cases),
        rr3=_ratio(c["I"], with_e),
        rr4=_ratio(interviews, with_e),
        rr5=_ratio(c["I"], eligible_known),
        rr6=_ratio(interviews, eligible_known),
        coop1=_ratio(c["I"], contacted),
        coop2=_ratio(interviews, contacted),
        coop3=_ratio(c["I"], interviews + c["R"]),
        coop4=_ratio(interviews, interviews + c["R"]),
        ref1=_ratio(c["R"], all_cases),
        ref2=_ratio(c["R"], with_e),
        ref3=_ratio(c["R"], eligible_known),
        con1=_ratio(contacted, all_cases),
        con2=_ratio(contacted, with_e),
        con3=_ratio(contacted, eligible_known),
    )


def count_outcomes(pairs: Iterable[tuple[K, str]]) -> dict[K, dict[str, int]]:
    """Tally ``(group, category)`` pairs, e.g. (unit, final disposition category) per case."""
    tallies: dict[K, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0))
    for group, category in pairs:
        if category not in CATEGORIES:
            raise ValueError(f"unknown disposition category {category!r}; expected {CATEGORIES}")
        tallies[group][category] += 1
    return dict(tallies)


def outcome_rates_by(
    counts_by_group: Mapping[K, Mapping[str, float]], e: float | None = None
) -> dict[K, OutcomeRates]:
    """Outcome rates per group (campaign, unit) with one e for all of them.

    Without ``e``, e is estimated once from the counts of all groups pooled: a unit with a
    handful of cases would otherwise get an e that is mostly noise, and rates of units would
    not be comparable.
    """
    checked = {group: _checked_counts(counts) for group, counts in counts_by_group.items()}
    source: ESource = "given"
    if e is None:
        pooled: dict[str, float] = dict.fromkeys(CATEGORIES, 0)
        for counts in checked.values():
            for category, count in counts.items():
                pooled[category] += count
        e = eligibility_rate(pooled)
        source = "pooled" if e is not None else "unavailable"
    else:
        e = _checked_e(e)
    return {group: _outcome_rates(counts, e, source) for group, counts in checked.items()}
