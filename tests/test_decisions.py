"""Calling decisions: callable times, slots, which number to dial and when a case is due."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_rules import RULES, SH, A, B, C, att, sh

from callback import calendar
from callback.decisions import (
    Decision,
    Reason,
    decide,
    ensure_calendar_covers,
    is_callable,
    next_callable,
    next_due,
    pending_appointment,
    slot_of,
    usable_numbers,
    which_number,
)
from callback.rules import Appointment, Attempt, CallingRules, CaseHistory, Outcome, Window

NO_ANSWER, ANSWERED = Outcome.NO_ANSWER, Outcome.ANSWERED


# -- an oracle independent of the code under test ------------------------------------------
# The State Council's notices for 2025 and 2026, typed by hand (see tests/test_calendar.py).
_HOLIDAY_SPANS = [
    ("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
    ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08"),
    ("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
]  # fmt: skip
HOLIDAYS = {
    date.fromisoformat(first) + timedelta(days=i)
    for first, last in _HOLIDAY_SPANS
    for i in range((date.fromisoformat(last) - date.fromisoformat(first)).days + 1)
}
SWAPPED = {
    date.fromisoformat(d)
    for d in ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
              "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
}  # fmt: skip


def oracle_callable(rules: CallingRules, at: datetime) -> bool:
    """Callable by the published schedule and the rules' windows, computed from scratch."""
    if rules.deadline is not None and at >= rules.deadline:
        return False
    local = at.astimezone(ZoneInfo(rules.timezone))
    day = local.date()
    assert day.year in (2025, 2026), f"the oracle knows 2025 and 2026 only, not {day}"
    working = day not in HOLIDAYS and (day in SWAPPED or day.weekday() < 5)
    if not working or day in rules.closed_dates:
        return False
    t = local.time()
    return any(w.start <= t < w.end and day.weekday() in w.weekdays for w in rules.windows)


# -- is_callable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (sh(2025, 10, 9, 10), True),  # Thursday after National Day
        (sh(2025, 10, 9, 8, 59, 59), False),
        (sh(2025, 10, 9, 9), True),
        (sh(2025, 10, 9, 11, 59, 59), True),
        (sh(2025, 10, 9, 12), False),  # windows are [start, end)
        (sh(2025, 10, 9, 13, 30), False),  # lunch
        (sh(2025, 10, 9, 19, 59), True),
        (sh(2025, 10, 9, 20), False),
        (sh(2025, 10, 3, 10), False),  # National Day
        (sh(2025, 10, 8, 15), False),  # last day of the 2025 break, a Wednesday
        (sh(2025, 9, 28, 10), True),  # swapped working Sunday
        (sh(2025, 10, 11, 15), True),  # swapped working Saturday
        (sh(2025, 10, 18, 10), False),  # ordinary Saturday
        (sh(2026, 2, 20, 10), False),  # Spring Festival 2026, a Friday
    ],
)
def test_is_callable(at: datetime, expected: bool) -> None:
    assert is_callable(RULES, at) is expected


def test_is_callable_converts_to_the_rules_zone() -> None:
    assert is_callable(RULES, datetime(2025, 10, 9, 2, tzinfo=UTC))  # 10:00 in Shanghai
    assert not is_callable(RULES, datetime(2025, 10, 9, 5, tzinfo=UTC))  # 13:00 in Shanghai


def test_time_zone_is_configurable() -> None:
    urumqi = CallingRules(timezone="Asia/Urumqi")  # UTC+6: 10:00 there is 12:00 in Shanghai
    at = datetime(2025, 10, 9, 10, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert is_callable(urumqi, at)
    assert not is_callable(RULES, at)


def test_nothing_is_callable_at_or_after_the_deadline() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 9, 15))
    assert is_callable(rules, sh(2025, 10, 9, 14, 59))
    assert not is_callable(rules, sh(2025, 10, 9, 15))
    assert not is_callable(rules, sh(2025, 10, 10, 10))


def test_unknown_year_is_never_callable() -> None:
    year = calendar.covered_years()[-1] + 1
    assert not is_callable(RULES, sh(year, 3, 2, 10))


def test_local_closure_is_not_callable() -> None:
    rules = CallingRules(closed_dates=frozenset({date(2025, 10, 9)}))
    assert not is_callable(rules, sh(2025, 10, 9, 10))


def test_weekday_limited_window_is_shut_on_a_swapped_sunday() -> None:
    rules = CallingRules(windows=(Window(time(9), time(12), frozenset(range(5))),))
    assert not is_callable(rules, sh(2025, 9, 28, 10))
    assert is_callable(rules, sh(2025, 9, 29, 10))


# -- next_callable and slots ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (sh(2025, 9, 30, 19, 30), sh(2025, 9, 30, 19, 30)),  # already callable
        (sh(2025, 9, 30, 12, 30), sh(2025, 9, 30, 14)),  # after lunch
        (sh(2025, 9, 30, 20), sh(2025, 10, 9, 9)),  # over National Day 2025
        (sh(2025, 9, 26, 20), sh(2025, 9, 28, 9)),  # Friday evening to the swapped Sunday
        (sh(2026, 2, 14, 20), sh(2026, 2, 24, 9)),  # over Spring Festival 2026
        (sh(2025, 10, 9, 6), sh(2025, 10, 9, 9)),
    ],
)
def test_next_callable(after: datetime, expected: datetime) -> None:
    assert next_callable(RULES, after) == expected


def test_next_callable_is_in_the_rules_zone() -> None:
    result = next_callable(RULES, datetime(2025, 10, 9, 0, tzinfo=UTC))
    assert result is not None and result.tzinfo == SH and result == sh(2025, 10, 9, 9)


def test_next_callable_is_none_when_the_deadline_falls_in_a_holiday() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 5, 0))
    assert next_callable(rules, sh(2025, 9, 30, 20)) is None


def test_next_callable_is_none_when_the_deadline_is_the_next_window_start() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 9, 9))
    assert next_callable(rules, sh(2025, 9, 30, 20)) is None


def test_next_callable_is_none_when_the_calendar_runs_out() -> None:
    last = calendar.covered_years()[-1]
    assert next_callable(RULES, sh(last, 12, 31, 20)) is None


@pytest.mark.parametrize(
    ("at", "slot"),
    [
        (sh(2025, 10, 9, 9), "morning"),
        (sh(2025, 10, 9, 11, 59), "morning"),
        (sh(2025, 10, 9, 12), None),
        (sh(2025, 10, 9, 14), "afternoon"),
        (sh(2025, 10, 9, 16, 59), "afternoon"),
        (sh(2025, 10, 9, 17), "evening"),
        (sh(2025, 10, 9, 20), None),
    ],
)
def test_slot_of(at: datetime, slot: str | None) -> None:
    assert slot_of(RULES, at) == slot


def test_ensure_calendar_covers_refuses_a_deadline_in_an_unknown_year() -> None:
    year = calendar.covered_years()[-1] + 1
    rules = CallingRules(deadline=sh(year, 1, 15, 18))
    with pytest.raises(calendar.CalendarUnknownError, match=str(year)):
        ensure_calendar_covers(rules, sh(year - 1, 12, 1, 9))


def test_ensure_calendar_covers_accepts_a_known_campaign() -> None:
    ensure_calendar_covers(CallingRules(deadline=sh(2026, 12, 31, 18)), sh(2026, 11, 23, 9))


# -- which number ----------------------------------------------------------------------------


def test_first_number_first() -> None:
    assert which_number(RULES, CaseHistory((A, B))) == A


def test_unanswered_number_hands_over_to_the_least_tried() -> None:
    h = CaseHistory((A, B), (att(A, sh(2025, 10, 9, 10), Outcome.NO_ANSWER),))
    assert which_number(RULES, h) == B


def test_busy_number_is_kept() -> None:
    h = CaseHistory((A, B), (att(A, sh(2025, 10, 9, 10), Outcome.BUSY),))
    assert which_number(RULES, h) == A


def test_number_where_someone_answered_is_kept() -> None:
    h = CaseHistory(
        (A, B),
        (att(A, sh(2025, 10, 9, 10), Outcome.NO_ANSWER), att(B, sh(2025, 10, 9, 15), ANSWERED)),
    )
    assert which_number(RULES, h) == B


def test_number_at_its_limit_is_not_dialled() -> None:
    h = CaseHistory((A, B), tuple(att(A, sh(2025, 10, 9, 9 + i), Outcome.BUSY) for i in range(3)))
    assert which_number(RULES, h) == B


def test_wrong_number_is_never_dialled_again() -> None:
    h = CaseHistory((A, B), (att(A, sh(2025, 10, 9, 10), Outcome.WRONG_NUMBER),))
    assert usable_numbers(RULES, h) == [B]


def test_do_not_call_number_is_skipped() -> None:
    assert which_number(RULES, CaseHistory((A, B), do_not_call=frozenset({A}))) == B


def test_no_number_left() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.WRONG_NUMBER),))
    assert which_number(RULES, h) is None


def test_appointment_number_comes_first() -> None:
    h = CaseHistory((A, B), appointment=Appointment(sh(2025, 10, 9, 15), number=B))
    assert which_number(RULES, h) == B


# -- decide / next_due -----------------------------------------------------------------------


def due(history: CaseHistory, now: datetime, rules: CallingRules = RULES) -> datetime | None:
    return next_due(rules, history, now)


def test_fresh_case_is_due_now_inside_a_window() -> None:
    d = decide(RULES, CaseHistory((A,)), sh(2025, 10, 9, 10, 5))
    assert d == Decision(sh(2025, 10, 9, 10, 5), Reason.DUE, A)


def test_fresh_case_at_night_is_due_next_morning() -> None:
    assert due(CaseHistory((A,)), sh(2025, 10, 9, 22)) == sh(2025, 10, 10, 9)


def test_busy_is_retried_after_20_minutes_from_when_the_call_was_placed() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.BUSY),))
    assert due(h, sh(2025, 10, 9, 10, 5)) == sh(2025, 10, 9, 10, 20)


def test_failed_is_retried_after_30_minutes() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.FAILED),))
    assert due(h, sh(2025, 10, 9, 10, 1)) == sh(2025, 10, 9, 10, 30)


def test_minimum_gap_applies_when_the_retry_delay_is_shorter() -> None:
    rules = CallingRules(retry_delays={Outcome.BUSY: timedelta(0)})
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.BUSY),))
    assert due(h, sh(2025, 10, 9, 10, 1), rules) == sh(2025, 10, 9, 10, 10)


def test_morning_no_answer_is_next_tried_in_the_afternoon() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 9, 30), Outcome.NO_ANSWER),))
    # 2 hours later is still morning (11:30): the morning is skipped.
    assert due(h, sh(2025, 10, 9, 9, 31)) == sh(2025, 10, 9, 14)


def test_afternoon_machine_is_next_tried_in_the_evening() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 14, 30), Outcome.MACHINE),))
    assert due(h, sh(2025, 10, 9, 14, 31)) == sh(2025, 10, 9, 18, 30)


def test_the_least_tried_slot_is_preferred() -> None:
    h = CaseHistory(
        (A, B),
        (att(A, sh(2025, 10, 9, 10), NO_ANSWER), att(B, sh(2025, 10, 9, 14), NO_ANSWER)),
    )
    # Not the next morning (a slot already tried), but the evening.
    assert due(h, sh(2025, 10, 9, 14, 1)) == sh(2025, 10, 9, 17)


def test_same_slot_when_no_other_is_possible_before_the_deadline() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 9, 16, 30))
    h = CaseHistory(
        (A, B),
        (att(A, sh(2025, 10, 9, 9), NO_ANSWER), att(B, sh(2025, 10, 9, 14), NO_ANSWER)),
    )
    assert due(h, sh(2025, 10, 9, 14, 1), rules) == sh(2025, 10, 9, 16)


def test_busy_is_not_spread() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 9, 30), Outcome.BUSY),))
    assert slot_of(RULES, due(h, sh(2025, 10, 9, 9, 31))) == "morning"  # type: ignore[arg-type]


def test_no_answer_before_national_day_waits_for_the_ninth() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 9, 30, 18), Outcome.NO_ANSWER),))
    assert due(h, sh(2025, 9, 30, 18, 1)) == sh(2025, 10, 9, 9)


def test_friday_evening_no_answer_goes_to_the_swapped_sunday_morning() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 9, 26, 18, 30), Outcome.NO_ANSWER),))
    assert due(h, sh(2025, 9, 26, 18, 31)) == sh(2025, 9, 28, 9)


@pytest.mark.parametrize(
    ("history", "reason"),
    [
        (CaseHistory((A,), finished=True), Reason.FINISHED),
        (CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.PENDING),)), Reason.IN_PROGRESS),
        (CaseHistory((A,), do_not_call=frozenset({A})), Reason.DO_NOT_CALL),
        (CaseHistory((A,), (att(A, sh(2025, 10, 9, 9), Outcome.WRONG_NUMBER),)),
         Reason.NUMBERS_EXHAUSTED),
        (CaseHistory(()), Reason.NUMBERS_EXHAUSTED),
        (CaseHistory((A, B, C), tuple(att(n, sh(2025, 10, 8 + i, 10), Outcome.NO_ANSWER)
                                      for i, n in enumerate([A, B, C, A, B, C]))),
         Reason.CASE_LIMIT),
    ],
)  # fmt: skip
def test_cases_that_are_never_due(history: CaseHistory, reason: Reason) -> None:
    assert decide(RULES, history, sh(2025, 10, 20, 10)) == Decision(None, reason)


def test_case_past_the_deadline_is_never_due() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 20, 9))
    assert decide(rules, CaseHistory((A,)), sh(2025, 10, 20, 10)) == Decision(None, Reason.DEADLINE)


def test_case_whose_retry_falls_after_the_deadline_is_never_due() -> None:
    rules = CallingRules(deadline=sh(2025, 10, 9, 19))
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 17, 30), Outcome.MACHINE),))
    assert decide(rules, h, sh(2025, 10, 9, 17, 31)).reason is Reason.DEADLINE


def test_unknown_calendar_is_its_own_reason() -> None:
    last = calendar.covered_years()[-1]
    d = decide(RULES, CaseHistory((A,)), sh(last, 12, 31, 21))
    assert d == Decision(None, Reason.CALENDAR_UNKNOWN)


# -- appointments in decide ------------------------------------------------------------------


def test_appointment_overrides_retry_delay_and_spreading() -> None:
    h = CaseHistory(
        (A,),
        (att(A, sh(2025, 10, 9, 15), Outcome.NO_ANSWER),),
        appointment=Appointment(sh(2025, 10, 9, 15, 30), agent="agent-7"),
    )
    d = decide(RULES, h, sh(2025, 10, 9, 15, 1))
    assert d == Decision(sh(2025, 10, 9, 15, 30), Reason.DUE, A, "agent-7", appointment=True)


def test_appointment_within_the_minimum_gap_of_a_call_counts_as_kept() -> None:
    # validate_appointment refuses to book it; if one slips through, the gap still holds.
    h = CaseHistory(
        (A,),
        (att(A, sh(2025, 10, 9, 15), Outcome.ANSWERED),),
        appointment=Appointment(sh(2025, 10, 9, 15, 5)),
    )
    assert decide(RULES, h, sh(2025, 10, 9, 15, 1)) == Decision(sh(2025, 10, 9, 16), Reason.DUE, A)


def test_missed_appointment_is_due_at_once() -> None:
    h = CaseHistory((A,), appointment=Appointment(sh(2025, 10, 9, 10)))
    assert due(h, sh(2025, 10, 9, 11)) == sh(2025, 10, 9, 11)


def test_appointment_on_a_closed_day_moves_to_the_next_callable_time() -> None:
    rules = CallingRules(closed_dates=frozenset({date(2025, 10, 10)}))
    h = CaseHistory((A,), appointment=Appointment(sh(2025, 10, 10, 10)))
    assert due(h, sh(2025, 10, 9, 18), rules) == sh(2025, 10, 11, 9)


def test_kept_appointment_no_longer_counts() -> None:
    booked = att(A, sh(2025, 10, 9, 10), ANSWERED)  # the call that booked 15:00
    kept = att(A, sh(2025, 10, 9, 15), Outcome.NO_ANSWER)
    h = CaseHistory((A,), (booked, kept), Appointment(sh(2025, 10, 9, 15)))
    assert pending_appointment(RULES, h) is None
    d = decide(RULES, h, sh(2025, 10, 9, 15, 1))
    # Not 15:10 (the gap), as a forgotten appointment would have it: the normal retry, spread.
    assert d == Decision(sh(2025, 10, 9, 17), Reason.DUE, A)


def test_appointment_booked_by_the_previous_call_is_still_pending() -> None:
    booked = att(A, sh(2025, 10, 9, 14, 50), ANSWERED)
    h = CaseHistory((A,), (booked,), Appointment(sh(2025, 10, 9, 15)))
    assert pending_appointment(RULES, h) is not None


def test_appointment_does_not_lift_the_case_limit() -> None:
    rules = CallingRules(max_attempts_per_case=1)
    h = CaseHistory(
        (A,), (att(A, sh(2025, 10, 9, 10), Outcome.ANSWERED),), Appointment(sh(2025, 10, 9, 15))
    )
    assert decide(rules, h, sh(2025, 10, 9, 11)).reason is Reason.CASE_LIMIT


# -- properties ------------------------------------------------------------------------------

POOL = (A, B, C)
NON_PENDING = [o for o in Outcome if o is not Outcome.PENDING]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 20), timezones=st.just(SH)
)
# Hypothesis favours small integers, so "integers(0, 9) == 0" would be anything but rare.
RARELY = st.sampled_from([False] * 9 + [True])
ALT_WINDOWS = (Window(time(9, 30), time(11), frozenset(range(5))), Window(time(15), time(18)))


@st.composite
def rules_strategy(draw: st.DrawFn, now: datetime | None = None) -> CallingRules:
    deadline = None
    closed: list[date] = []
    if now is not None and draw(st.booleans()):
        deadline = now + draw(st.timedeltas(timedelta(0), timedelta(days=40)))
    if now is not None and draw(st.booleans()):  # a local closure near now
        closed.append(now.date() + timedelta(days=draw(st.integers(0, 3))))
    return CallingRules(
        windows=draw(st.sampled_from([RULES.windows, ALT_WINDOWS])),
        deadline=deadline,
        max_attempts_per_case=draw(st.sampled_from(range(1, 10))),
        max_attempts_per_number=draw(st.sampled_from(range(1, 5))),
        min_gap=draw(st.timedeltas(timedelta(0), timedelta(hours=1))),
        closed_dates=frozenset(closed),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[CallingRules, CaseHistory, datetime]:
    now = draw(instants)
    rules = draw(rules_strategy(now))
    # Recent attempts matter most (gaps, delays), so half of them are minutes old.
    ago = st.timedeltas(timedelta(0), timedelta(hours=3)) | st.timedeltas(
        timedelta(0), timedelta(days=12)
    )
    attempts = [
        Attempt(draw(st.sampled_from(POOL)), now - draw(ago), draw(st.sampled_from(NON_PENDING)))
        for _ in range(draw(st.integers(0, 6)))
    ]
    pending = draw(RARELY)  # a call still in progress blocks the case: keep it rare
    if attempts and pending:
        attempts.append(Attempt(attempts[0].number, now, Outcome.PENDING))
    numbers = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=3))
    appointment = None
    if draw(st.sampled_from([False, False, True])):
        soon = st.timedeltas(timedelta(minutes=-30), timedelta(minutes=30))
        at = now + draw(soon | st.timedeltas(timedelta(days=-2), timedelta(days=5)))
        appointment = Appointment(at, draw(st.none() | st.just("agent-1")),
                                  draw(st.none() | st.sampled_from(POOL)))  # fmt: skip
    history = CaseHistory(
        tuple(numbers),
        tuple(attempts),
        appointment,
        finished=draw(RARELY),
        do_not_call=frozenset(draw(st.lists(st.sampled_from(POOL), max_size=2))),
    )
    return rules, history, now


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_case_is_ever_due_when_it_must_not_be_called(
    case: tuple[CallingRules, CaseHistory, datetime],
) -> None:
    rules, history, now = case
    d = decide(rules, history, now)
    if d.at is None:
        assert d.reason is not Reason.DUE and d.number is None
        return
    assert d.reason is Reason.DUE
    assert d.at >= now
    assert oracle_callable(rules, d.at)  # window, working day by the notices, deadline
    assert not history.finished
    assert all(a.outcome is not Outcome.PENDING for a in history.attempts)
    assert len(history.attempts) < rules.max_attempts_per_case
    tries = Counter(a.number for a in history.attempts)
    assert d.number in history.numbers
    assert d.number not in history.do_not_call
    assert tries[d.number] < rules.max_attempts_per_number
    assert all(
        not (a.number == d.number and a.outcome is Outcome.WRONG_NUMBER) for a in history.attempts
    )
    appointment = pending_appointment(rules, history)
    last = history.last
    if last is not None:
        assert d.at >= last.placed_at + rules.min_gap
        if appointment is None:
            assert d.at >= last.placed_at + rules.retry_delays[last.outcome]
    if appointment is not None:
        assert d.appointment and d.at >= appointment.at
    else:
        assert not d.appointment


@settings(max_examples=300)
@given(cases(), st.sampled_from([Outcome.BUSY, Outcome.FAILED, Outcome.ANSWERED]))
def test_a_retry_is_not_later_than_the_rules_require(
    case: tuple[CallingRules, CaseHistory, datetime], outcome: Outcome
) -> None:
    rules, history, now = case
    # The last call got an outcome that is not spread across slots; no appointment.
    placed = now - timedelta(minutes=3)
    attempts = [a for a in history.attempts if a.outcome is not Outcome.PENDING]
    attempts = [a for a in attempts if a.placed_at < placed]
    attempts.append(Attempt(history.numbers[0], placed, outcome))
    history = dataclasses.replace(
        history, attempts=tuple(attempts), appointment=None, finished=False
    )
    d = decide(rules, history, now)
    assume(d.at is not None)
    assert d.at == next_callable(rules, max(now, placed + rules.delay_after(outcome)))


@settings(max_examples=500)
@given(instants, st.data())
def test_is_callable_agrees_with_the_published_schedule(at: datetime, data: st.DataObject) -> None:
    rules = data.draw(rules_strategy(at - timedelta(days=20)))
    assert is_callable(rules, at) is oracle_callable(rules, at)


@settings(max_examples=300)
@given(cases())
def test_an_open_case_without_deadline_is_always_due_sometime(
    case: tuple[CallingRules, CaseHistory, datetime],
) -> None:
    rules, history, now = case
    rules = dataclasses.replace(rules, deadline=None)
    assume(now < datetime(2026, 12, 1, tzinfo=SH))
    assume(not history.finished and all(a.outcome is not Outcome.PENDING for a in history.attempts))
    assume(len(history.attempts) < rules.max_attempts_per_case)
    assume(which_number(rules, history) is not None)
    assert decide(rules, history, now).reason is Reason.DUE


@settings(max_examples=150, deadline=None)
@given(instants, st.data())
def test_next_callable_is_callable_and_skips_nothing(after: datetime, data: st.DataObject) -> None:
    rules = data.draw(rules_strategy(after))
    result = next_callable(rules, after)
    end = result if result is not None else rules.deadline
    if end is None:
        pytest.fail(f"no callable instant after {after} without a deadline")
    assume(end - after <= timedelta(days=16))  # keep the walk short
    if result is not None:
        assert result >= after
        assert is_callable(rules, result) and oracle_callable(rules, result)
        if result > after:
            assert not oracle_callable(rules, result - timedelta(microseconds=1))
    # Walk minute by minute: windows are whole minutes long, so none can hide between steps.
    t = after
    while t < end:
        assert not oracle_callable(rules, t), f"{t} is callable but {result} was returned"
        t += timedelta(minutes=1)


@st.composite
def unanswered_histories(draw: st.DrawFn) -> tuple[CaseHistory, datetime]:
    """1-4 unanswered attempts at callable instants, the last one latest."""
    placed: list[Attempt] = []
    t = draw(instants)
    for _ in range(draw(st.integers(1, 4))):
        at = next_callable(RULES, t)
        assume(at is not None)
        assert at is not None
        outcome = draw(st.sampled_from([Outcome.NO_ANSWER, Outcome.MACHINE]))
        placed.append(Attempt(draw(st.sampled_from(POOL)), at, outcome))
        t = at + draw(st.timedeltas(timedelta(minutes=10), timedelta(days=2)))
    now = placed[-1].placed_at + draw(st.timedeltas(timedelta(0), timedelta(days=3)))
    return CaseHistory(POOL, tuple(placed)), now


@settings(max_examples=300)
@given(unanswered_histories())
def test_unanswered_case_is_next_tried_in_a_least_tried_other_slot(
    case: tuple[CaseHistory, datetime],
) -> None:
    history, now = case
    rules = CallingRules(max_attempts_per_case=10, max_attempts_per_number=10)
    result = next_due(rules, history, now)
    assume(result is not None)  # the calendar may run out at the end of its last year
    assert result is not None
    last = history.last
    assert last is not None
    last_slot = slot_of(rules, last.placed_at)
    slot = slot_of(rules, result)
    assert slot is not None and slot != last_slot
    tried = Counter(slot_of(rules, a.placed_at) for a in history.attempts)
    assert tried[slot] == min(tried[s.name] for s in rules.slots if s.name != last_slot)
