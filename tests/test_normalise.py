"""Dates, channels and applicant types as exports write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.normalise import (
    LocalTimes,
    ValueProblem,
    applicant_type,
    case_number,
    channel_code,
    clean_text,
    parse_datetime,
    utc_text,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2018-06-03", "2018-06-02 16:00:00"),
        ("2018-06-03 14:05:06", "2018-06-03 06:05:06"),
        ("2018-06-03 14:05", "2018-06-03 06:05:00"),
        ("2018/6/3 14:05", "2018-06-03 06:05:00"),
        ("2018/06/03 9:5", "2018-06-03 01:05:00"),
        ("2018.06.03", "2018-06-02 16:00:00"),
        ("2018-6-3", "2018-06-02 16:00:00"),
        ("2018年6月3日", "2018-06-02 16:00:00"),
        ("2018年6月3日 14时05分", "2018-06-03 06:05:00"),
        ("2018年6月3日14时05分06秒", "2018-06-03 06:05:06"),
        ("43254.58", "2018-06-03 05:55:12"),  # Excel's day number, as text in a CSV
        (43254.58, "2018-06-03 05:55:12"),  # and as a number in a workbook
        (datetime(2018, 6, 3, 14, 5), "2018-06-03 06:05:00"),  # a workbook's date cell
    ],
)
def test_dates_as_exports_write_them(value: object, utc: str) -> None:
    assert utc_text(parse_datetime(value, SHANGHAI, NOW)) == utc
    assert LocalTimes(SHANGHAI, NOW).utc_text(value) == utc


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "missing"),
        (None, "missing"),
        ("待定", "not a date"),
        ("2018-02-30", "not a real date"),
        ("2018-13-45", "not a real date"),
        ("2018-06-03 24:00", "not a real date"),
        ("1985-01-01", "before 1990"),
        ("2030-01-01", "in the future"),
        ("12.5", "not an Excel date"),
    ],
)
def test_bad_dates_say_why(value: object, reason: str) -> None:
    with pytest.raises(ValueProblem, match=reason):
        parse_datetime(value, SHANGHAI, NOW)
    with pytest.raises(ValueProblem, match=reason):
        LocalTimes(SHANGHAI, NOW).utc_text(value)


@settings(max_examples=1500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1991, 1, 1), max_value=datetime(2026, 11, 20)),
    st.sampled_from(["Asia/Shanghai", "America/New_York", "Asia/Kathmandu", "Europe/London"]),
    st.booleans(),
)
def test_the_fast_hour_memo_agrees_with_the_zone_database(
    local: datetime, zone_name: str, with_seconds: bool
) -> None:
    zone = ZoneInfo(zone_name)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
    times = LocalTimes(zone, NOW)
    try:
        expected = utc_text(parse_datetime(text, zone, NOW))
    except ValueProblem:
        with pytest.raises(ValueProblem):
            times.utc_text(text)
        return
    assert times.utc_text(text) == expected
    assert times.utc_text(text) == expected  # again, now from the memo


@settings(max_examples=2000, deadline=None)
@given(
    serial=st.one_of(
        st.floats(20_000, 80_000),
        # Exact halves of a second and of a millisecond, where rounding differs by method.
        st.integers(20_000 * 172_800, 80_000 * 172_800).map(lambda n: n / 172_800),
        st.integers(20_000 * 172_800_000, 80_000 * 172_800_000).map(lambda n: n / 172_800_000),
    )
)
def test_excel_day_numbers_read_as_openpyxl_reads_them(serial: float) -> None:
    """_from_serial was openpyxl's from_excel rounded to the second; it must stay so."""
    from openpyxl.utils.datetime import from_excel

    from callback.normalise import _from_serial

    expected = from_excel(serial) + timedelta(microseconds=500_000)
    assert _from_serial(serial) == expected.replace(microsecond=0)


def test_a_day_of_grace_for_clocks_and_zones() -> None:
    tomorrow = (NOW + timedelta(hours=20)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert LocalTimes(SHANGHAI, NOW).utc_text(tomorrow)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("窗口", "window"),
        ("窗口办理", "window"),
        ("网上", "online"),
        ("浙江政务服务网", "online"),
        ("掌上", "mobile"),
        ("浙里办", "mobile"),
        ("就近", "nearby"),
        ("自助终端", "nearby"),
        ("邮寄", "mail"),
        ("Online", "online"),
        (None, None),
        ("  ", None),
    ],
)
def test_channels(text: str | None, code: str | None) -> None:
    assert channel_code(text) == code


def test_unknown_channel_names_the_value_and_the_way_out() -> None:
    with pytest.raises(ValueProblem, match="自助机器人.*--mapping"):
        channel_code("自助机器人")


@pytest.mark.parametrize(
    ("given_type", "name", "expected"),
    [
        ("个人", "王建社", "person"),
        ("法人", "王建社", "company"),
        (None, "杭州西溪科技有限公司", "company"),
        (None, "王建社", "person"),
        (None, "欧阳娜娜", "person"),
        (None, "老王家常菜馆饭店", "company"),
        (None, "西湖区文新街道社区卫生服务中心", "company"),
        (None, None, "person"),
    ],
)
def test_applicant_types(given_type: str | None, name: str | None, expected: str) -> None:
    assert applicant_type(given_type, name) == expected


def test_unknown_applicant_type_is_refused() -> None:
    with pytest.raises(ValueProblem, match="unknown applicant type"):
        applicant_type("外星人", "王五")


def test_case_numbers() -> None:
    assert case_number(" 330106 2018 0001 ") == "33010620180001"
    assert case_number("３３０１０６") == "330106"
    assert case_number(330106201800012) == "330106201800012"
    with pytest.raises(ValueProblem, match="Excel"):
        case_number("3.30106E+17")
    with pytest.raises(ValueProblem, match="missing"):
        case_number("  ")


def test_clean_text() -> None:
    assert clean_text("  张三  ") == "张三"
    assert clean_text("区  市场\u3000监管局") == "区 市场 监管局"
    assert clean_text("") is None
    assert clean_text(13912345671.0) == "13912345671"
