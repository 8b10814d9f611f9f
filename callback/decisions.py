"""Calling decisions: whether a time is callable, which number to dial, when a case is due.

Everything here is pure: time is always an argument (timezone-aware), nothing is read from the
clock or the database. Windows, slots and working days are evaluated in the rules' time zone
(Asia/Shanghai by default); arithmetic on instants is done in UTC, so a zone with daylight
saving time cannot stretch or shrink a retry delay. The one principle is never a wrong call:
every instant this module hands out is re-checked with ``is_callable`` before it leaves, and a
date the holiday calendar does not know is never callable.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from callback import calendar
from callback.rules import Appointment, CallingRules, CaseHistory, Outcome, Slot, require_aware


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
    require_aware(at, "time")
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
    require_aware(at, "time")
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
    require_aware(start, "start")
    first = start.astimezone(rules.zone).date()
    last = rules.deadline.astimezone(rules.zone).date() if rules.deadline else first
    # The calendar knows whole years, so one day per year is enough.
    for year in range(first.year, max(first.year, last.year) + 1):
        calendar.require_known(date(year, 1, 1))


def _search(
    rules: CallingRules, after: datetime, slots: Collection[Slot] | None
) -> tuple[datetime | None, Reason]:
    """Find the first callable instant >= after, inside ``slots`` when given."""
    require_aware(after, "time")
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
    require_aware(now, "now")
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
