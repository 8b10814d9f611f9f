"""Calling rules: when a case may be dialled, which number, and when it is due again.

Everything here is pure: time is always an argument (timezone-aware), nothing is read from the
clock or the database. Windows, slots and working days are evaluated in the rules' time zone
(Asia/Shanghai by default); arithmetic on instants is done in UTC, so a zone with daylight
saving time cannot stretch or shrink a retry delay. The one principle is never a wrong call:
every instant this module hands out is re-checked with ``is_callable`` before it leaves, and a
date the holiday calendar does not know is never callable.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callback import calendar
from callback.errors import CallbackError, ConfigError
from callback.phones import mask


class Outcome(enum.StrEnum):
    """What became of one attempt, as far as scheduling cares (values match EventKind)."""

    ANSWERED = "answered"  # a person answered; no interview yet (not home, call back, break-off)
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    MACHINE = "machine"  # voicemail or an answering machine
    FAILED = "failed"  # not placed or not connected: network or provider trouble
    WRONG_NUMBER = "wrong-number"  # dead, or not the applicant's: never dialled again
    PENDING = "pending"  # placed, result not heard yet: the case must not be dialled twice


class Reason(enum.StrEnum):
    """Why ``decide`` returned what it did; only DUE comes with a time."""

    DUE = "due"
    FINISHED = "finished"
    IN_PROGRESS = "in-progress"  # an attempt is still pending; ask again when it ends
    CASE_LIMIT = "case-limit"
    NUMBERS_EXHAUSTED = "numbers-exhausted"
    DO_NOT_CALL = "do-not-call"
    DEADLINE = "deadline"
    CALENDAR_UNKNOWN = "calendar-unknown"  # not "never": upgrade chinesecalendar and ask again


class AppointmentError(CallbackError):
    """An appointment cannot be booked at that time or for that case."""


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


def _require_aware(value: datetime, what: str) -> None:
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


#: Day names a window's weekdays may be given by in rules files, besides 0-6 (Monday = 0).
DAY_NAMES: Mapping[str, int] = MappingProxyType(
    {
        name: day
        for day, names in enumerate(
            [
                ("mon", "monday", "周一", "星期一"),
                ("tue", "tuesday", "周二", "星期二"),
                ("wed", "wednesday", "周三", "星期三"),
                ("thu", "thursday", "周四", "星期四"),
                ("fri", "friday", "周五", "星期五"),
                ("sat", "saturday", "周六", "星期六"),
                ("sun", "sunday", "周日", "星期日", "星期天"),
            ]
        )
        for name in names
    }
)
_WALL_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WINDOW_KEYS = ("start", "end", "weekdays")


def windows_from_json(value: object, where: str = "rules.windows") -> tuple[Window, ...]:
    """Build calling windows from a rules file's ``windows``, or raise a ConfigError naming
    the field at fault (``rules.windows[1].end``) and what it expects.

    ``value`` is a list of objects ``{"start": "09:00", "end": "12:00", "weekdays": [...]}``;
    ``weekdays`` is optional (every day), its days 0-6 (Monday = 0) or names (mon, monday, 周一).
    A key a window does not have is refused: a misspelt "days" silently ignored would let
    calls go out on every day.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise ConfigError(
            f'{where}: expected a list of windows like [{{"start": "09:00", "end": "12:00"}}],'
            f" not {value!r}"
        )
    if not value:
        raise ConfigError(f"{where}: empty; give at least one window, or leave it out")
    windows = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f'{here}: expected an object like {{"start": "09:00", "end": "12:00"}}, '
                f"not {item!r}"
            )
        unknown = sorted(str(k) for k in item if k not in _WINDOW_KEYS)
        if unknown:
            raise ConfigError(
                f"{here}: unknown key(s) {', '.join(unknown)}: a window has start, end and"
                " (optionally) weekdays"
            )
        start, end = (_wall_time(item, key, f"{here}.{key}") for key in ("start", "end"))
        if not start < end:
            raise ConfigError(
                f"{here}.end: {end:%H:%M} is not after start {start:%H:%M}: a window ends"
                " after it starts, the same day"
            )
        weekdays = _weekdays(item["weekdays"], f"{here}.weekdays") if "weekdays" in item else None
        windows.append(Window(start, end, weekdays if weekdays is not None else ALL_WEEKDAYS))
    return tuple(windows)


def _wall_time(item: Mapping[str, object], key: str, where: str) -> time:
    if key not in item:
        raise ConfigError(f'{where}: missing; give the local time as "HH:MM", e.g. "09:00"')
    value = item[key]
    match = _WALL_TIME.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        hour, minute, second = (int(part or 0) for part in match.groups())
        return time(hour, minute, second)
    except ValueError:
        # TOML reads an unquoted 09:00:00 as a time; rules are stored as JSON strings.
        hint = ' (in TOML, quote it: "09:00")' if isinstance(value, time) else ""
        raise ConfigError(
            f'{where}: expected a local time written "HH:MM" (00:00-23:59), e.g. "09:00",'
            f" not {value!r}{hint}"
        ) from None


def _weekdays(value: object, where: str) -> frozenset[int]:
    expected = "0-6 (Monday = 0) or a day name (mon, monday, 周一)"
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list of days, each {expected}; not {value!r}")
    if not value:
        raise ConfigError(f"{where}: empty; leave it out for every day, or list the days")
    days = set()
    for j, day in enumerate(value):
        if isinstance(day, str) and day.strip().lower() in DAY_NAMES:
            days.add(DAY_NAMES[day.strip().lower()])
        elif isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6:
            days.add(day)
        else:
            raise ConfigError(f"{where}[{j}]: {day!r} is not a day: expected {expected}")
    return frozenset(days)


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
        _require_aware(self.placed_at, "attempt time")


@dataclass(frozen=True)
class Appointment:
    """A definite time the citizen asked to be called at, maybe with one agent and number."""

    at: datetime
    agent: str | None = None
    number: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.at, "appointment time")
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


@dataclass(frozen=True)
class Decision:
    """When a case may next be dialled (``at``), on which number, and why.

    ``at`` is None unless ``reason`` is DUE. ``appointment`` is True when the time comes from
    an appointment, which the queue serves before other due cases (with ``agent`` if set).
    """

    at: datetime | None
    reason: Reason
    number: str | None = None
    agent: str | None = None
    appointment: bool = False


# -- windows and slots ---------------------------------------------------------------------


def is_callable(rules: CallingRules, at: datetime) -> bool:
    """Return whether a call may start at ``at``.

    Callable means inside a window, on a working day and before the deadline; a date the
    holiday calendar does not know is not callable.
    """
    _require_aware(at, "time")
    if rules.deadline is not None and at >= rules.deadline:
        return False
    local = at.astimezone(rules.zone)
    day = local.date()
    try:
        if not calendar.is_working_day(day, rules.closed_dates):
            return False
    except calendar.CalendarUnknownError:
        return False
    t = local.time()
    return any(day.weekday() in w.weekdays and w.start <= t < w.end for w in rules.windows)


def slot_of(rules: CallingRules, at: datetime) -> str | None:
    """Return the name of the slot ``at`` falls in (local time), or None."""
    _require_aware(at, "time")
    t = at.astimezone(rules.zone).time()
    return next((s.name for s in rules.slots if s.contains(t)), None)


def next_callable(rules: CallingRules, after: datetime) -> datetime | None:
    """Return the first callable instant at or after ``after``, in the rules' zone.

    None past the deadline, or when the search reaches a date the calendar does not know.
    """
    return _search(rules, after, None)[0]


def ensure_calendar_covers(rules: CallingRules, start: datetime) -> None:
    """Raise CalendarUnknownError if a day from ``start`` to the deadline is not known.

    Meant for creating a campaign: better to hear now that 2027's holidays are not published
    than to find its cases silently waiting in January. Without a deadline, ``start``'s day
    must be known.
    """
    _require_aware(start, "start")
    first = start.astimezone(rules.zone).date()
    last = rules.deadline.astimezone(rules.zone).date() if rules.deadline else first
    # The calendar knows whole years, so one day per year is enough.
    for year in range(first.year, max(first.year, last.year) + 1):
        calendar.require_known(date(year, 1, 1))


def _search(
    rules: CallingRules, after: datetime, slots: Collection[Slot] | None
) -> tuple[datetime | None, Reason]:
    """Find the first callable instant >= after, inside ``slots`` when given."""
    _require_aware(after, "time")
    zone, deadline = rules.zone, rules.deadline
    start = after.astimezone(UTC)
    if deadline is not None and start >= deadline:
        return None, Reason.DEADLINE
    day = start.astimezone(zone).date()
    last_day = deadline.astimezone(zone).date() if deadline is not None else None
    while last_day is None or day <= last_day:
        if not calendar.is_known(day):
            return None, Reason.CALENDAR_UNKNOWN
        if calendar.is_working_day(day, rules.closed_dates):
            best: datetime | None = None
            spans = [(w.start, w.end) for w in rules.windows if day.weekday() in w.weekdays]
            if slots is not None:  # clip the windows to the slots
                spans = [(max(a, s.start), min(b, s.end)) for a, b in spans for s in slots]
            for lo, hi in spans:
                begin = datetime.combine(day, lo, tzinfo=zone).astimezone(UTC)
                end = datetime.combine(day, hi, tzinfo=zone).astimezone(UTC)
                candidate = max(start, begin)
                # The final is_callable is the safety net: whatever the interval arithmetic
                # says (a DST gap, an odd window), only a verified instant is returned.
                if candidate < end and (best is None or candidate < best):
                    if is_callable(rules, candidate):
                        best = candidate
            if best is not None:
                return best.astimezone(zone), Reason.DUE
        day += timedelta(days=1)
    return None, Reason.DEADLINE


# -- numbers, limits and the next due time ---------------------------------------------------


def which_number(rules: CallingRules, history: CaseHistory) -> str | None:
    """Return the number to dial next, or None when none may be dialled.

    A number is out once it is on the do-not-call list, has come back wrong or dead, or has
    had ``max_attempts_per_number`` attempts. The appointment's number comes first; after a
    busy line or a person who answered, the same number is kept (someone is there); otherwise
    the least-tried usable number is chosen, earlier numbers first, so that every number gets
    its chance before the case limit.
    """
    usable = usable_numbers(rules, history)
    if not usable:
        return None
    appointment = pending_appointment(rules, history)
    if appointment is not None and appointment.number in usable:
        return appointment.number
    last = history.last
    if last is not None and last.outcome in (Outcome.ANSWERED, Outcome.BUSY):
        if last.number in usable:
            return last.number
    tries = Counter(a.number for a in history.attempts)
    return min(usable, key=lambda n: (tries[n], usable.index(n)))


def usable_numbers(rules: CallingRules, history: CaseHistory) -> list[str]:
    """Return the case's numbers that may still be dialled, in order of preference."""
    tries = Counter(a.number for a in history.attempts)
    dead = {a.number for a in history.attempts if a.outcome is Outcome.WRONG_NUMBER}
    return [
        n
        for n in dict.fromkeys(history.numbers)  # drop duplicates, keep order
        if n not in history.do_not_call
        and n not in dead
        and tries[n] < rules.max_attempts_per_number
    ]


def next_due(rules: CallingRules, history: CaseHistory, now: datetime) -> datetime | None:
    """Return when the case may next be dialled, or None if not (see ``decide`` for why)."""
    return decide(rules, history, now).at


def decide(rules: CallingRules, history: CaseHistory, now: datetime) -> Decision:
    """Decide when and on which number a case may next be dialled.

    The result is always callable (in a window, on a working day, before the deadline) and at
    least ``min_gap`` after the last attempt. Without an appointment it also waits the retry
    delay of the last attempt's outcome, counted from when that call was really placed, and
    after an unanswered try it looks for a slot other than the last one (preferring the slots
    least tried) unless no other slot is callable before the deadline. A pending appointment comes
    first: it is honoured at its time, or as soon as callable if that time has passed.
    """
    _require_aware(now, "now")
    if history.finished:
        return Decision(None, Reason.FINISHED)
    if any(a.outcome is Outcome.PENDING for a in history.attempts):
        return Decision(None, Reason.IN_PROGRESS)
    if len(history.attempts) >= rules.max_attempts_per_case:
        return Decision(None, Reason.CASE_LIMIT)
    number = which_number(rules, history)
    if number is None:
        if any(n in history.do_not_call for n in history.numbers):
            return Decision(None, Reason.DO_NOT_CALL)
        return Decision(None, Reason.NUMBERS_EXHAUSTED)

    last = history.last
    appointment = pending_appointment(rules, history)
    if appointment is not None:
        # A pending appointment is at least min_gap after every call (else it counts as kept).
        at, reason = _search(rules, max(now, appointment.at), None)
        agent = appointment.agent
        return Decision(at, reason, number if at else None, agent if at else None, at is not None)

    earliest = now if last is None else max(now, last.placed_at + rules.delay_after(last.outcome))
    at, reason = None, Reason.DEADLINE
    for slots in _slot_preferences(rules, history):
        at, reason = _search(rules, earliest, slots)
        if at is not None:
            break
    return Decision(at, reason, number if at else None)


def pending_appointment(rules: CallingRules, history: CaseHistory) -> Appointment | None:
    """Return the case's appointment unless a call has already kept it.

    A call placed at the appointment's time or later, or less than ``min_gap`` before it,
    keeps it (the call that booked it was at least ``min_gap`` earlier). Without this, an
    appointment the queue forgot to clear would make the case due every ``min_gap``.
    """
    appointment = history.appointment
    if appointment is None:
        return None
    for a in history.attempts:
        if a.placed_at >= appointment.at or a.placed_at > appointment.at - rules.min_gap:
            return None
    return appointment


def _slot_preferences(rules: CallingRules, history: CaseHistory) -> list[Collection[Slot] | None]:
    """Slot sets to search in turn: least-tried other slots, any other slot, then anything."""
    last = history.last
    if last is None or last.outcome not in rules.spread_after:
        return [None]
    last_slot = slot_of(rules, last.placed_at)
    others = [s for s in rules.slots if s.name != last_slot]
    if last_slot is None or not others:
        return [None]
    tried = Counter(
        slot_of(rules, a.placed_at) for a in history.attempts if a.outcome in rules.spread_after
    )
    fewest = min(tried[s.name] for s in others)
    least_tried = [s for s in others if tried[s.name] == fewest]
    return [least_tried, others, None]


# -- appointments ----------------------------------------------------------------------------


def validate_appointment(
    rules: CallingRules,
    appointment: Appointment,
    now: datetime,
    history: CaseHistory | None = None,
) -> None:
    """Refuse an appointment we could not keep, with a message for the agent.

    The time must be in the future, on a working day the calendar knows, inside a calling
    window and before the deadline: we never call outside the window even if the citizen
    asks. With ``history``, the case must also still be open, have attempts left, a number we
    may dial, and the time must respect the minimum gap after the last call.
    """
    _require_aware(now, "now")
    at = appointment.at
    local = at.astimezone(rules.zone)
    when = local.strftime("%Y-%m-%d %H:%M")
    if at < now:
        raise AppointmentError(f"{when} is in the past")
    if rules.deadline is not None and at >= rules.deadline:
        limit = rules.deadline.astimezone(rules.zone).strftime("%Y-%m-%d %H:%M")
        raise AppointmentError(f"{when} is at or after the campaign deadline ({limit})")
    try:
        working = calendar.is_working_day(local.date(), rules.closed_dates)
    except calendar.CalendarUnknownError as exc:
        raise AppointmentError(f"{when} cannot be booked: {exc}") from None
    if not working:
        name = calendar.holiday_name(local.date()) or "a local closure"
        raise AppointmentError(f"{when} is not a working day ({name}){_suggest(rules, at)}")
    if not is_callable(rules, at):
        windows = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in rules.windows)
        raise AppointmentError(
            f"{when} is outside the calling windows ({windows}){_suggest(rules, at)}"
        )
    if history is None:
        return
    if history.finished:
        raise AppointmentError("the case is finished; it will not be called again")
    if len(history.attempts) >= rules.max_attempts_per_case:
        raise AppointmentError(
            f"the case has had all {rules.max_attempts_per_case} attempts it may have"
        )
    usable = usable_numbers(rules, history)
    if not usable:
        raise AppointmentError("none of the case's numbers may be dialled again")
    if appointment.number is not None and appointment.number not in usable:
        raise AppointmentError(
            # Messages never carry a citizen's full number.
            f"number {mask(appointment.number)} may not be dialled for this case"
        )
    last = history.last
    if last is not None and at < last.placed_at + rules.min_gap:
        gap = int(rules.min_gap.total_seconds() // 60)
        raise AppointmentError(f"{when} is less than {gap} minutes after the last call")


def _suggest(rules: CallingRules, at: datetime) -> str:
    nearest = next_callable(rules, at)
    return f"; the nearest callable time is {nearest:%Y-%m-%d %H:%M}" if nearest else ""
