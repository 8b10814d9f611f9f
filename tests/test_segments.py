"""Cutting a CSV file into segments that two reader processes read (sources.record_boundaries,
sources.CsvSegment): read in segments, a file gives the rows it gives read whole, or
SegmentMisaligned, never other rows."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callback.errors import ImportFileError
from callback.readerprocess import readers
from callback.sources import (
    CsvSegment,
    SegmentMisaligned,
    open_source,
    record_boundaries,
)

#: Cells with everything that makes CSV hard: quotes, both line ends, the delimiter, Chinese.
CELL = st.text(alphabet='ab中文 ",\n\r', max_size=12)
ROWS = st.lists(st.lists(CELL, min_size=0, max_size=4), min_size=1, max_size=40)
LINE_ENDS = st.sampled_from(["\r\n", "\n"])


def whole(path: Path) -> list[tuple[int, list[Any]]]:
    """Every record of the file, header included, as CsvSource numbers and reads them."""
    source = open_source(path, checksum=False)
    try:
        return [row for batch in source.batches(7) for row in batch]
    finally:
        source.close()


def in_segments(path: Path, cuts: list[int], encoding: str = "utf-8") -> list[tuple[int, Any]]:
    """The same, read segment by segment and renumbered as readerprocess does."""
    rows: list[tuple[int, Any]] = []
    before = 0
    for start, end in itertools.pairwise([0, *cuts]):
        segment = CsvSegment(path, encoding, ",", start, end)
        rows += [
            (number + before, cells) for batch in segment.batches(7) for number, cells in batch
        ]
        before += segment.records
        assert segment.position == end
    return rows


def write_rows(path: Path, rows: list[list[str]], line_end: str, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out, lineterminator=line_end).writerows(rows)
    return path


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, line_end=LINE_ENDS, step=st.integers(1, 60))
def test_a_well_formed_file_reads_the_same_in_segments(
    tmp_path: Path, rows: list[list[str]], line_end: str, step: int
) -> None:
    path = write_rows(tmp_path / "cases.csv", rows, line_end)
    cuts = record_boundaries(path, step, 10_000)
    assert cuts is not None and cuts[-1] == path.stat().st_size
    assert cuts == sorted(set(cuts))
    data = path.read_bytes()
    assert all(data[cut - 1 : cut] == b"\n" for cut in cuts[:-1])
    # csv.writer quotes every quote it writes, so no cut falls inside a quoted field.
    assert in_segments(path, cuts) == whole(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(st.text(alphabet='ab中 ",\r', max_size=10), min_size=1, max_size=40),
    ending=st.sampled_from(["", "\n"]),
    step=st.integers(1, 40),
)
def test_any_text_reads_the_same_in_segments_or_says_it_cannot(
    tmp_path: Path, lines: list[str], ending: str, step: int
) -> None:
    """Hand-written text: quotes inside unquoted fields, fields left open, a last line
    without its line end. A wrong cut must show as SegmentMisaligned."""
    path = tmp_path / "cases.csv"
    path.write_bytes(("\n".join(lines) + ending).encode())
    cuts = record_boundaries(path, step, 10_000)
    assert cuts is not None
    try:
        rows = in_segments(path, cuts)
    except SegmentMisaligned:
        return
    assert rows == whole(path)


def test_a_cut_inside_a_quoted_field_is_noticed(tmp_path: Path) -> None:
    # The stray quote in 张"三 makes the newline inside the quoted item look like a cut.
    path = tmp_path / "cases.csv"
    path.write_text('no,item\n1,张"三\n2,"结婚\n登记"\n3,离婚登记\n', encoding="utf-8")
    cuts = record_boundaries(path, 1, 10_000)
    assert cuts is not None
    inside = path.read_bytes().index("结婚\n".encode()) + len("结婚\n".encode())
    assert inside in cuts
    with pytest.raises(SegmentMisaligned) as info:
        in_segments(path, cuts)
    assert info.value.end == inside and "cases.csv" in str(info.value)


def test_no_place_to_cut_within_the_longest_segment(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    # One stray quote: every later line end has an odd count of quotes before it.
    path.write_text('no,name\n1,张"三\n' + "2,李四\n" * 200, encoding="utf-8")
    assert record_boundaries(path, 10, 100) is None
    assert record_boundaries(path, 10, 10_000) == [path.stat().st_size]


def test_segments_of_a_bom_and_gb18030(tmp_path: Path) -> None:
    rows = [["办件编号", "事项名称"]] + [[f"C{i}", "婚姻登记，补领\n结婚证"] for i in range(50)]
    for encoding in ("utf-8-sig", "gb18030"):
        path = write_rows(tmp_path / f"{encoding}.csv", rows, "\r\n", encoding)
        cuts = record_boundaries(path, 64, 10_000)
        assert cuts is not None and len(cuts) > 5
        read = in_segments(path, cuts, encoding)
        assert read == whole(path)
        assert read[0] == (1, ["办件编号", "事项名称"])  # no byte order mark on the first cell


def test_a_segment_names_the_files_line_of_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    good = "".join(f"C{i},结婚登记\r\n" for i in range(100))
    path.write_bytes(good.encode() + "C100,结婚登记\n".encode("gb18030") + b"C101,x\n")
    start = len(good.encode()) - len("C99,结婚登记\r\n".encode())
    with pytest.raises(ImportFileError, match="line 101: bytes that are not utf-8"):
        CsvSegment(path, "utf-8", ",", start, path.stat().st_size)
    field_limit = csv.field_size_limit()
    path.write_bytes(good.encode() + b'C100,"' + b"x" * (field_limit + 1) + b'"\n')
    segment = CsvSegment(path, "utf-8", ",", start, path.stat().st_size)
    with pytest.raises(ImportFileError, match="near line 101: broken CSV"):
        list(segment.batches(10))


def test_the_reader_process_imports_no_database_library() -> None:
    """It starts twice per import; SQLAlchemy and openpyxl would cost each start 0.3 s."""
    code = (
        "import sys, datetime, zoneinfo, callback.readerprocess, callback.reading\n"
        "from callback.normalise import parse_datetime\n"
        "now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)\n"
        "parse_datetime('43252.63', zoneinfo.ZoneInfo('Asia/Shanghai'), now)  # a day number\n"
        "print(sorted(m for m in ('sqlalchemy', 'openpyxl', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("encoding", "given", "count"),
    [
        ("utf-8", None, 2),
        ("utf-8-sig", None, 2),
        ("gb18030", None, 2),
        ("gbk", "CP936", 2),  # named as the user typed it
        ("utf-16", None, 1),  # a line feed's byte is half of other characters
        ("latin-1", "latin-1", 1),
    ],
)
def test_which_files_two_readers_share(
    tmp_path: Path, encoding: str, given: str | None, count: int
) -> None:
    header = ["case", "café"] if encoding == "latin-1" else ["办件编号", "事项名称"]
    path = write_rows(tmp_path / "cases.csv", [header, ["C1", "ok"]], "\n", encoding)
    source = open_source(path, given, checksum=False)
    found = source.size, source.format, source.encoding
    assert readers(*found, 3) == count
    assert readers(*found, 2) == 1 and readers(*found, 1) == 0
    assert readers(*found, None) == 0  # too small to be worth a process
    big = 100 << 20
    assert readers(big, source.format, source.encoding, None) == count
    assert readers(big, "csv", None, None) == 2  # before the encoding is known: at most


def test_a_workbook_gets_one_reader(tmp_path: Path) -> None:
    from openpyxl import Workbook

    path = tmp_path / "cases.xlsx"
    Workbook().save(path)
    source = open_source(path, checksum=False)
    assert readers(source.size, source.format, source.encoding, 3) == 1
    assert readers(100 << 20, "xlsx", None, None) == 1
