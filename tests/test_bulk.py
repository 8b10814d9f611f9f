"""BulkInsert: rows given as tuples or as columns land the same, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.bulk import BulkInsert

metadata = sa.MetaData()
scratch = sa.Table(
    "bulk_scratch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40)),
    sa.Column("amount", sa.BigInteger),
    sa.Column("note", sa.String(40)),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
)


@pytest.fixture
def table(bare_engine: Engine) -> sa.Table:
    metadata.create_all(bare_engine)
    return scratch


def stored(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(scratch).order_by(scratch.c.id))]


# More rows than one SQLite statement takes (500), and a last statement of another size.
ROWS = [
    (i, f"名字{i}" if i % 7 else "O'Brien", -(2**62) + i, None if i % 3 else "x")
    for i in range(1, 1_234)
]
CONSTANTS = {"batch": 7, "source": "it's"}


def test_columns_insert_what_rows_insert(bare_engine: Engine, table: sa.Table) -> None:
    names = ("id", "name", "amount", "note")
    with bare_engine.begin() as conn:
        BulkInsert(conn)(table, names, ROWS[:600], CONSTANTS)
        columns = [list(column) for column in zip(*ROWS[600:], strict=True)]
        columns[0] = range(601, 1_234)  # ids as allocate_ids gives them on SQLite
        BulkInsert(conn).columns(table, names, columns, CONSTANTS)
    assert stored(bare_engine) == [(*row, 7, "it's") for row in ROWS]


def test_columns_of_different_lengths_are_refused(bare_engine: Engine, table: sa.Table) -> None:
    with bare_engine.begin() as conn, pytest.raises(ValueError, match="different lengths"):
        BulkInsert(conn).columns(table, ("id", "name"), [[1, 2], ["a"]], CONSTANTS)


def test_a_database_error_comes_as_sqlalchemys(bare_engine: Engine, table: sa.Table) -> None:
    with bare_engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        BulkInsert(conn).columns(table, ("id", "name"), [[1, 1], ["a", "b"]], CONSTANTS)
    assert stored(bare_engine) == []
