"""Database helpers the tests import (conftest.py is not importable by name: the plugins'
test folders have one too)."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.db import create_engine, normalise_url

PG_URL = os.environ.get("CALLBACK_TEST_DATABASE_URL")


def fresh_postgres_schema() -> tuple[str, str]:
    """A new schema in the test database and a URL whose search_path points at it."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    admin.dispose()
    base = normalise_url(PG_URL).render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options={quote('-csearch_path=' + schema)}"


def drop_postgres_schema(schema: str) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def table_rows(engine: Engine, table: str, order_by: str = "id") -> list[tuple]:
    """Every row of a table, for comparing the database before and after."""
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
        ]


def frame_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """The whole frame, to show that something changed nothing."""
    return {t: table_rows(engine, t) for t in ("units", "cases", "contacts", "audit_log")}
