"""Fixtures: a fresh database per test, SQLite by default and PostgreSQL when
CALLBACK_TEST_DATABASE_URL is set (CI sets it), so the same suite runs on both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from callback import migrate
from callback.config import Settings
from callback.db import create_engine, normalise_url

PG_URL = os.environ.get("CALLBACK_TEST_DATABASE_URL")


def _fresh_postgres_schema() -> tuple[str, str]:
    """A new schema in the test database and a URL whose search_path points at it."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    admin.dispose()
    base = normalise_url(PG_URL).render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options={quote('-csearch_path=' + schema)}"


def _drop_postgres_schema(schema: str) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own for this test."""
    if PG_URL:
        schema, url = _fresh_postgres_schema()
        yield url
        _drop_postgres_schema(schema)
    else:
        yield f"sqlite:///{tmp_path / 'callback.db'}"


@pytest.fixture
def bare_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty database (no schema yet)."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    """An engine on a database at the newest schema revision."""
    migrate.upgrade(bare_engine)
    return bare_engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, actor="tester")


@pytest.fixture
def cli(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Invoke ``callback --database URL --actor tester ARGS`` and return the click Result."""
    from callback.cli import cli as root

    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("CALLBACK_") and name != "CALLBACK_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(
            root, ["--database", database_url, "--actor", "tester", *args], input=input
        )

    return invoke


def table_rows(engine: Engine, table: str, order_by: str = "id") -> list[tuple]:
    """Every row of a table, for comparing the database before and after."""
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
        ]


def frame_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """The whole frame, to show that something changed nothing."""
    return {t: table_rows(engine, t) for t in ("units", "cases", "contacts", "audit_log")}
