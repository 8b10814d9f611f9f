"""The columnar fast lane gives exactly what the row-by-row reader gives, on every kind of row."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from callback.config import Settings
from callback.fastlane import ChunkReader
from callback.records import CaseRecord, Problem
from callback.rowreader import RowReader
from callback.sources import Mapping, find_layout
from callback.synthetic import HEADERS, District

NOW = datetime(2026, 11, 22, tzinfo=UTC)
HEADER = list(HEADERS["zh"])


def readers(header: list[str] = HEADER) -> tuple[ChunkReader, RowReader]:
    layout = find_layout([(1, header)], Mapping(), "test.csv")
    settings = Settings(actor="tester")
    return (
        ChunkReader(RowReader(layout, Mapping(), settings, NOW)),
        RowReader(layout, Mapping(), settings, NOW),
    )


def by_rows(rows: list[list[str]]) -> tuple[list[CaseRecord], list[Problem], int, int]:
    _, reference = readers()
    records = []
    for number, cells in enumerate(rows, start=2):
        record = reference.read(number, list(cells))
        if record is not None:
            records.append(record)
    problems = sorted(reference.problems, key=lambda p: p.row)
    return records, problems, reference.rejected, reference.without_valid_phone


def by_lane(
    rows: list[list[str]], size: int = 500
) -> tuple[list[CaseRecord], list[Problem], int, int]:
    lane, _ = readers()
    records: list[CaseRecord] = []
    problems: list[Problem] = []
    rejected = without = 0
    numbered = [(n, list(cells)) for n, cells in enumerate(rows, start=2)]
    for start in range(0, len(numbered), size):
        chunk = lane.read(numbered[start : start + size])
        assert len(chunk.fingerprint) == len(chunk)
        records += chunk.records()
        problems += sorted(chunk.problems, key=lambda p: p.row)
        rejected += chunk.rejected
        without += chunk.without_valid_phone
    return records, problems, rejected, without


def test_the_lane_matches_the_reader_on_a_messy_district() -> None:
    district = District(seed=7, messy=0.3)
    rows = list(district.rows(4000))
    lane = by_lane(rows)
    reference = by_rows(rows)
    assert lane[0] == reference[0]
    assert lane[1] == reference[1]
    assert lane[2:] == reference[2:]
    assert lane[2] == district.stats.expected_rejected


def test_the_lane_fingerprints_are_the_records_fingerprints() -> None:
    lane, _ = readers()
    rows = [(n, cells) for n, cells in enumerate(District(seed=3, messy=0.2).rows(1000), start=2)]
    chunk = lane.read(rows)
    by_row = {record.row: record.fingerprint() for record in chunk.records()}
    assert [by_row[row] for row in chunk.rows] == chunk.fingerprint


def test_a_clean_chunk_never_goes_row_by_row() -> None:
    lane, _ = readers()
    rows = [(n, cells) for n, cells in enumerate(District(seed=5).rows(2000), start=2)]
    calls = []
    original = lane.reader.read
    lane.reader.read = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
    lane.read(rows)
    assert calls == []


ok_phone = st.sampled_from(
    ["13912345671", "13587654321", "0571-87654321", "057187654321", "87654321",
     "13912345671/0571-87654321", "13912345671、13587654321", "13912345671/13912345671"]
)  # fmt: skip
odd_phone = st.sampled_from(
    ["", "139 1234 5671", "+86 13912345671", "１３９１２３４５６７１", "13800000000", "11111111111",
     "0571-87654321转8001", "12345", "abc", "13912345671 / 0571-87654321", "1391234567",
     "13912345671/0571-87654321/13587654321", "13988888888"]
)  # fmt: skip
ok_time = st.sampled_from(["2018-06-03 14:05:06", "2018-09-30 23:59:59", "2018-06-01 00:00:00"])
odd_time = st.sampled_from(
    ["2018/6/3 14:05", "2018年6月3日", "43254.5", "2018-06-03", "2018-06-03 14:05", "待定",
     "2018-02-30 10:00:00", "2018-06-03 24:00:00", "2018-06-03 14:60:00", "2040-01-01 10:00:00",
     "2018-06-03T14:05:06", " 2018-06-03 14:05:06", ""]
)  # fmt: skip
text = st.sampled_from(["张三", " 张三 ", "", "张  三", "杭州某某科技有限公司", "王\u3000五"])
row = st.tuples(
    st.one_of(
        st.sampled_from(
            ["330106001", "330106002", "A-1/2.3", "", " 330106003 ", "3.30106E+17", "３３０１０６"]
        ),
        st.text(max_size=5),
    ),
    st.sampled_from(["社会保障卡申领", "", " 结婚登记 ", "x" * 301]),
    st.sampled_from(["330101010", ""]),
    st.sampled_from(["区民政局", "", "区 民政局", "西溪街道", "区  民政局"]),
    st.sampled_from(["西溪街道", "", "三墩镇"]),
    text,
    st.sampled_from(["个人", "法人", "", "外星人"]),
    text,
    st.one_of(ok_phone, odd_phone),
    st.one_of(ok_time, odd_time),
    st.sampled_from(["窗口", "网上", "", "自助机器人", "浙里办"]),
).map(list)


@settings(max_examples=150, deadline=None)
@given(st.lists(row, min_size=1, max_size=40), st.integers(1, 40))
def test_the_lane_matches_the_reader_on_any_rows(rows: list[list[str]], size: int) -> None:
    assert by_lane(rows, size) == by_rows(rows)


def test_ragged_rows_are_padded_like_the_reader_does() -> None:
    rows = [HEADER[:0] + ["330106001", "结婚登记", "330101010", "区民政局"], ["330106002"]]
    assert by_lane(rows) == by_rows(rows)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(), max_size=30))
def test_fingerprints_stay_what_the_frame_stored(texts: list[str]) -> None:
    """Stored fingerprints decide what a re-import changes: the hash must never drift.
    It is BLAKE2b with an 8-byte digest of the UTF-8 text, read as a signed big-endian int."""
    from hashlib import blake2b

    from callback.records import fingerprint_text, fingerprints

    expected = [
        int.from_bytes(blake2b(t.encode(), digest_size=8).digest(), "big", signed=True)
        for t in texts
    ]
    assert fingerprints(texts) == expected
    case = fingerprint_text(
        "C01", "结婚登记", None, "区民政局", "西溪街道", "张三", "person", None,
        "2018-06-03 02:00:00", "window", "+8613912345671#",
    )  # fmt: skip
    assert fingerprints([case]) == [-1746369610833891155]  # as imports have stored it
