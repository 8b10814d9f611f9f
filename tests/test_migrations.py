"""The Alembic history creates exactly the models' schema, both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

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


def test_postgresql_connections_run_prepared_statements_on_generic_plans(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL plans")
    for _ in range(2):  # a pooled connection keeps it from one transaction to the next
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_generic_plan"


#: One called case at revision 0003, in plain SQL because the models have moved on since. The
#: attempt refers to the contact that migration 0004 rebuilds in batch mode on SQLite.
ROWS_AT_0003 = [
    "INSERT INTO units (id, name, kind, created_at)"
    " VALUES (7, 'Tax office', 'department', '2026-01-05 09:00:00')",
    "INSERT INTO cases (id, case_no, item_name, unit_id, applicant_type, handled_at)"
    " VALUES (11, 'C-0011', 'Business licence', 7, 'person', '2026-01-05 09:00:00')",
    "INSERT INTO contacts (id, case_id, position, raw, validity, source, created_at)"
    " VALUES (23, 11, 0, '13800138000', 'valid', 'import', '2026-01-05 09:00:00')",
    "INSERT INTO campaigns (id, name, target, script, dialer, period_start, period_end, rules,"
    " design, review_corrections, status, created_by, created_at)"
    " VALUES (3, '2026-01', 'cases', 'satisfaction', 'manual', '2026-01-01', '2026-01-31',"
    " '{}', '{}', FALSE, 'sampled', 'tester', '2026-01-05 09:00:00')",
    "INSERT INTO queue_items (id, campaign_id, unit_id, case_id, stratum,"
    " inclusion_probability, weight, state, priority, attempts,"
    " slot0_attempts, slot1_attempts, slot2_attempts, slot3_attempts)"
    " VALUES (5, 3, 7, 11, 'Tax office', 1.0, 1.0, 'open', 0, 1, 1, 0, 0, 0)",
    "INSERT INTO attempts (id, queue_item_id, campaign_id, contact_id, number, worker, dialer,"
    " state, created_at)"
    " VALUES (31, 5, 3, 23, '+8613800138000', 'agent1', 'manual', 'ended',"
    " '2026-01-05 09:10:00')",
    "INSERT INTO audit_log (id, at, actor, action, entity, entity_id, case_id, reason,"
    " attempt_id)"
    " VALUES (41, '2026-01-05 09:10:00', 'agent1', 'attempt.ended', 'attempt', 31, 11, '', 31)",
]


def test_upgrading_a_database_with_calls_keeps_every_row(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0003")
    with bare_engine.begin() as conn:
        for statement in ROWS_AT_0003:
            conn.exec_driver_sql(statement)

    migrate.upgrade(bare_engine)

    assert migrate.current(bare_engine) == migrate.head()
    with bare_engine.connect() as conn:
        contact = conn.exec_driver_sql("SELECT id, case_id, verification FROM contacts").one()
        assert tuple(contact) == (23, 11, "not_called")
        attempt = conn.exec_driver_sql("SELECT id, queue_item_id, contact_id FROM attempts").one()
        assert tuple(attempt) == (31, 5, 23)
        audit = conn.exec_driver_sql("SELECT id, attempt_id FROM audit_log").one()
        assert tuple(audit) == (41, 31)
        assert conn.exec_driver_sql("SELECT id FROM queue_items").scalars().all() == [5]
    migrate.check(bare_engine)


def test_sqlite_foreign_keys_are_on_again_after_a_migration(bare_engine: Engine) -> None:
    if bare_engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    migrate.upgrade(bare_engine, "0003")
    with bare_engine.begin() as conn:
        for statement in ROWS_AT_0003:
            conn.exec_driver_sql(statement)
    migrate.upgrade(bare_engine)

    with bare_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # The connection that ran the migration went back to the pool; so must its pragma.
    assert bare_engine.pool.checkedin() >= 1
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        with bare_engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM contacts WHERE id = 23")


def test_a_broken_reference_fails_the_upgrade_and_names_the_row(bare_engine: Engine) -> None:
    if bare_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL never stores a broken reference")
    migrate.upgrade(bare_engine, "0003")
    with bare_engine.begin() as conn:
        for statement in ROWS_AT_0003:
            conn.exec_driver_sql(statement)
    # A plain sqlite3 connection has foreign keys off, as any tool outside callback might.
    database = bare_engine.url.database
    assert database is not None
    with sqlite3.connect(database) as raw:
        raw.execute("UPDATE attempts SET contact_id = 999 WHERE id = 31")
    raw.close()

    with pytest.raises(DatabaseError, match="attempts row 31 refers to a missing contacts row"):
        migrate.upgrade(bare_engine)

    assert migrate.current(bare_engine) == "0003"
    with bare_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_json_nulls_in_the_audit_log_become_sql_nulls(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0007")
    with bare_engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO audit_log (id, at, actor, action, entity, entity_id, before, after,"
            " reason) VALUES"
            " (1, '2018-10-08 01:00:00', 'office', 'unit.create', 'unit', 7, 'null',"
            "  '{\"name\": \"区民政局\"}', 'import'),"
            " (2, '2018-10-08 01:00:00', 'office', 'case.update', 'case', 9,"
            "  '{\"unit\": \"A\"}', 'null', 'import')"
        )

    migrate.upgrade(bare_engine)

    with bare_engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, before IS NULL, after IS NULL, CAST(after AS TEXT), CAST(before AS TEXT)"
            " FROM audit_log ORDER BY id"
        ).all()
    assert [tuple(r[:3]) for r in rows] == [(1, True, False), (2, False, True)]
    assert "区民政局" in rows[0][3] and '"A"' in rows[1][4]  # the facts themselves untouched


def test_a_creation_is_audited_with_sql_null_before(engine: Engine) -> None:
    from callback.models import AuditEntry, table

    audit = table(AuditEntry)
    now = datetime(2018, 10, 8, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(audit).values(
                at=now, actor="office", action="unit.create", entity="unit", entity_id=1,
                before=None, after={"name": "区民政局"}, reason="import",
            )
        )  # fmt: skip
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).where(audit.c.before.is_(None))).scalar() == 1
        )
