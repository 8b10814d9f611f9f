"""BulkInsert: rows given as tuples or as columns land the same, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from callback.bulk import BulkInsert, _blocks

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


@given(count=st.integers(0, 5_000), per=st.integers(1, 700))
def test_blocks_cover_the_rows_in_few_sizes(count: int, per: int) -> None:
    blocks = list(_blocks(count, per))
    assert [i for start, stop in blocks for i in range(start, stop)] == list(range(count))
    sizes = {stop - start for start, stop in blocks}
    assert all(0 < size <= per for size in sizes)
    # Full blocks, then at most one block of each power of two below ``per``.
    assert len(sizes) <= 1 + per.bit_length()


def test_chunks_of_many_sizes_share_a_few_statements(bare_engine: Engine, table: sa.Table) -> None:
    """Each chunk of an import ends in a block of its own size; SQLite would compile each."""
    with bare_engine.begin() as conn:
        bulk = BulkInsert(conn)
        start = 1
        for size in range(900, 1_000, 7):
            ids = range(start, start + size)
            bulk.columns(table, ("id", "name"), [ids, [str(i) for i in ids]], CONSTANTS)
            start += size
    assert len(stored(bare_engine)) == start - 1
    if bare_engine.dialect.name == "sqlite":
        assert len(bulk._statements) <= 10  # 500 rows, and the powers of two below


def test_the_collector_comes_back_as_it_was() -> None:
    import gc

    from callback.bulk import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("an import that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # paused by someone else: left paused
    finally:
        gc.enable()
