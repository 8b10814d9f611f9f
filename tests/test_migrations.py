"""The Alembic history creates exactly the models' schema, both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import migrate
from callback.errors import DatabaseError
from callback.models import Base


def test_upgrade_check_downgrade_upgrade(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine)
    assert migrate.current(bare_engine) == migrate.head()
    migrate.check(bare_engine)  # raises if models and migrations disagree
    tables = set(sa.inspect(bare_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables

    migrate.downgrade(bare_engine, "base")
    assert migrate.current(bare_engine) is None
    assert set(sa.inspect(bare_engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(bare_engine)
    migrate.check(bare_engine)


def test_a_database_never_initialised_is_refused_clearly(bare_engine: Engine) -> None:
    with pytest.raises(DatabaseError, match="callback init"):
        migrate.require_current(bare_engine)


def test_an_old_database_asks_for_an_upgrade(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine)
    with bare_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(DatabaseError, match="callback db upgrade"):
        migrate.require_current(bare_engine)


def test_sqlite_connections_have_wal_and_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
