"""The report week (周): Thursday 00:00 to Wednesday 24:00 local time, named by its Thursday.

Timestamps are stored in UTC, so a week is compared as the pair of UTC instants its local
midnights fall on. docs/reports.md §1 defines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from callback.calendar import local_midnight

THURSDAY = 3


@dataclass(frozen=True, order=True)
class Week:
    """A report week, named by its Thursday; it ends with the Wednesday six days later."""

    start: date

    def __post_init__(self) -> None:
        if self.start.weekday() != THURSDAY:
            raise ValueError(f"a report week starts on a Thursday, not on {self.start:%A}")

    @property
    def end(self) -> date:
        """The last day (a Wednesday), inclusive."""
        return self.start + timedelta(days=6)

    def previous(self) -> Week:
        return Week(self.start - timedelta(days=7))

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants of its first local midnight and of the next week's: [start, end)."""
        return local_midnight(self.start, tz), local_midnight(self.start + timedelta(days=7), tz)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d} 至 {self.end:%Y-%m-%d}"


def report_week(day: date) -> Week:
    """The report week containing the local date ``day``."""
    return Week(day - timedelta(days=(day.weekday() - THURSDAY) % 7))


def week_at(instant: datetime, tz: ZoneInfo) -> Week:
    """The report week containing an instant, judged by its local date in ``tz``."""
    if instant.tzinfo is None:
        raise ValueError("give the instant a time zone")
    return report_week(instant.astimezone(tz).date())


def last_complete_week(now: datetime, tz: ZoneInfo) -> Week:
    """The latest week that has ended by ``now``: on a Thursday, the one that ended at 00:00."""
    return week_at(now, tz).previous()
