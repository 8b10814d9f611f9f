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


def frame_facts(engine: Engine) -> dict[str, list[tuple]]:
    """The frame without its surrogate ids: what two imports of one file must agree on even
    when they cut it into chunks differently (ids follow the order of writes) or one of them
    was rolled back and tried again (PostgreSQL's sequences do not roll back). Batches are
    named by their file."""
    queries = {
        "units": "SELECT name, kind, created_at FROM units",
        "cases": """
            SELECT c.case_no, c.item_name, c.item_code, u.name, t.name, c.applicant_name,
                   c.applicant_type, c.contact_name, c.handled_at, c.channel, cb.file_name,
                   b.file_name, c.source_row, c.source_fingerprint
            FROM cases c JOIN units u ON u.id = c.unit_id LEFT JOIN units t ON t.id = c.town_id
            LEFT JOIN import_batches cb ON cb.id = c.created_batch_id
            LEFT JOIN import_batches b ON b.id = c.batch_id
        """,
        "contacts": """
            SELECT c.case_no, k.position, k.raw, k.e164, k.extension, k.kind, k.validity,
                   k.source, b.file_name, k.created_at, k.superseded_at, k.verification,
                   k.checked_at
            FROM contacts k JOIN cases c ON c.id = k.case_id
            LEFT JOIN import_batches b ON b.id = k.batch_id
        """,
        "audit_log": """
            SELECT a.at, a.actor, a.action, a.entity, c.case_no, a.before, a.after, a.reason,
                   b.file_name
            FROM audit_log a LEFT JOIN cases c ON c.id = a.case_id
            LEFT JOIN import_batches b ON b.id = a.batch_id
        """,
    }
    with engine.connect() as conn:
        return {
            name: sorted((tuple(r) for r in conn.execute(sa.text(sql))), key=repr)
            for name, sql in queries.items()
        }
