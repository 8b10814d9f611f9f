"""callback demo: a small district called to its end, checked against its own database.

The demo runs once for the module (a few seconds); each test reads what it left behind.
The demo is SQLite by definition (DIR/callback.db), so these tests do not use the
PostgreSQL fixture even when CALLBACK_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from callback.cli import cli
from callback.db import create_engine
from callback.decisions import is_callable
from callback.demo import CAMPAIGN, MARKER, START, prepare_directory
from callback.dispositions import Category, Disposition
from callback.models import CallAttempt, Campaign, Case, QueueItem, Response, Unit, table
from callback.queues import rules_from_json
from callback.rates import proportion

CASES = 300


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Result, Path, sa.Engine]]:
    directory = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(directory), "--cases", str(CASES), "--seed", "3"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{directory / 'callback.db'}")
    yield result, directory, engine
    engine.dispose()


def _rows(engine: sa.Engine, query: sa.Select[Any]) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(query))


def test_every_sampled_case_is_called_to_its_end(demo) -> None:
    _, _, engine = demo
    items = table(QueueItem)
    (rules_json, deadline) = _rows(
        engine, sa.select(table(Campaign).c.rules, table(Campaign).c.deadline)
    )[0]
    limit = rules_from_json(rules_json, deadline).max_attempts_per_case
    rows = _rows(engine, sa.select(items.c.state, items.c.final_disposition, items.c.attempts))
    assert len(rows) == CASES
    assert all(
        (state == "finished" and final is not None) or attempts >= limit
        for state, final, attempts in rows
    )


def test_no_call_is_placed_outside_the_calling_window(demo) -> None:
    _, _, engine = demo
    campaign = table(Campaign)
    rules_json, deadline = _rows(engine, sa.select(campaign.c.rules, campaign.c.deadline))[0]
    rules = rules_from_json(rules_json, deadline)
    placed = [at for (at,) in _rows(engine, sa.select(table(CallAttempt).c.placed_at))]
    assert len(placed) >= CASES
    assert all(at is not None and at >= START and is_callable(rules, at) for at in placed)


def _printed_units(output: str) -> dict[str, list[str]]:
    """The unit table's rows as printed: unit name -> the other cells, blanks left out."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("单位 unit")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = line.split()
        if cells[:2] == ["合计", "total"]:
            cells = ["合计 total", *cells[2:]]
        rows[cells[0]] = cells[1:]
    return rows


def _pct(k: int, n: int) -> list[str]:
    if n == 0:
        return []
    p = proportion(k, n)
    assert p.low is not None and p.high is not None
    return [f"{100 * k / n:.1f}", f"{p.low * 100:.1f}–{p.high * 100:.1f}"]


def _expected_units(engine: sa.Engine) -> dict[str, list[str]]:
    """Each unit's line computed from the database on its own terms: completes as
    docs/reports.md defines them (cases closed as 1.1), the Wilson interval over their
    answers, and AAPOR RR1 from the final codes."""
    qi, r, u, a = table(QueueItem), table(Response), table(Unit), table(CallAttempt)
    calls = Counter(
        name
        for (name,) in _rows(
            engine,
            sa.select(u.c.name).select_from(
                a.join(qi, qi.c.id == a.c.queue_item_id).join(u, u.c.id == qi.c.unit_id)
            ),
        )
    )
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    query = sa.select(
        u.c.name, qi.c.state, qi.c.final_disposition, r.c.realised, r.c.satisfied
    ).select_from(qi.join(u, u.c.id == qi.c.unit_id).outerjoin(r, r.c.queue_item_id == qi.c.id))
    for name, state, final, realised, satisfied in _rows(engine, query):
        for key in (name, "合计 total"):
            t = tally[key]
            t["sampled"] += 1
            t["finished"] += state == "finished"
            category = Disposition(final).category
            t["I"] += category is Category.I
            t["in_rr1"] += category is not Category.NE
            if final == "1.1":  # a complete interview is a case closed as 1.1, nothing else
                t["completes"] += 1
                for rate, value in (("r", realised), ("s", satisfied)):
                    if value is not None:
                        t[rate + "n"] += 1
                        t[rate + "k"] += bool(value)
    calls["合计 total"] = sum(calls.values())
    expected = {}
    for name, t in tally.items():
        rr1 = [f"{100 * t['I'] / t['in_rr1']:.1f}"] if t["in_rr1"] else []
        expected[name] = [
            f"{t['sampled']:,}", f"{t['finished']:,}", f"{calls[name]:,}", f"{t['completes']:,}",
            *_pct(t["rk"], t["rn"]), *_pct(t["sk"], t["sn"]), *rr1,
        ]  # fmt: skip
    return expected


def test_the_printed_rates_are_the_databases(demo) -> None:
    result, _, engine = demo
    assert _printed_units(result.stdout) == _expected_units(engine)


def test_the_completes_are_the_cases_closed_as_complete(demo) -> None:
    result, _, engine = demo
    qi, r = table(QueueItem), table(Response)
    closed_complete = _rows(
        engine, sa.select(sa.func.count()).where(qi.c.final_disposition == Disposition.COMPLETE)
    )[0][0]
    printed = _printed_units(result.stdout)["合计 total"][3]
    assert int(printed.replace(",", "")) == closed_complete > 0
    # At the root: the survey engine marks no "not me" or refusal complete, so a complete
    # response belongs to a case closed as 1.1, and such a case to nothing else.
    flagged = _rows(
        engine,
        sa.select(qi.c.final_disposition, sa.func.count())
        .join(r, r.c.queue_item_id == qi.c.id)
        .where(r.c.complete.is_(True))
        .group_by(qi.c.final_disposition),
    )
    assert dict(flagged) == {"1.1": closed_complete}
    screened = _rows(
        engine,
        sa.select(sa.func.count())
        .select_from(qi.join(r, r.c.queue_item_id == qi.c.id))
        .where(qi.c.final_disposition.in_(["2.291", "2.11", "2.112"])),
    )[0][0]
    assert screened > 0  # the demo has "not me" and refusals whose answers were kept


def test_progress_is_shown_on_the_virtual_clock(demo) -> None:
    result, _, _ = demo
    assert re.search(r"2018-10-08 Mon 09:00 +\d+ calls +\d+ of 300 cases finished", result.stderr)
    assert "2018-10-08 Mon 09:00" not in result.stdout


def test_the_weekly_report_and_the_corrected_frame_are_written(demo) -> None:
    result, directory, engine = demo
    assert (directory / MARKER).is_file()
    weekly = sorted(p.name for p in (directory / "reports").iterdir())
    assert weekly == ["weekly-2018-10-04.html", "weekly-2018-10-04.xlsx"]
    with (directory / "frame-corrected.csv").open(encoding="utf-8-sig", newline="") as f:
        exported = list(csv.reader(f))
    (cases,) = _rows(engine, sa.select(sa.func.count()).select_from(table(Case)))[0]
    assert len(exported) - 1 == cases > 0
    assert (directory / "district.csv.rejects.csv").is_file()
    for name in weekly:
        assert f"reports/{name}" in result.stdout


def test_the_next_commands_name_the_demo_database(demo) -> None:
    result, directory, _ = demo
    database = f"sqlite:///{directory / 'callback.db'}"
    for command in (f"report rates --campaign {CAMPAIGN}", "queue status", "corrections list",
                    "agent --campaign"):  # fmt: skip
        assert f"callback --database {database} " in result.stdout
        assert command in result.stdout


def test_nothing_personal_is_printed(demo) -> None:
    result, directory, engine = demo
    units = {name for (name,) in _rows(engine, sa.select(table(Unit).c.name))}
    with (directory / "district.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    names = {row[k] for row in rows for k in ("申请人", "联系人") if len(row[k]) >= 2}
    names = {n for n in names if not any(n in unit for unit in units)}
    assert len(names) > 100
    shown = [n for n in names if n in result.output]
    assert shown == []
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", result.output)  # no mobile number


def test_a_folder_no_demo_made_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "thesis.docx").write_text("years of work", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path), "--cases", "10"])
    assert result.exit_code == 1
    assert "not a folder an earlier demo made" in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "thesis.docx").read_text(encoding="utf-8") == "years of work"
    assert not (tmp_path / MARKER).exists()


def test_a_file_is_not_a_demo_folder(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.write_text("a file", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target)])
    assert result.exit_code == 2 and "is a file" in result.output  # a bad --dir value
    assert target.read_text(encoding="utf-8") == "a file"


def test_an_earlier_demo_folder_starts_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    prepare_directory(folder)
    (folder / "callback.db").write_bytes(b"old")
    (folder / "reports").mkdir()
    prepare_directory(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]


def test_the_shell_demo_of_earlier_versions_left_a_demo_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    for name in ("callback.db", "district.csv", "district.csv.rejects.csv"):
        (folder / name).write_bytes(b"old")
    prepare_directory(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]
