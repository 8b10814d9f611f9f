"""Calling rules as data: defaults, and validation of windows, slots, limits and histories."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callback.decisions import is_callable
from callback.errors import ConfigError
from callback.rules import (
    DEFAULT_RETRY_DELAYS,
    Attempt,
    CallingRules,
    CaseHistory,
    Outcome,
    Slot,
    Window,
)

# The names below are shared with test_decisions.py and test_appointments.py, which import them.
SH = ZoneInfo("Asia/Shanghai")
A, B, C = "+8613800001111", "+8613900002222", "+8657187654321"
RULES = CallingRules()


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SH)


def att(number: str, at: datetime, outcome: Outcome) -> Attempt:
    return Attempt(number, at, outcome)


# -- rules ---------------------------------------------------------------------------------


def test_default_rules_follow_the_issue() -> None:
    assert [(w.start, w.end) for w in RULES.windows] == [(time(9), time(12)), (time(14), time(20))]
    assert RULES.timezone == "Asia/Shanghai"
    assert (RULES.max_attempts_per_case, RULES.max_attempts_per_number) == (6, 3)
    assert RULES.retry_delays[Outcome.BUSY] == timedelta(minutes=20)
    assert RULES.retry_delays[Outcome.NO_ANSWER] == timedelta(hours=2)
    assert RULES.retry_delays[Outcome.MACHINE] == timedelta(hours=4)
    assert RULES.retry_delays[Outcome.FAILED] == timedelta(minutes=30)
    assert [s.name for s in RULES.slots] == ["morning", "afternoon", "evening"]


def test_partial_retry_delays_keep_the_other_defaults() -> None:
    rules = CallingRules(retry_delays={"busy": timedelta(minutes=5)})  # type: ignore[dict-item]
    assert rules.retry_delays[Outcome.BUSY] == timedelta(minutes=5)
    assert rules.retry_delays[Outcome.MACHINE] == DEFAULT_RETRY_DELAYS[Outcome.MACHINE]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"windows": ()}, "at least one calling window"),
        ({"deadline": datetime(2025, 10, 31, 18)}, "time zone"),
        ({"max_attempts_per_case": 0}, "at least 1"),
        ({"max_attempts_per_number": 0}, "at least 1"),
        ({"min_gap": timedelta(minutes=-1)}, "negative"),
        ({"retry_delays": {Outcome.BUSY: timedelta(minutes=-5)}}, "negative"),
        ({"retry_delays": {"engaged": timedelta(minutes=5)}}, "engaged"),
        ({"spread_after": frozenset({"silence"})}, "silence"),
        ({"slots": (Slot("a", time(9), time(12)), Slot("a", time(14), time(17)))}, "unique"),
        ({"slots": (Slot("a", time(9), time(15)), Slot("b", time(14), time(17)))}, "overlap"),
    ],
)
def test_bad_rules_are_config_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CallingRules(**changes)  # type: ignore[arg-type]


def test_lists_are_accepted_and_frozen() -> None:
    rules = CallingRules(
        windows=[Window(time(9), time(12))],  # type: ignore[arg-type]
        closed_dates=[date(2025, 10, 9)],  # type: ignore[arg-type]
        spread_after=["busy"],  # type: ignore[arg-type]
    )
    assert rules.windows == (Window(time(9), time(12)),)
    assert rules.spread_after == frozenset({Outcome.BUSY})
    assert hash(rules) == hash(dataclasses.replace(rules))


def test_window_must_end_after_it_starts() -> None:
    with pytest.raises(ConfigError, match="end after it starts"):
        Window(time(12), time(9))


def test_window_weekdays_must_be_0_to_6() -> None:
    with pytest.raises(ConfigError, match="0-6"):
        Window(time(9), time(12), frozenset({7}))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CallingRules(windows="09:00-12:00"), "windows: expected a sequence of Window"),
        (lambda: CallingRules(windows=Window(time(9), time(12))), "expected a sequence of Window"),
        (lambda: CallingRules(windows=("09:00-12:00",)),
         "windows[0]: expected a Window(start, end), not '09:00-12:00'"),
        (lambda: Window("09:00", time(12)),
         "calling window start: expected a datetime.time, not '09:00'"),
        (lambda: Window(time(9), None), "calling window end: expected a datetime.time, not None"),
        (lambda: Window(time(9), time(12), "mon"),
         "calling window weekdays: expected a set of 0-6, not 'mon'"),
        (lambda: Window(time(9), time(12), [True]), "weekdays must be 0-6 (Monday=0)"),
    ],
)  # fmt: skip
def test_malformed_windows_in_python_are_config_errors_not_type_errors(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make()
    assert message in str(refused.value)


def test_window_weekdays_may_be_any_iterable_and_are_frozen() -> None:
    window = Window(time(9), time(12), [0, 1])  # type: ignore[arg-type]
    assert window.weekdays == frozenset({0, 1})
    assert hash(window) == hash(dataclasses.replace(window))


def test_numbers_must_be_e164() -> None:
    with pytest.raises(ValueError, match="E.164"):
        Attempt("13800001111", sh(2025, 10, 9, 10), Outcome.BUSY)
    with pytest.raises(ValueError, match="E.164"):
        CaseHistory(numbers=("0571-87654321",))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_callable(RULES, datetime(2025, 10, 9, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        Attempt(A, datetime(2025, 10, 9, 10), Outcome.BUSY)
