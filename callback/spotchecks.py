"""Hotline spot checks (电话抽查): k calls per hotline per report week inside office hours (pure).

Like callback.sampling, nothing here reads the database or the clock; campaign_draws.py writes
the plan into the queues. The report week runs Thursday to Wednesday.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callback import calendar
from callback.decisions import is_callable
from callback.designs import (
    check_date,
    check_int,
    check_keys,
    check_period,
    check_zone,
    invalid,
)
from callback.errors import CallbackError
from callback.rules import CallingRules, Window

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
        check_period(self.period_start, self.period_end)
        check_int(self.seed, "seed")
        check_int(self.calls_per_week, "calls_per_week", 1)
        check_zone(self.timezone)
        if not self.office_hours:
            raise invalid("spot checks need at least one span of office hours")

    @property
    def rules(self) -> CallingRules:
        """Office hours as calling rules, so that callback.decisions checks every planned call."""
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
        check_keys(data, keys, "design")
        period = data.get("period") or {}
        check_keys(period, ("start", "end"), "period")
        if "start" not in period or "end" not in period or "seed" not in data:
            raise invalid("a spot-check design needs a period (start, end) and a seed")
        options: dict[str, Any] = {}
        if "office_hours" in data:
            try:
                options["office_hours"] = tuple(
                    Window(time.fromisoformat(a), time.fromisoformat(b))
                    for a, b in data["office_hours"]
                )
            except (TypeError, ValueError, CallbackError) as exc:
                raise invalid(f'office_hours must be like [["09:00", "11:30"]]: {exc}') from None
        if "closed_dates" in data:
            options["closed_dates"] = frozenset(
                check_date(d, "closed_dates") for d in data["closed_dates"]
            )
        for key in ("timezone", "calls_per_week"):
            if key in data:
                options[key] = data[key]
        return cls(
            check_date(period["start"], "period.start"),
            check_date(period["end"], "period.end"),
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
