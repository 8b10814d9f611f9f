"""Calling rules as data: windows, slots, limits and delays, and the case histories they judge.

Everything here is a frozen dataclass, validated when it is built; nothing reads the clock or
the database. Windows, slots and working days are in the rules' local time zone (Asia/Shanghai
by default); instants are always timezone-aware. What follows from the rules is elsewhere: when
and on which number a case is due in callback.decisions, booking an appointment in
callback.appointments, reading windows from a rules file in callback.window_loader.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callback.errors import ConfigError


class Outcome(enum.StrEnum):
    """What became of one attempt, as far as scheduling cares (values match EventKind)."""

    ANSWERED = "answered"  # a person answered; no interview yet (not home, call back, break-off)
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    MACHINE = "machine"  # voicemail or an answering machine
    FAILED = "failed"  # not placed or not connected: network or provider trouble
    WRONG_NUMBER = "wrong-number"  # dead, or not the applicant's: never dialled again
    PENDING = "pending"  # placed, result not heard yet: the case must not be dialled twice


ALL_WEEKDAYS = frozenset(range(7))

#: Defaults of the issue: a busy line is in use, so soon; a machine means out for a while.
DEFAULT_RETRY_DELAYS: Mapping[Outcome, timedelta] = MappingProxyType(
    {
        Outcome.ANSWERED: timedelta(hours=1),
        Outcome.BUSY: timedelta(minutes=20),
        Outcome.NO_ANSWER: timedelta(hours=2),
        Outcome.MACHINE: timedelta(hours=4),
        Outcome.FAILED: timedelta(minutes=30),
        # Only the gap applies: the next try goes to another number, never this one.
        Outcome.WRONG_NUMBER: timedelta(0),
        Outcome.PENDING: timedelta(0),
    }
)

_E164 = re.compile(r"\+[1-9]\d{6,14}")


def require_aware(value: datetime, what: str) -> None:
    """Raise ValueError unless ``value`` is a timezone-aware datetime (``what`` names it)."""
    # A naive time is a programming error, not a user's: guessing its zone is how call windows
    # go wrong, so refuse it loudly.
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, not {value!r}")


def _check_span(start: time, end: time, what: str) -> None:
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ConfigError(f"{what} is in local wall time: give it no time zone")
    if not start < end:
        raise ConfigError(f"{what} must end after it starts ({start:%H:%M}-{end:%H:%M})")


def _check_number(number: str) -> None:
    # Numbers are compared as strings (do-not-call list, wrong numbers), so a number that is
    # not in E.164 could slip past the list: refuse it.
    if not isinstance(number, str) or not _E164.fullmatch(number):
        raise ValueError(f"phone numbers must be in E.164 (+8613812345678), not {number!r}")


@dataclass(frozen=True)
class Window:
    """A daily calling window in local time, [start, end), on the given weekdays (0 = Monday).

    A window applies only on working days. Its weekdays default to all seven because a swapped
    working Saturday or Sunday (调休) is a working day like any other; a window limited to
    Monday-Friday is simply never open on those days.
    """

    start: time
    end: time
    weekdays: frozenset[int] = ALL_WEEKDAYS

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise ConfigError(f"calling window {name}: expected a datetime.time, not {value!r}")
        _check_span(self.start, self.end, "calling window")
        days = self.weekdays
        if isinstance(days, str | bytes) or not isinstance(days, Iterable):
            raise ConfigError(f"calling window weekdays: expected a set of 0-6, not {days!r}")
        object.__setattr__(self, "weekdays", frozenset(days))
        if (
            not self.weekdays
            or any(isinstance(d, bool) or not isinstance(d, int) for d in self.weekdays)
            or not self.weekdays <= ALL_WEEKDAYS
        ):
            raise ConfigError(f"calling window weekdays must be 0-6 (Monday=0): {days}")


@dataclass(frozen=True)
class Slot:
    """A named part of the day across which retries are spread, [start, end) in local time."""

    name: str
    start: time
    end: time

    def __post_init__(self) -> None:
        _check_span(self.start, self.end, f"slot {self.name!r}")

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end


DEFAULT_WINDOWS = (Window(time(9), time(12)), Window(time(14), time(20)))
DEFAULT_SLOTS = (
    Slot("morning", time(9), time(12)),
    Slot("afternoon", time(14), time(17)),
    Slot("evening", time(17), time(20)),
)


@dataclass(frozen=True)
class CallingRules:
    """The calling rules of one campaign.

    ``retry_delays`` may name only some outcomes; the others keep DEFAULT_RETRY_DELAYS.
    ``spread_after`` lists the outcomes after which the next try goes to another slot: a line
    nobody answers in the morning may well be answered in the evening, while a busy line
    means someone is there now.
    """

    windows: tuple[Window, ...] = DEFAULT_WINDOWS
    timezone: str = "Asia/Shanghai"
    deadline: datetime | None = None
    max_attempts_per_case: int = 6
    max_attempts_per_number: int = 3
    retry_delays: Mapping[Outcome, timedelta] = field(
        default_factory=lambda: DEFAULT_RETRY_DELAYS, hash=False
    )
    slots: tuple[Slot, ...] = DEFAULT_SLOTS
    min_gap: timedelta = timedelta(minutes=10)
    spread_after: frozenset[Outcome] = frozenset({Outcome.NO_ANSWER, Outcome.MACHINE})
    closed_dates: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.windows, str | Window) or not isinstance(self.windows, Iterable):
            raise ConfigError(f"windows: expected a sequence of Window, not {self.windows!r}")
        for name, kind in [("windows", tuple), ("slots", tuple), ("closed_dates", frozenset)]:
            object.__setattr__(self, name, kind(getattr(self, name)))
        for i, window in enumerate(self.windows):
            if not isinstance(window, Window):
                raise ConfigError(f"windows[{i}]: expected a Window(start, end), not {window!r}")
        try:
            spread = frozenset(Outcome(o) for o in self.spread_after)
            delays = dict(DEFAULT_RETRY_DELAYS)
            delays.update({Outcome(o): d for o, d in self.retry_delays.items()})
        except ValueError as exc:
            raise ConfigError(f"calling rules: {exc}") from None
        object.__setattr__(self, "spread_after", spread)
        object.__setattr__(self, "retry_delays", MappingProxyType(delays))
        if any(d < timedelta(0) for d in delays.values()):
            raise ConfigError("retry delays cannot be negative")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None
        if not self.windows:
            raise ConfigError("calling rules need at least one calling window")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ConfigError("the campaign deadline must carry a time zone")
        if self.max_attempts_per_case < 1 or self.max_attempts_per_number < 1:
            raise ConfigError("attempt limits must be at least 1")
        if self.min_gap < timedelta(0):
            raise ConfigError("the minimum gap between attempts cannot be negative")
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise ConfigError(f"slot names must be unique: {names}")
        spans = sorted((s.start, s.end) for s in self.slots)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:  # overlapping slots would make slot_of ambiguous
                raise ConfigError("calling slots must not overlap")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def delay_after(self, outcome: Outcome) -> timedelta:
        """Return how long to wait after an attempt with ``outcome`` (never below min_gap)."""
        return max(self.retry_delays[outcome], self.min_gap)


@dataclass(frozen=True)
class Attempt:
    """One past dial: the number (E.164), when it was really placed, and its outcome.

    ``placed_at`` is when the dialer accepted the call, not when the attempt row was written:
    the retry clock starts there. An attempt that was never placed is left out of the history.
    """

    number: str
    placed_at: datetime
    outcome: Outcome

    def __post_init__(self) -> None:
        _check_number(self.number)
        require_aware(self.placed_at, "attempt time")


@dataclass(frozen=True)
class Appointment:
    """A definite time the citizen asked to be called at, maybe with one agent and number."""

    at: datetime
    agent: str | None = None
    number: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "appointment time")
        if self.number is not None:
            _check_number(self.number)


@dataclass(frozen=True)
class CaseHistory:
    """What the rules need to know about one case.

    ``numbers`` are the case's numbers in order of preference; ``do_not_call`` those of them on
    the do-not-call list. ``finished`` is True once the case has a final outcome.
    """

    numbers: tuple[str, ...]
    attempts: tuple[Attempt, ...] = ()
    appointment: Appointment | None = None
    finished: bool = False
    do_not_call: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", tuple(self.numbers))
        object.__setattr__(self, "attempts", tuple(self.attempts))
        object.__setattr__(self, "do_not_call", frozenset(self.do_not_call))
        for number in (*self.numbers, *self.do_not_call):
            _check_number(number)

    @property
    def last(self) -> Attempt | None:
        """Return the attempt placed last, or None."""
        return max(self.attempts, key=lambda a: a.placed_at, default=None)
