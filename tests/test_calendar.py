"""The working-day calendar against the State Council's published 2025 and 2026 schedules."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from callback import calendar
from callback.config import load_settings
from callback.decisions import is_callable
from callback.errors import CallbackError, ConfigError
from callback.rules import CallingRules

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


# -- notices the office transcribes into callback.toml ([calendar.YYYY]) ---------------------

# A schedule made up for these tests, shaped like a notice; it is not the 2027 notice.
NOTICE_2027 = {
    "notice": "a test schedule shaped like a State Council notice",
    "holidays": [
        {"name": "元旦", "from": date(2027, 1, 1), "to": date(2027, 1, 3)},
        {"name": "春节", "from": date(2027, 2, 5), "to": date(2027, 2, 12)},
    ],
    "workdays": [date(2027, 2, 13), date(2027, 2, 14)],  # Saturday and Sunday, 调休
}


@pytest.fixture
def transcribed():
    yield calendar.install({"2027": NOTICE_2027})
    calendar.install({})


def test_a_year_the_library_lacks_is_unknown_until_transcribed(transcribed) -> None:
    assert transcribed == [2027]
    assert calendar.is_working_day(date(2027, 1, 4))  # a Monday after 元旦
    assert not calendar.is_working_day(date(2027, 2, 8))  # a Monday in 春节
    assert calendar.is_working_day(date(2027, 2, 14))  # a swapped Sunday
    assert not calendar.is_working_day(date(2027, 3, 6))  # an ordinary Saturday
    assert calendar.holiday_name(date(2027, 2, 8)) == "春节"
    assert calendar.holiday_name(date(2027, 3, 6)) == "周末"
    assert calendar.holiday_name(date(2027, 2, 14)) is None
    calendar.install({})
    assert not calendar.is_known(date(2027, 1, 4))
    with pytest.raises(calendar.CalendarUnknownError, match=r"\[calendar.2027\]"):
        calendar.is_working_day(date(2027, 1, 4))


def test_the_calls_follow_a_transcribed_year(transcribed) -> None:
    rules = CallingRules()
    sh = rules.zone
    assert is_callable(rules, datetime(2027, 2, 14, 10, 0, tzinfo=sh))
    assert not is_callable(rules, datetime(2027, 2, 8, 10, 0, tzinfo=sh))
    calendar.install({})
    assert not is_callable(rules, datetime(2027, 2, 15, 10, 0, tzinfo=sh))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"notice": " "}, r"\[calendar.2027\]: notice"),
        ({"holidays": []}, r"holidays: list every holiday"),
        ({"workdays": [date(2027, 2, 15)]}, r"workdays\[0\]: 2027-02-15 is a weekday"),
        ({"workdays": [date(2026, 2, 14)]}, r"workdays\[0\]: a date in 2027"),
        ({"workdays": [date(2027, 2, 6)]}, r"workdays\[0\]: 2027-02-06 is listed as part of 春节"),
        ({"holidays": [{"name": "春节", "from": date(2027, 2, 12), "to": date(2027, 2, 5)}]},
         r"holidays\[0\]: ends \(2027-02-05\) before it begins"),
        ({"holidays": [{"name": "元旦", "from": date(2027, 1, 1), "to": date(2027, 1, 2)},
                       {"name": "又一个", "from": date(2027, 1, 2), "to": date(2027, 1, 2)}]},
         r"holidays\[1\]: 2027-01-02 is already part of 元旦"),
        ({"holiday": []}, r"unknown keys holiday"),
    ],
)  # fmt: skip
def test_a_transcription_mistake_is_named_and_nothing_is_installed(change, message) -> None:
    with pytest.raises(ConfigError, match=message):
        calendar.install({"2027": NOTICE_2027 | change}, "callback.toml")
    assert not calendar.is_known(date(2027, 1, 4))


def test_a_year_the_library_knows_stays_the_librarys(caplog) -> None:
    assert calendar.install({"2026": NOTICE_2027}) == []
    assert "ignored" in caplog.text
    assert calendar.is_working_day(date(2026, 2, 14))  # the library's swapped Saturday


def test_settings_install_the_transcribed_years(tmp_path) -> None:
    config = tmp_path / "callback.toml"
    config.write_text(
        '[calendar.2027]\nnotice = "test"\n'
        'holidays = [{ name = "元旦", from = 2027-01-01, to = 2027-01-01 }]\n'
        "workdays = []\n",
        encoding="utf-8",
    )
    try:
        load_settings(environ={}, config_file=config)
        assert calendar.is_known(date(2027, 6, 1))
        assert not calendar.is_working_day(date(2027, 1, 1))
    finally:
        calendar.install({})
