"""Alembic environment: migrations run on callback's own engine and metadata."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from callback.config import load_settings
from callback.db import create_engine, is_sqlite, normalise_url
from callback.errors import DatabaseError
from callback.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations are frozen history: they spell out plain SQLAlchemy types instead of importing
    # callback's models, which change.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


#: Indexes created by migrations in a form the models cannot state for every database
#: (per-dialect expressions and partial indexes); autogenerate and `alembic check` skip them.
DATABASE_ONLY_INDEXES = frozenset(
    {f"ix_queue_items_claim_slot{k}" for k in range(4)}
    | {"ix_queue_items_appointments", "ix_queue_items_held"}
)


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "index" and name in DATABASE_ONLY_INDEXES)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        include_object=_include_object,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Turn SQLite's foreign keys off for the migration, and back to what they were after.

    Batch mode copies a table, drops the old one and renames the copy; with foreign keys on, the
    drop fails (or checks every referencing row) while other tables still point at it. This is
    Alembic's documented remedy. The PRAGMA does nothing inside a transaction, so it goes to the
    DBAPI connection directly: a statement through ``connection`` would autobegin first.
    """
    if not is_sqlite(connection):
        yield
        return
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    before = dbapi.execute("PRAGMA foreign_keys").fetchone()[0]
    dbapi.execute("PRAGMA foreign_keys=OFF")
    if dbapi.execute("PRAGMA foreign_keys").fetchone()[0]:
        raise DatabaseError(
            "cannot turn SQLite foreign keys off for the migration: "
            "run it on a connection that is not in a transaction yet"
        )
    try:
        yield
    finally:
        dbapi.execute(f"PRAGMA foreign_keys={'ON' if before else 'OFF'}")


def _check_foreign_keys(connection: Connection) -> None:
    """Raise if a row refers to a row that is not there (SQLite: the migration ran unchecked)."""
    if not is_sqlite(connection):
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        where = "; ".join(
            f"{table} row {rowid} refers to a missing {parent} row"
            for table, rowid, parent, _ in broken[:10]
        )
        more = f" (and {len(broken) - 10} more)" if len(broken) > 10 else ""
        raise DatabaseError(
            f"the migration left broken references and was rolled back: {where}{more}"
        )


def _run(connection: Connection) -> None:
    with _sqlite_foreign_keys_off(connection):
        # One transaction for the whole run, ours unless the caller began one (only possible off
        # SQLite). Alembic sees it as external and adds none of its own; SQLite would otherwise
        # get one per migration, since Alembic treats SQLite DDL as non-transactional.
        outer = nullcontext() if connection.in_transaction() else connection.begin()
        with outer:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
            _check_foreign_keys(connection)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


if context.is_offline_mode():
    _configure(url=str(normalise_url(_url())), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        engine = create_engine(_url())
        try:
            with engine.connect() as connection:
                _run(connection)
        finally:
            engine.dispose()
