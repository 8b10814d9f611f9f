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

The library often lags the notice by weeks, and December is when next year's campaigns are
planned. So an office may transcribe a published notice into ``callback.toml`` (a
``[calendar.2027]`` table, read by ``install``): its holidays and swapped working days, and the
notice it copied them from. A year the library knows is always the library's; the table is
checked as strictly as a notice can be (every date in its year, every swapped working day a
Saturday or Sunday outside the holidays) before any date of it becomes callable.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import metadata
from typing import Any

import chinese_calendar
from chinese_calendar import constants as _constants

from callback.errors import CallbackError, ConfigError

__all__ = [
    "CalendarUnknownError",
    "covered_years",
    "holiday_name",
    "install",
    "is_known",
    "is_working_day",
    "local_midnight",
    "require_known",
]

log = logging.getLogger(__name__)

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
                f"of {day.year - 1}, or transcribe the published notice into callback.toml as "
                f"[calendar.{day.year}] (docs/calling_rules.md); until then nothing in "
                f"{day.year} is callable"
            )
        else:
            what = "callback cannot place or plan calls on dates before that"
        super().__init__(
            f"the working-day calendar for {day.year} is not known: chinesecalendar "
            f"{_library_version()} covers {first}-{last}{_extra_years()}; {what}"
        )


def covered_years() -> range:
    """Return the years whose holiday schedule the installed calendar knows."""
    return range(_FIRST_YEAR, _LAST_YEAR + 1)


def is_known(day: date) -> bool:
    """Return whether the calendar can say if ``day`` is a working day."""
    _require_date(day)
    return _FIRST_YEAR <= day.year <= _LAST_YEAR or day.year in _transcribed


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
    year = _transcribed.get(day.year)
    if year is not None:
        return year.is_workday(day)
    return _library_is_workday(day)


def holiday_name(day: date) -> str | None:
    """Return the Chinese name of the holiday ``day`` belongs to ("国庆节"), or None.

    A swapped working day returns None although the library links it to its holiday, because
    callers use this to explain why a day is not callable.
    """
    require_known(day)
    year = _transcribed.get(day.year)
    if year is not None:
        return year.holiday_name(day)
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    if not on_holiday:
        return None
    if name is None:
        return "周末"
    try:
        return str(chinese_calendar.Holiday(name).chinese)
    except ValueError:  # a name the library's enum does not list; show it as it is
        return str(name)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant ``day`` begins in ``tz``, in UTC: where local days, weeks and months start."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


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


# -- notices transcribed by the office (callback.toml [calendar.YYYY]) ----------------------


@dataclass(frozen=True)
class TranscribedYear:
    """One year's schedule as a State Council notice gives it."""

    year: int
    notice: str
    holidays: Mapping[date, str]
    workdays: frozenset[date]

    def is_workday(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() < 5

    def holiday_name(self, day: date) -> str | None:
        if day in self.holidays:
            return self.holidays[day]
        return None if self.is_workday(day) else "周末"


_transcribed: dict[int, TranscribedYear] = {}


def install(tables: Mapping[str, Any], source: str = "callback.toml") -> list[int]:
    """Use the notices transcribed in ``tables`` (callback.toml's ``[calendar]``) for the years
    the library does not know; return those years. Everything is checked first: a mistake
    names the table and the entry, and nothing is installed. ``install({})`` forgets them."""
    years: dict[int, TranscribedYear] = {}
    for key, table in tables.items():
        where = f"{source} [calendar.{key}]"
        if not (isinstance(key, str) and key.isdigit() and len(key) == 4):
            raise ConfigError(f"{where}: a [calendar] table is named by its year, e.g. 2027")
        year = int(key)
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table with notice, holidays and workdays")
        if _FIRST_YEAR <= year <= _LAST_YEAR:
            log.warning(
                "%s ignored: chinesecalendar %s has the %s notice; remove the table",
                where, _library_version(), year,
            )  # fmt: skip
            continue
        years[year] = _parse_year(year, table, where)
    _transcribed.clear()
    _transcribed.update(years)
    return sorted(years)


def _parse_year(year: int, table: Mapping[str, Any], where: str) -> TranscribedYear:
    unknown = set(table) - {"notice", "holidays", "workdays"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    notice = table.get("notice")
    if not isinstance(notice, str) or not notice.strip():
        raise ConfigError(f"{where}: notice: name the State Council notice transcribed")
    entries = table.get("holidays")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: holidays: list every holiday of the notice")
    holidays: dict[date, str] = {}
    for i, entry in enumerate(entries):
        at = f"{where} holidays[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"name", "from", "to"}:
            raise ConfigError(f'{at}: write {{ name = "春节", from = {year}-02-06, to = ... }}')
        name, first, last = entry["name"], entry["from"], entry["to"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{at}: name: the holiday's name, e.g. 春节")
        for label, value in (("from", first), ("to", last)):
            if not _is_date(value) or value.year != year:
                raise ConfigError(f"{at}: {label}: a date in {year}, not {value!r}")
        if last < first:
            raise ConfigError(f"{at}: ends ({last}) before it begins ({first})")
        day = first
        while day <= last:
            if day in holidays:
                raise ConfigError(f"{at}: {day} is already part of {holidays[day]}")
            holidays[day] = name.strip()
            day += timedelta(days=1)
    workdays = table.get("workdays", [])
    if not isinstance(workdays, list):
        raise ConfigError(f"{where}: workdays: a list of dates (调休 working days)")
    for i, day in enumerate(workdays):
        at = f"{where} workdays[{i}]"
        if not _is_date(day) or day.year != year:
            raise ConfigError(f"{at}: a date in {year}, not {day!r}")
        if day.weekday() < 5:
            raise ConfigError(f"{at}: {day} is a weekday already; a swapped working day is a "
                              "Saturday or Sunday")  # fmt: skip
        if day in holidays:
            raise ConfigError(f"{at}: {day} is listed as part of {holidays[day]} too")
    return TranscribedYear(year, notice.strip(), holidays, frozenset(workdays))


def _is_date(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _extra_years() -> str:
    if not _transcribed:
        return ""
    return ", and callback.toml transcribes " + ", ".join(map(str, sorted(_transcribed)))
