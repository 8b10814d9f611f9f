"""Fixtures: a fresh database per test, SQLite by default and PostgreSQL when
CALLBACK_TEST_DATABASE_URL is set (CI sets it), so the same suite runs on both.

Helpers that tests import live in dbsupport.py: the plugins' test folders have conftest.py
files too, and ``from conftest import`` would pick whichever was imported first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from dbsupport import PG_URL, drop_postgres_schema, fresh_postgres_schema
from sqlalchemy.engine import Engine

from callback import migrate
from callback.config import Settings
from callback.db import create_engine


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own for this test."""
    if PG_URL:
        schema, url = fresh_postgres_schema()
        yield url
        drop_postgres_schema(schema)
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
