"""The working-day calendar against the State Council's published 2025 and 2026 schedules."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from callback import calendar
from callback.errors import CallbackError

# Typed from the State Council notices (国办发明电〔2024〕12号 for 2025, 〔2025〕7号 for 2026),
# independently of the library, so that the tests check its data rather than repeat it.
HOLIDAYS = {
    2025: [
        ("01-01", "01-01"),  # 元旦
        ("01-28", "02-04"),  # 春节
        ("04-04", "04-06"),  # 清明
        ("05-01", "05-05"),  # 劳动节
        ("05-31", "06-02"),  # 端午
        ("10-01", "10-08"),  # 国庆、中秋
    ],
    2026: [
        ("01-01", "01-03"),
        ("02-15", "02-23"),
        ("04-04", "04-06"),
        ("05-01", "05-05"),
        ("06-19", "06-21"),
        ("09-25", "09-27"),
        ("10-01", "10-07"),
    ],
}
SWAPPED_WORKDAYS = {
    2025: ["01-26", "02-08", "04-27", "09-28", "10-11"],
    2026: ["01-04", "02-14", "02-28", "05-09", "09-20", "10-10"],
}


def _day(year: int, month_day: str) -> date:
    return date.fromisoformat(f"{year}-{month_day}")


def official_holidays() -> set[date]:
    days = set()
    for year, spans in HOLIDAYS.items():
        for first, last in spans:
            day = _day(year, first)
            while day <= _day(year, last):
                days.add(day)
                day += timedelta(days=1)
    return days


def official_swapped() -> set[date]:
    return {_day(year, md) for year, days in SWAPPED_WORKDAYS.items() for md in days}


def official_is_working_day(day: date) -> bool:
    """The oracle: the notices' holidays and swaps, Monday to Friday otherwise."""
    if day in official_holidays():
        return False
    return day in official_swapped() or day.weekday() < 5


def test_2025_and_2026_are_covered() -> None:
    assert 2025 in calendar.covered_years()
    assert 2026 in calendar.covered_years()


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_day_matches_the_published_schedule(year: int) -> None:
    day = date(year, 1, 1)
    wrong = []
    while day.year == year:
        if calendar.is_working_day(day) != official_is_working_day(day):
            wrong.append(day)
        day += timedelta(days=1)
    assert wrong == []


def test_national_day_2025_is_not_a_working_day() -> None:
    for d in range(1, 9):
        assert not calendar.is_working_day(date(2025, 10, d))


def test_swapped_sunday_2025_09_28_is_a_working_day() -> None:
    assert date(2025, 9, 28).weekday() == 6
    assert calendar.is_working_day(date(2025, 9, 28))


def test_swapped_saturday_2026_02_14_is_a_working_day() -> None:
    assert calendar.is_working_day(date(2026, 2, 14))


def test_spring_festival_2026_weekdays_are_holidays() -> None:
    assert not calendar.is_working_day(date(2026, 2, 16))  # a Monday
    assert not calendar.is_working_day(date(2026, 2, 23))  # a Monday, last day of the break


def test_ordinary_weekend_is_not_a_working_day() -> None:
    assert not calendar.is_working_day(date(2026, 11, 21))  # Saturday
    assert calendar.is_working_day(date(2026, 11, 23))  # Monday


def test_local_closure_removes_a_working_day() -> None:
    assert not calendar.is_working_day(date(2026, 11, 23), closed={date(2026, 11, 23)})


def test_local_closure_cannot_add_a_working_day() -> None:
    assert not calendar.is_working_day(date(2025, 10, 2), closed={date(2025, 10, 3)})


def test_year_after_coverage_is_a_clear_error() -> None:
    year = calendar.covered_years()[-1] + 1
    with pytest.raises(calendar.CalendarUnknownError) as info:
        calendar.is_working_day(date(year, 3, 2))
    assert isinstance(info.value, CallbackError)
    assert info.value.year == year
    message = str(info.value)
    assert str(year) in message
    assert "upgrade chinesecalendar" in message
    assert "nothing in" in message and "is callable" in message


def test_year_before_coverage_is_unknown() -> None:
    year = calendar.covered_years()[0] - 1
    assert not calendar.is_known(date(year, 6, 1))
    with pytest.raises(calendar.CalendarUnknownError, match=str(year)):
        calendar.require_known(date(year, 6, 1))


def test_is_known_follows_coverage() -> None:
    last = calendar.covered_years()[-1]
    assert calendar.is_known(date(last, 12, 31))
    assert not calendar.is_known(date(last + 1, 1, 1))


def test_a_datetime_is_refused_because_its_day_depends_on_the_zone() -> None:
    with pytest.raises(TypeError):
        calendar.is_working_day(datetime(2025, 10, 9, 12))


def test_holiday_name_is_chinese() -> None:
    assert calendar.holiday_name(date(2025, 10, 2)) == "国庆节"
    assert calendar.holiday_name(date(2026, 2, 17)) == "春节"
    assert calendar.holiday_name(date(2026, 11, 21)) == "周末"


def test_holiday_name_of_a_working_day_is_none() -> None:
    assert calendar.holiday_name(date(2025, 9, 28)) is None  # swapped working Sunday
    assert calendar.holiday_name(date(2026, 11, 23)) is None
