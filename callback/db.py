"""Engine and connection factories; nothing connects at import time."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from callback.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str | URL) -> URL:
    """Return ``url`` with PostgreSQL pointed at psycopg 3, the driver callback is tested on."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine configured the way callback needs the database to behave.

    SQLite gets WAL (readers never block the writer), foreign keys, a busy timeout, and explicit
    transaction control so that ``immediate()`` can take the write lock at BEGIN. PostgreSQL
    connections are pinged at checkout and run prepared statements on generic plans (see
    ``GENERIC_PLANS``).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {})
        kwargs["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "postgresql":
            _configure_postgresql(engine)
    return engine


#: psycopg prepares a statement once it has run five times on a connection; PostgreSQL then
#: still plans it again for each call's values (a custom plan) unless the generic plan looks
#: cheaper to it. The statements callback repeats are lookups by key and the claim, whose
#: generic plans walk the same indexes (the claim's WHERE spells out state = 'open' for its
#: partial indexes): planning the claim anew took 0.29 ms of the server's time a claim, twice
#: what running it takes (0.11 ms generic, 0.14 ms custom). Statements run once (reports,
#: the draw, imports) are never prepared, so they are still planned for their values.
GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a session setting, outside any transaction
        try:
            cursor = dbapi_connection.cursor()  # psycopg 3, and psycopg2 if a URL names it
            cursor.execute(GENERIC_PLANS)
            cursor.close()
        finally:
            dbapi_connection.autocommit = autocommit


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and on its own terms; take that over (the recipe from
    # SQLAlchemy's SQLite dialect documentation) so BEGIN and BEGIN IMMEDIATE are ours to choose.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        in_memory = engine.url.database in (None, "", ":memory:")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL is durable in WAL mode except for the last transactions before a power cut.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


# Re-entrant, so that a nested write transaction fails as SQLite would (busy timeout) rather
# than hanging on the lock forever.
_writer_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_writer_locks_guard = threading.Lock()


@contextmanager
def immediate(engine: Engine, commit: bool = True) -> Iterator[Connection]:
    """Open a write transaction that holds the write lock from its first statement.

    On SQLite this is ``BEGIN IMMEDIATE``, so two writers queue at BEGIN instead of one failing
    with "database is locked" when it upgrades a read lock. Other databases lock per row.
    The transaction commits at the end unless ``commit`` is False (a dry run); an exception
    always rolls it back.

    Threads of one process also queue on a lock before BEGIN: SQLite's busy handler sleeps
    up to 100 ms between tries, and 32 claiming threads spent most of their time asleep.
    Separate processes still queue through the busy timeout.
    """
    if is_sqlite(engine):
        with _writer_locks_guard:
            lock = _writer_locks.setdefault(engine, threading.RLock())
        with lock, _transaction(engine, commit) as conn:
            yield conn
    else:
        with _transaction(engine, commit) as conn:
            yield conn


@contextmanager
def _transaction(engine: Engine, commit: bool) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        transaction = conn.begin()
        try:
            yield conn
        except BaseException:
            transaction.rollback()
            raise
        if commit:
            transaction.commit()
        else:
            transaction.rollback()


@contextmanager
def bulk_pragmas(conn: Connection) -> Iterator[None]:
    """Give a long bulk write on SQLite a page cache large enough for its index pages."""
    if not is_sqlite(conn):
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    # Negative means KiB: 64 MiB keeps the indexes of a million-row import in memory.
    conn.exec_driver_sql("PRAGMA cache_size=-65536")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before or -2000)}")
