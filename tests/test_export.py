"""The corrected frame export: every case in case-number order, current facts and each
number's verification, through the exporter hook; nothing depends on survey answers."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import phonenumbers
import pytest
import sqlalchemy as sa
from dbsupport import PG_URL, drop_postgres_schema, fresh_postgres_schema
from sqlalchemy.engine import Engine
from test_corrections import (
    KNOWS_APPLICANT,
    LATER,
    NOW,
    SATISFIED,
    A,
    B,
    C,
    add_case,
    builtin_plugins,  # noqa: F401 - an autouse fixture: the built-in exporters
    call,
    commands,  # noqa: F401 - a fixture
    rows,
    world,
)

from callback import corrections, hookimpl, migrate, plugins
from callback.config import Settings
from callback.db import create_engine
from callback.export import FrameRow, FrameRows, export_frame, header, national
from callback.importing import ImportOptions, import_file
from callback.models import CallAttempt, Case, Contact, QueueItem, Response, Unit, table
from callback.phones import PhoneParser

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 本人, my case, went three times, very dissatisfied, too slow, a complaint, …
DISSATISFIED = ["1", "1", "3", "5", "2", "窗口让我跑了三趟", "2", "2", "2"]


def export(engine: Engine, format_name: str = "csv") -> bytes:
    out = io.BytesIO()
    export_frame(engine, format_name, out, SHANGHAI)
    return out.getvalue()


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def attempt(engine: Engine, contact_id: int, disposition: str, finished: bool) -> None:
    """An ended attempt on a contact, and its case's queue item finished or not."""
    with engine.begin() as conn:
        contact = conn.execute(
            sa.select(table(Contact)).where(table(Contact).c.id == contact_id)
        ).one()  # fmt: skip
        item = conn.execute(
            sa.select(table(QueueItem)).where(table(QueueItem).c.case_id == contact.case_id)
        ).one()  # fmt: skip
        conn.execute(
            sa.insert(table(CallAttempt)).values(
                queue_item_id=item.id, campaign_id=item.campaign_id, contact_id=contact_id,
                number=contact.e164 or contact.raw, worker="agent1", dialer="manual",
                state="ended", created_at=NOW, placed_at=NOW, ended_at=LATER, outcome="x",
                disposition=disposition,
            )
        )  # fmt: skip
        if finished:
            conn.execute(
                sa.update(table(QueueItem))
                .where(table(QueueItem).c.id == item.id)
                .values(state="finished", due_at=None, final_disposition=disposition)
            )


def contact_id(engine: Engine, case_no: str, position: int = 0) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT contacts.id FROM contacts JOIN cases ON cases.id = contacts.case_id "
                    "WHERE case_no = :case_no AND position = :position"
                ),
                {"case_no": case_no, "position": position},
            ).scalar_one()
        )


# -- content --------------------------------------------------------------------------------


def test_every_case_in_case_number_order_with_its_facts(engine: Engine) -> None:
    world(engine, cases=[("C2", (A,)), ("C10", ()), ("B7", ("13800000000", C))])
    with engine.begin() as conn:  # a case of another unit, not sampled, with a town
        unit = conn.execute(
            sa.insert(table(Unit)).values(name="区市场监管局", kind="department", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()  # fmt: skip
        town = conn.execute(
            sa.insert(table(Unit)).values(name="西溪街道", kind="town", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()  # fmt: skip
        add_case(conn, "A1", (B,), unit, town_id=town, item_code="330100-1", channel="online",
                 applicant_type="company", applicant_name="杭州某某有限公司",
                 contact_name="李四")  # fmt: skip
    table_ = read_csv(export(engine))
    assert table_[0] == header(2)
    assert [r[0] for r in table_[1:]] == ["A1", "B7", "C10", "C2"]  # byte order, every case
    a1 = table_[1]
    assert a1[:10] == ["A1", "结婚登记", "330100-1", "区市场监管局", "西溪街道", "杭州某某有限公司",
                       "法人", "李四", "2026-05-20 09:00:00", "网上"]  # fmt: skip
    assert a1[10:] == ["13587654321", "未回访", "", "", "", ""]
    # The fake number is kept, said to be invalid, and put after the usable one.
    assert table_[2][10:] == ["0571-87654321", "未回访", "", "13800000000", "号码无效", ""]
    assert table_[3][10:] == ["", "", "", "", "", ""]  # no number at all: still there
    assert table_[4][3:5] == ["区民政局", ""] and table_[4][9] == "窗口"


def test_verification_statuses_and_the_dates_they_were_checked(engine: Engine) -> None:
    cases = [("V1", (A,)), ("V2", ("+8613900000002",)), ("V3", ("+8613900000003",)),
             ("V4", ("+8613900000004",)), ("V5", ("+8613900000005",)),
             ("V6", ("+8613900000006",))]  # fmt: skip
    campaign = world(engine, cases=cases)
    call(engine, campaign, SATISFIED)  # V1: the applicant answered
    call(engine, campaign, KNOWS_APPLICANT)  # V2: someone else, who gave the right number
    corrections.apply_pending(engine, LATER, "office")
    attempt(engine, contact_id(engine, "V3"), "3.13", finished=True)  # never answered
    attempt(engine, contact_id(engine, "V3"), "3.12", finished=True)
    attempt(engine, contact_id(engine, "V4"), "3.13", finished=False)  # may yet be answered
    attempt(engine, contact_id(engine, "V5"), "2.292", finished=True)  # 空号
    attempt(engine, contact_id(engine, "V6"), "2.112", finished=True)  # answered, refused
    got = {r[0]: r[10:] for r in read_csv(export(engine))[1:]}
    called, later = "2026-06-10", "2026-06-10"  # 10:01 and 11:00 in Shanghai
    assert got["V1"] == ["13912345671", "已核实", called, "", "", ""]
    assert got["V2"] == ["13587654321", "已更正", called, "13900000002", "号码错误", called]
    assert got["V3"] == ["13900000003", "无法接通", later, "", "", ""]
    assert got["V4"] == ["13900000004", "未回访", "", "", "", ""]
    assert got["V5"] == ["13900000005", "号码错误", later, "", "", ""]
    assert got["V6"] == ["13900000006", "未回访", "", "", "", ""]


def test_superseded_numbers_are_not_current(engine: Engine) -> None:
    world(engine, cases=[("C1", (A, B))])
    with engine.begin() as conn:
        conn.execute(
            sa.update(table(Contact)).where(table(Contact).c.e164 == A).values(superseded_at=NOW)
        )
    (row,) = read_csv(export(engine))[1:]
    assert row[10:] == ["13587654321", "未回访", ""]


def test_xlsx_holds_the_same_cells_typed(engine: Engine) -> None:
    world(engine, cases=[("C1", (A,)), ("=1+1", (B,))])
    corrections.propose(engine, "C1", "phone", "0571-87654321转8001", "office", NOW)
    book = openpyxl.load_workbook(io.BytesIO(export(engine, "xlsx")), read_only=True)
    sheet = book["样本框"]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    as_csv = read_csv(export(engine))
    assert values[0] == as_csv[0]
    assert values[1][0] == "=1+1"  # text, never a formula
    c1 = values[2]
    assert c1[8] == datetime(2026, 5, 20, 9, 0)  # a real time, in Shanghai
    # The number the office learnt comes first: it is the one to dial.
    assert c1[10:13] == ["0571-87654321转8001", "已更正", datetime(2026, 6, 10)]
    assert c1[13:15] == ["13912345671", "未回访"] and c1[15:] in ([], [None])


def test_xlsx_continues_on_a_new_sheet_when_one_is_full(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callback import export as module

    monkeypatch.setattr(module, "XLSX_SHEET_ROWS", 3)
    world(engine, cases=[(f"C{n}", ()) for n in range(5)])
    book = openpyxl.load_workbook(io.BytesIO(export(engine, "xlsx")), read_only=True)
    sheets = [[r[0] for r in book[name].iter_rows(values_only=True)] for name in book.sheetnames]
    assert book.sheetnames == ["样本框", "样本框2", "样本框3"]
    assert sheets == [["办件编号", "C0", "C1"], ["办件编号", "C2", "C3"], ["办件编号", "C4"]]


# -- integrity ------------------------------------------------------------------------------


@pytest.fixture
def other_engine(tmp_path: Path) -> Iterator[Engine]:
    """A second, empty database at the newest revision: the same frame, another survey."""
    if PG_URL:
        schema, url = fresh_postgres_schema()
    else:
        url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if PG_URL:
        drop_postgres_schema(schema)


def test_what_citizens_answered_changes_nothing_in_the_export(
    engine: Engine, other_engine: Engine
) -> None:
    cases = [(f"C{n:02d}", (f"+86139{n:08d}",)) for n in range(6)]
    for database, answers in ((engine, SATISFIED), (other_engine, DISSATISFIED)):
        campaign = world(database, cases=cases)
        for _ in cases:
            call(database, campaign, answers)
        corrections.apply_pending(database, LATER, "office")
    satisfied, dissatisfied = rows(engine, Response), rows(other_engine, Response)
    # The two surveys really differ: every realised and satisfied flag is flipped.
    assert {(r.realised, r.satisfied) for r in satisfied} == {(True, True)}
    assert {(r.realised, r.satisfied) for r in dissatisfied} == {(False, False)}
    assert len(satisfied) == len(dissatisfied) == len(cases)
    for format_name in ("csv", "xlsx"):
        if format_name == "xlsx":
            first = _cells(export(engine, "xlsx"))
            second = _cells(export(other_engine, "xlsx"))
        else:
            first, second = export(engine), export(other_engine)
        assert first == second, format_name
    assert len(read_csv(export(engine))) == len(cases) + 1


@pytest.mark.parametrize("format_name", ["csv", "xlsx"])
def test_the_export_reads_back_in_with_the_same_facts(
    engine: Engine, other_engine: Engine, tmp_path: Path, format_name: str
) -> None:
    world(engine, cases=[("C1", (A, C)), ("C2", ("13800000000",)), ("C3", ())])
    corrections.propose(engine, "C1", "contact", "王五", "office", NOW)
    path = tmp_path / f"frame.{format_name}"
    path.write_bytes(export(engine, format_name))
    settings = Settings(database_url=str(other_engine.url), actor="evaluator")
    result = import_file(other_engine, path, settings, ImportOptions(), NOW)
    assert (result.inserted, result.rejected) == (3, 0)
    numbers = lambda table_: [[r[0], *r[1:10], *r[10::3]] for r in table_]  # noqa: E731
    assert numbers(read_csv(export(other_engine))) == numbers(read_csv(export(engine)))


def _cells(data: bytes) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return [tuple(r) for name in book.sheetnames for r in book[name].iter_rows(values_only=True)]


# -- the hook and the command ---------------------------------------------------------------


def _register(exporter: Any, name: str = "test-format") -> None:
    plugins.load_plugins()
    plugin = SimpleNamespace(
        register_frame_exporters=hookimpl(lambda register: register(name, exporter))
    )
    plugins.pm.register(plugin, name="callback-test-exporter")


@pytest.mark.usefixtures("commands")
def test_a_plugin_format_registered_through_the_hook_is_used(
    engine: Engine, cli, tmp_path: Path
) -> None:
    world(engine, cases=[("C2", (A,)), ("C1", (B,))])
    seen: list[Any] = []

    def exporter(rows: Any, out: Any) -> None:
        seen.append((type(rows), rows.cases, rows.max_contacts))
        for row in rows:
            assert isinstance(row, FrameRow)
            out.write(f"{row.case_no};{row.contacts[0].e164};{row.handled_at:%H:%M}\n".encode())

    _register(exporter)
    result = cli("frame", "export", "--format", "test-format", "--out", str(tmp_path / "f.txt"))
    assert result.exit_code == 0, result.output
    assert seen == [(FrameRows, 2, 1)]
    assert (tmp_path / "f.txt").read_text() == f"C1;{B};09:00\nC2;{A};09:00\n"
    assert "2 cases with 2 current numbers (test-format)" in result.output
    assert "139" not in result.output  # the command prints no number


@pytest.mark.usefixtures("commands")
def test_an_exporter_that_leaves_cases_out_fails_and_writes_no_file(
    engine: Engine, cli, tmp_path: Path
) -> None:
    world(engine, cases=[("C1", (A,)), ("C2", (B,))])

    def only_the_first(rows: Any, out: Any) -> None:
        for row in rows:
            out.write(row.case_no.encode())
            break

    _register(only_the_first, "partial")
    out = tmp_path / "frame.txt"
    result = cli("frame", "export", "--format", "partial", "--out", str(out))
    assert result.exit_code == 1 and "wrote 1 of the frame's 2 cases" in result.output
    assert not out.exists() and list(tmp_path.glob("*.partial")) == []


@pytest.mark.usefixtures("commands")
def test_the_format_follows_the_file_name_and_unknown_ones_are_refused(
    engine: Engine, cli, tmp_path: Path
) -> None:
    world(engine)
    assert cli("frame", "export", "--out", str(tmp_path / "f.xlsx")).exit_code == 0
    assert (tmp_path / "f.xlsx").read_bytes()[:2] == b"PK"
    assert cli("frame", "export", "--out", str(tmp_path / "f.txt")).exit_code == 0
    assert (tmp_path / "f.txt").read_bytes().startswith(b"\xef\xbb\xbf")
    unknown = cli("frame", "export", "--format", "pdf", "--out", str(tmp_path / "f.pdf"))
    assert unknown.exit_code == 2 and "csv" in unknown.output and "xlsx" in unknown.output


def test_rows_are_streamed_not_loaded_whole(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callback import export as module

    monkeypatch.setattr(module, "BATCH_ROWS", 100)
    with engine.begin() as conn:
        unit = conn.execute(
            sa.insert(table(Unit)).values(name="区民政局", kind="department", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()  # fmt: skip
    peaks = []
    done = 0
    for size in (1_000, 10_000):
        _bulk_cases(engine, unit, done, size - done)
        done = size
        peaks.append(_peak_of_reading(engine))
    # Ten times the cases may cost a little more (the database's own caches), never ten times.
    assert peaks[1] < 3 * peaks[0], peaks


class _Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _peak_of_reading(engine: Engine) -> int:
    def discard(rows: Any, out: Any) -> None:
        for _ in rows:
            pass

    plugins.reset_for_tests()
    _register(discard, "discard")
    tracemalloc.start()
    try:
        export_frame(engine, "discard", _Sink(), SHANGHAI)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bulk_cases(engine: Engine, unit: int, start: int, count: int) -> None:
    handled = datetime(2026, 5, 20, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table(Case)),
            [dict(id=start + n + 1, case_no=f"S{start + n:07d}", item_name="结婚登记" * 5,
                  unit_id=unit, applicant_name="张三", contact_name="张三",
                  applicant_type="person", handled_at=handled + timedelta(minutes=n))
             for n in range(count)],
        )  # fmt: skip
        conn.execute(
            sa.insert(table(Contact)),
            [dict(case_id=start + n + 1, position=0, raw=f"139{start + n:08d}",
                  e164=f"+86139{start + n:08d}", kind="mobile", validity="valid",
                  source="import", created_at=NOW) for n in range(count)],
        )  # fmt: skip


def _slow_national(e164: str) -> str:
    text = phonenumbers.format_number(
        phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    area, _, rest = text.partition(" ")
    return f"{area}-{rest.replace(' ', '')}" if area.startswith("0") else text.replace(" ", "")


def test_numbers_are_written_as_phonenumbers_would_for_every_area_code() -> None:
    parser = PhoneParser()
    checked = 0
    for prefix in [str(n) for n in range(10, 30)] + [str(n) for n in range(300, 1000)]:
        for local in ("87654321", "8765432"):
            (phone,) = parser.parse_cell(f"0{prefix}{local}")
            if phone.e164 is None or phone.kind != "landline":
                continue
            assert national(phone.e164, phone.kind) == _slow_national(phone.e164), phone
            checked += 1
    for mobile in ("13912345671", "15087654321", "19987654321", "17087654321"):
        (phone,) = parser.parse_cell(mobile)
        assert phone.e164 is not None and phone.kind == "mobile", phone
        assert national(phone.e164, phone.kind) == _slow_national(phone.e164) == mobile
    assert checked > 300  # every area code phonenumbers knows, in two lengths
    assert national("+864008208820", "other") == "4008208820"
