"""Working days in mainland China: statutory holidays and the swapped working days (调休).

Why ``chinese_calendar`` (PyPI ``chinesecalendar``) and not ``holidays``:

- China's holidays are not a rule. Each November or December the State Council publishes
  next year's schedule (国务院办公厅关于某年部分节假日安排的通知), moving weekends to
  make long breaks: 2025-09-28 (a Sunday) was a working day so that 2025-10-01..08 could be
  one. ``chinese_calendar`` is a transcription of those notices, 2004 onwards, with the swapped
  working days as data (``constants.workdays``).
- It refuses a year it has no notice for (``NotImplementedError``), which is exactly the
  behaviour we need: a year whose schedule is unknown must never be callable.
- ``holidays.China`` (checked with 0.109) also lists the 2025/2026 schedules, but computes
  any later year from lunar rules up to 2100 without saying the result is a guess: it calls
  2027-10-06 a working day although the 2027 notice, not yet in the library, will almost
  certainly make it a holiday. Telling "published" from "extrapolated" years there would mean
  relying on its internal tables, so it would make wrong calls silently.

The library's coverage is read from its data, never from the clock: a year is known when the
library holds that year's notice. Upgrade ``chinesecalendar`` once the next notice is out
(usually November); until then every date of that year is "not known" and not callable.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import date, datetime
from importlib import metadata

import chinese_calendar
from chinese_calendar import constants as _constants

from callback.errors import CallbackError

__all__ = [
    "CalendarUnknownError",
    "covered_years",
    "holiday_name",
    "is_known",
    "is_working_day",
    "require_known",
]

# The library's own bounds (its _validate_date uses the same min/max of its holiday table).
_FIRST_YEAR: int = min(_constants.holidays).year
_LAST_YEAR: int = max(_constants.holidays).year


def _library_version() -> str:
    try:
        return metadata.version("chinesecalendar")
    except metadata.PackageNotFoundError:  # vendored or installed without metadata
        return "(unknown version)"


class CalendarUnknownError(CallbackError):
    """The holiday schedule of a year is not known, so no date in it may be called."""

    def __init__(self, day: date) -> None:
        self.day = day
        self.year = day.year
        first, last = covered_years()[0], covered_years()[-1]
        if day.year > last:
            what = (
                f"upgrade chinesecalendar (pip install -U chinesecalendar) once the State "
                f"Council has published the {day.year} holiday schedule, usually in November "
                f"of {day.year - 1}; until then nothing in {day.year} is callable"
            )
        else:
            what = "callback cannot place or plan calls on dates before that"
        super().__init__(
            f"the working-day calendar for {day.year} is not known: chinesecalendar "
            f"{_library_version()} covers {first}-{last}; {what}"
        )


def covered_years() -> range:
    """Return the years whose holiday schedule the installed calendar knows."""
    return range(_FIRST_YEAR, _LAST_YEAR + 1)


def is_known(day: date) -> bool:
    """Return whether the calendar can say if ``day`` is a working day."""
    _require_date(day)
    return _FIRST_YEAR <= day.year <= _LAST_YEAR


def require_known(day: date) -> None:
    """Raise CalendarUnknownError unless the calendar knows ``day``'s year."""
    if not is_known(day):
        raise CalendarUnknownError(day)


def is_working_day(day: date, closed: Collection[date] = frozenset()) -> bool:
    """Return whether ``day`` is a working day in mainland China.

    Statutory holidays are not working days; the weekend days swapped into working days (调休)
    are. ``closed`` adds local closures the national calendar does not know (a unit's own
    closure, Hangzhou's G20 holiday of 2016); they can only remove working days, never add.

    Raises CalendarUnknownError for a year the installed calendar does not cover.
    """
    require_known(day)
    if day in closed:
        return False
    return _library_is_workday(day)


def holiday_name(day: date) -> str | None:
    """Return the Chinese name of the holiday ``day`` belongs to ("国庆节"), or None.

    A swapped working day returns None although the library links it to its holiday, because
    callers use this to explain why a day is not callable.
    """
    require_known(day)
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    if not on_holiday:
        return None
    if name is None:
        return "周末"
    try:
        return str(chinese_calendar.Holiday(name).chinese)
    except ValueError:  # a name the library's enum does not list; show it as it is
        return str(name)


def _require_date(day: date) -> None:
    # A datetime is a date subclass, but which day it is depends on the time zone: refuse it
    # so that nobody asks about the UTC day of a Shanghai call.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a datetime.date, not {type(day).__name__}")


@functools.lru_cache(maxsize=4096)
def _library_is_workday(day: date) -> bool:
    # Cached because the library rescans its whole table to check the year on every call,
    # and the rules ask about the same few hundred days over and over.
    return bool(chinese_calendar.is_workday(day))
