"""Importing exports: exact counts, a rejects file with reasons, audited changes, atomic files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dbsupport import frame_facts, frame_snapshot, table_rows
from sqlalchemy.engine import Engine

from callback.config import Settings
from callback.errors import ImportFileError
from callback.importing import ImportOptions, import_file
from callback.models import AuditEntry, Case, Contact, ImportBatch, Unit
from callback.synthetic import write_district

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
HEADER = [
    "办件编号",
    "事项名称",
    "实施部门",
    "所属镇街",
    "申请人",
    "联系电话",
    "办结时间",
    "办理渠道",
]


def row(
    case_no: str,
    phone: str = "13912345671",
    handled: str = "2018-06-03 10:00:00",
    unit: str = "区民政局",
    item: str = "结婚登记",
    channel: str = "窗口",
) -> list[str]:
    return [case_no, item, unit, "西溪街道", "张三", phone, handled, channel]


MESSY = [
    row("C01"),  # 2: plain
    row("C02", "１３５８７６５４３２１"),  # 3: full-width digits
    row("C03", "135 8765-4322"),  # 4: spaces and dashes
    row("C04", "+86 13587654323"),  # 5
    row("C05", "008613587654324"),  # 6
    row("C06", "0571-87654325"),  # 7: landline
    row("C07", "87654326"),  # 8: landline without its area code
    row("C08", "0571-87654327转8001"),  # 9: extension
    row("C09", "13587654328/0571-87654329"),  # 10: two numbers
    row("C10", "11111111111"),  # 11: fake
    row("C11", handled="43254.5"),  # 12: Excel day number
    row("C12", handled="2018/6/3 14:05"),  # 13
    row("C13", handled="2018年6月3日"),  # 14
    row(""),  # 15: no case number → rejected
    row("C15", handled="待定"),  # 16: no date → rejected
    row("C16", unit=""),  # 17: no unit → rejected
    row("C17", phone=""),  # 18: no number, kept with a warning
    row("C01"),  # 19: the same case as row 2 again, identical
    row("C02", "１３５８７６５４３２１", item="离婚登记"),  # 20: C02 again with another item
    row("C20", channel="自助机器人"),  # 21: unknown channel, kept blank with a warning
]


def write(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out).writerows([HEADER, *rows])
    return path


def run(engine: Engine, settings: Settings, path: Path, **options) -> object:
    options.setdefault("rejects_dir", path.parent)
    return import_file(engine, path, settings, ImportOptions(**options), now=NOW)


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def cases(engine: Engine) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        return {r.case_no: r for r in conn.execute(sa.select(Case.__table__))}


def contacts(engine: Engine, case_no: str) -> list[sa.Row]:
    c, k = Case.__table__, Contact.__table__
    with engine.connect() as conn:
        return conn.execute(
            sa.select(k).join(c, c.c.id == k.c.case_id).where(c.c.case_no == case_no)
            .order_by(k.c.position, k.c.id)
        ).all()  # fmt: skip


def test_a_messy_file_gives_exact_counts(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    result = run(engine, settings, write(tmp_path / "messy.csv", MESSY))
    counts = (result.rows_read, result.inserted, result.updated, result.unchanged, result.rejected)
    assert counts == (20, 15, 0, 1, 4)
    assert result.warnings == 4  # fake number, no number, identical repeat, unknown channel
    assert result.without_valid_phone == 2


def test_the_rejects_file_names_row_field_and_reason(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    result = run(engine, settings, write(tmp_path / "messy.csv", MESSY))
    lines = rejects(Path(result.rejects_path))
    rejected = {(r["row"], r["field"]) for r in lines if r["action"] == "rejected"}
    assert rejected == {
        ("15", "办件编号"),
        ("16", "办结时间"),
        ("17", "实施部门"),
        ("20", "case number (办件编号)"),
    }
    by_row = {r["row"]: r for r in lines}
    assert "fake" in by_row["11"]["reason"] and by_row["11"]["value"] == "11111111111"
    assert "no telephone number" in by_row["18"]["reason"]
    assert "unknown channel" in by_row["21"]["reason"]
    assert "row 3" in by_row["20"]["reason"] and "earlier row stands" in by_row["20"]["reason"]
    assert "'待定' is not a date" in by_row["16"]["reason"]
    assert [int(r["row"]) for r in lines] == sorted(int(r["row"]) for r in lines)


def test_the_database_holds_the_valid_rows(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    run(engine, settings, write(tmp_path / "messy.csv", MESSY))
    frame = cases(engine)
    assert sorted(frame) == [f"C{n:02d}" for n in (*range(1, 14), 17, 20)]
    assert frame["C02"].item_name == "结婚登记"  # the conflicting repeat did not apply
    assert frame["C20"].channel is None
    assert frame["C01"].channel == "window"
    assert frame["C11"].handled_at == datetime(2018, 6, 3, 4, 0, tzinfo=UTC)
    assert frame["C13"].handled_at == datetime(2018, 6, 2, 16, 0, tzinfo=UTC)
    expected = {
        "C01": ["+8613912345671"],
        "C02": ["+8613587654321"],
        "C03": ["+8613587654322"],
        "C04": ["+8613587654323"],
        "C05": ["+8613587654324"],
        "C06": ["+8657187654325"],
        "C07": ["+8657187654326"],
        "C08": ["+8657187654327"],
        "C09": ["+8613587654328", "+8657187654329"],
        "C10": [None],
        "C17": [],
    }
    for case_no, numbers in expected.items():
        assert [c.e164 for c in contacts(engine, case_no)] == numbers, case_no
    assert contacts(engine, "C08")[0].extension == "8001"
    assert contacts(engine, "C10")[0].validity == "fake"
    assert contacts(engine, "C10")[0].raw == "11111111111"
    assert contacts(engine, "C02")[0].raw == "13587654321"


def test_reimporting_the_same_file_changes_nothing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "messy.csv", MESSY)
    run(engine, settings, path)
    before = frame_snapshot(engine)
    again = run(engine, settings, path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 16, 4)
    assert frame_snapshot(engine) == before
    assert [batch for batch, _, _ in again.earlier] == [1]


def test_a_changed_row_is_updated_and_audited(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    run(engine, settings, write(tmp_path / "june.csv", [row("C01"), row("C02")]))
    changed = [row("C01", phone="13587650000/13912345671", unit="区卫生健康局"), row("C02")]
    result = run(engine, settings, write(tmp_path / "june-v2.csv", changed))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    with engine.connect() as conn:
        audit = conn.execute(sa.select(AuditEntry.__table__).order_by("id")).all()
    updates = [a for a in audit if a.action == "case.update"]
    assert len(updates) == 1
    assert updates[0].before == {"unit": "区民政局"}
    assert updates[0].after == {"unit": "区卫生健康局"}
    assert updates[0].actor == "tester"
    assert updates[0].reason == "import of june-v2.csv, row 2"
    added = [a for a in audit if a.action == "contact.add"]
    assert [a.after["e164"] for a in added] == ["+8613587650000"]
    assert {a.action for a in audit} >= {"unit.create", "case.update", "contact.add"}
    assert cases(engine)["C01"].unit_id != cases(engine)["C02"].unit_id


def test_a_replaced_number_is_superseded_not_deleted(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    run(engine, settings, write(tmp_path / "a.csv", [row("C01", phone="13912345671")]))
    run(engine, settings, write(tmp_path / "b.csv", [row("C01", phone="13587654321")]))
    numbers = contacts(engine, "C01")
    assert [(c.e164, c.superseded_at is not None) for c in numbers] == [
        ("+8613912345671", True),
        ("+8613587654321", False),
    ]
    with engine.connect() as conn:
        actions = conn.execute(sa.select(AuditEntry.action).order_by("id")).scalars().all()
    assert "contact.supersede" in actions and "contact.add" in actions


def test_a_file_that_fails_half_way_leaves_nothing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    run(engine, settings, write(tmp_path / "first.csv", [row("C01")]))
    before = frame_snapshot(engine)
    path = tmp_path / "broken.csv"
    good = "\n".join(",".join(r) for r in [HEADER] + [row(f"N{n:05d}") for n in range(12_000)])
    path.write_bytes((good + "\n").encode() + ",".join(row("Z")).encode("gb18030"))
    with pytest.raises(ImportFileError, match="line 12002"):
        run(engine, settings, path, chunk_rows=1000)
    assert frame_snapshot(engine) == before
    assert len(table_rows(engine, "import_batches")) == 1
    assert not (tmp_path / "broken.csv.rejects.csv").exists()
    assert not (tmp_path / "broken.csv.rejects.csv.partial").exists()


def test_a_crash_in_the_writer_leaves_nothing(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callback import framewriter

    calls = []
    original = framewriter.FrameWriter.write

    def failing(self, chunk):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return original(self, chunk)

    monkeypatch.setattr(framewriter.FrameWriter, "write", failing)
    path = write(tmp_path / "cases.csv", [row(f"N{n:04d}") for n in range(50)])
    with pytest.raises(RuntimeError, match="power cut"):
        run(engine, settings, path, chunk_rows=10)
    assert table_rows(engine, "cases") == []
    assert table_rows(engine, "import_batches") == []


def test_a_dry_run_stores_nothing(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    result = run(engine, settings, write(tmp_path / "messy.csv", MESSY), dry_run=True)
    assert result.inserted == 15 and result.batch_id is None
    assert table_rows(engine, "cases") == [] and table_rows(engine, "import_batches") == []


def test_units_and_towns_are_created_once_with_a_kind(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    rows = [row("C01", unit="区民政局"), row("C02", unit="三墩镇"), row("C03", unit="区民政局")]
    run(engine, settings, write(tmp_path / "cases.csv", rows))
    with engine.connect() as conn:
        units = dict(conn.execute(sa.select(Unit.name, Unit.kind)).all())
    assert units == {"区民政局": "department", "三墩镇": "town", "西溪街道": "town"}


def test_the_batch_records_the_file(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    result = run(engine, settings, write(tmp_path / "messy.csv", MESSY))
    with engine.connect() as conn:
        batch = conn.execute(sa.select(ImportBatch.__table__)).one()
    assert batch.file_name == "messy.csv" and len(batch.file_sha256) == 64
    assert (batch.rows_read, batch.inserted, batch.rejected, batch.warnings) == (20, 15, 4, 4)
    assert batch.actor == "tester" and batch.finished_at is not None
    assert result.batch_id == batch.id


def test_no_problems_means_no_rejects_file(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    stale = tmp_path / "clean.csv.rejects.csv"
    stale.write_text("left by an earlier run")
    result = run(engine, settings, write(tmp_path / "clean.csv", [row("C01")]))
    assert result.rejects_path is None and not stale.exists()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_chinese_excel_encodings(
    engine: Engine, settings: Settings, tmp_path: Path, encoding: str
) -> None:
    result = run(engine, settings, write(tmp_path / "gbk.csv", MESSY, encoding))
    assert result.inserted == 15
    assert cases(engine)["C01"].item_name == "结婚登记"


def test_the_reader_process_gives_the_same_frame(
    bare_engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    from callback import migrate

    migrate.upgrade(bare_engine)
    path = tmp_path / "district.csv"
    stats = write_district(path, 3000, seed=11, messy=0.2)
    inline = run(bare_engine, settings, path, processes=1, chunk_rows=700)
    frame_inline = frame_snapshot(bare_engine)
    migrate.downgrade(bare_engine, "base")
    migrate.upgrade(bare_engine)
    child = run(bare_engine, settings, path, processes=2, chunk_rows=700)
    assert frame_snapshot(bare_engine) == frame_inline
    for name in ("rows_read", "inserted", "rejected", "warnings", "without_valid_phone"):
        assert getattr(child, name) == getattr(inline, name), name
    assert child.rejected == stats.expected_rejected


def _both_ways(
    engine: Engine, settings: Settings, path: Path, **options: Any
) -> list[tuple[object, dict[str, list[tuple]], bytes]]:
    """Import ``path`` read in this process, then (on a fresh frame) by two reader processes
    in small segments: each run's result, frame (without ids: chunks differ) and rejects."""
    from callback import migrate

    runs = []
    for processes in (1, 3):
        migrate.downgrade(engine, "base")
        migrate.upgrade(engine)
        result = run(engine, settings, path, processes=processes, **options)
        rejects = Path(str(path) + ".rejects.csv")
        runs.append(
            (result, frame_facts(engine), rejects.read_bytes() if rejects.exists() else b"")
        )
    return runs


COUNTS = ("rows_read", "inserted", "updated", "unchanged", "rejected", "warnings")


def test_two_reader_processes_give_the_same_frame_and_rejects(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Two children each read every other segment of the file; rows are renumbered across
    segments, so the rejects file and the audit's row numbers must match a plain read."""
    path = tmp_path / "district.csv"
    stats = write_district(path, 3000, seed=11, messy=0.2)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    for index in range(5, len(rows), 97):  # quoted fields holding line ends, commas, quotes
        rows[index][1] = f'{rows[index][1]}\n（补办, "加急"）'
    rows.insert(1500, [])  # a blank row still counts in the row numbers after it
    # Row 11's case number again, far from it, with another item: the rejects file names row 11.
    rows.append([rows[10][0], "另一事项", *rows[10][2:]])
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(rows)
    (inline, frame_inline, rejects_inline), (two, frame_two, rejects_two) = _both_ways(
        engine, settings, path, chunk_rows=200, segment_bytes=4096
    )
    assert frame_two == frame_inline
    assert rejects_two == rejects_inline
    for name in COUNTS:
        assert getattr(two, name) == getattr(inline, name), name
    assert two.rows_read == 3001
    assert two.rejected == stats.expected_rejected + 1
    assert b"already on row 11 with other facts" in rejects_two


def test_a_misleading_quote_is_read_again_in_one_piece(
    engine: Engine, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A quote inside an unquoted field makes a line end inside a quoted field look like a
    place to cut; the segment's reader notices, and the import reads the file again whole."""
    lines = [",".join(HEADER)]
    lines += [",".join(row(f"C{i:04d}")) for i in range(400)]
    lines[3] = lines[3].replace("张三", '张"三')
    for i in range(5, 400, 40):
        lines[i] = lines[i].replace("结婚登记", '"结婚\n登记"')
    path = tmp_path / "quotes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    caplog.set_level("INFO", logger="callback.importing")
    (inline, frame_inline, rejects_inline), (two, frame_two, rejects_two) = _both_ways(
        engine, settings, path, segment_bytes=1024
    )
    assert "reading the file in one piece" in caplog.text
    assert (frame_two, rejects_two) == (frame_inline, rejects_inline)
    assert two.inserted == inline.inserted == 400
    with engine.connect() as conn:  # the abandoned attempt left no batch behind
        assert conn.execute(sa.select(sa.func.count()).select_from(ImportBatch)).scalar() == 1


def test_bad_bytes_in_a_late_segment_fail_the_import_with_their_line(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "cases.csv"
    # Past the 1 MiB that detection reads, so the file looks like UTF-8 until then.
    good = "\n".join(",".join(r) for r in [HEADER] + [row(f"C{i:05d}") for i in range(16000)])
    path.write_bytes(good.encode() + b"\n" + ",".join(row("C9999")).encode("gb18030"))
    before = frame_snapshot(engine)
    messages = []
    for processes in (1, 3):
        with pytest.raises(ImportFileError) as info:
            run(engine, settings, path, processes=processes, segment_bytes=65536)
        messages.append(str(info.value))
        assert frame_snapshot(engine) == before
    assert messages[0] == messages[1]
    assert "line 16002: bytes that are not utf-8" in messages[1]


def test_a_generated_district_imports_with_the_expected_rejects(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "district.xlsx"
    stats = write_district(path, 600, seed=4, messy=0.25)
    result = run(engine, settings, path)
    assert result.rows_read == 600
    assert result.rejected == stats.expected_rejected
    assert result.inserted == 600 - stats.expected_rejected
    assert result.sheet == "办件明细"


@pytest.mark.parametrize("processes", [2, 3])
def test_reader_processes_started_early_end_with_the_import(
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: int,
) -> None:
    """Readers start before the file is opened, to overlap its checksum; whether the import
    succeeds, fails on its header or turns out to need fewer of them, none is left running."""
    import callback.importing
    import callback.readerprocess

    started: list[Any] = []

    def spawn(count: int) -> list[Any]:
        children = callback.readerprocess.spawn(count)
        started.extend(children)
        return children

    monkeypatch.setattr(callback.importing, "spawn", spawn)
    good = write(tmp_path / "good.csv", [row(f"C{i:03d}") for i in range(300)])
    assert run(engine, settings, good, processes=processes, segment_bytes=2048).inserted == 300
    utf16 = write(tmp_path / "utf16.csv", [row(f"D{i:03d}") for i in range(30)], "utf-16")
    assert run(engine, settings, utf16, processes=processes).inserted == 30  # one reader of two
    headless = tmp_path / "headless.csv"
    headless.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportFileError):
        run(engine, settings, headless, processes=processes)
    assert len(started) == 3 * (processes - 1)
    assert all(child.poll() is not None for child in started)
