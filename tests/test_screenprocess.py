"""The screening process: a share comes back whole, a failure comes back as an exception."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from callback.screening import screen_share
from callback.screenprocess import ScreeningFailed, screening_child

ROWS = [(1, 0, "+8613900000001"), (2, 0, "+8613900000001"), (3, 1, None), (4, 1, "+8613900000004")]


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "frame.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE frame (case_id INTEGER, stratum INTEGER, number TEXT)")
        conn.executemany("INSERT INTO frame VALUES (?, ?, ?)", ROWS)
    return str(path)


def test_the_child_s_share_is_the_one_screened_here(database: str) -> None:
    barred, recent = ["+8613900000004"], []
    with screening_child(
        database, "SELECT * FROM frame WHERE case_id > ?", (0,), barred, recent, True
    ) as share:
        theirs = share()
    mine = screen_share(ROWS, set(barred), set(recent), True)
    assert theirs == mine
    assert theirs.shared == {"+8613900000001": [1, 2]} and theirs.do_not_call == 1


def test_the_child_s_exception_is_raised_here(database: str) -> None:
    with screening_child(database, "SELECT * FROM nowhere", (), [], [], True) as share:
        with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
            share()


def test_the_child_never_writes(database: str) -> None:
    sql = "INSERT INTO frame VALUES (9, 9, NULL) RETURNING case_id, stratum, number"
    with screening_child(database, sql, (), [], [], True) as share:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            share()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM frame").fetchone() == (len(ROWS),)


def test_a_child_that_dies_is_a_clear_error(database: str, monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with screening_child(database, "SELECT * FROM frame", (), [], [], True) as share:
        with pytest.raises(ScreeningFailed, match=r"ended unexpectedly \(exit code 1\)"):
            share()
