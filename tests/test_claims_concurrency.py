"""Many workers at once: every case of a 10,000-case queue is claimed and called exactly once.

Runs on SQLite and, with CALLBACK_TEST_DATABASE_URL, on PostgreSQL. Threads share nothing but
the database: each worker checks out its own connection for every transaction, as separate
dispatcher processes would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from callback.attempt_outcomes import finish_attempt
from callback.attempts import begin_attempt
from callback.claims import claim_next, forget_campaigns
from callback.db import create_engine
from callback.dialing import EventKind
from callback.dispositions import Progress
from callback.models import CallAttempt, Campaign, Case, Contact, QueueItem, Unit, table
from callback.queues import refresh, rules_to_json
from callback.rules import CallingRules

CASES = 10_000
WORKERS = 32
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def fill_queue(engine: Engine, cases: int) -> int:
    """One campaign with ``cases`` sampled cases of one number each; return its id."""
    with engine.begin() as conn:
        unit = conn.execute(
            table(Unit)
            .insert()
            .values(name="东区", kind="town", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()
        campaign = conn.execute(
            table(Campaign)
            .insert()
            .values(
                name="load", target="cases", script="service-callback", dialer="simulated",
                period_start=date(2026, 5, 1), period_end=date(2026, 5, 31),
                rules=rules_to_json(CallingRules()), design={}, review_corrections=False,
                status="sampled", created_by="tester", created_at=NOW,
            )
            .returning(table(Campaign).c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            table(Case).insert(),
            [
                dict(id=i, case_no=f"C{i}", item_name="事项", unit_id=unit,
                     applicant_type="person", handled_at=NOW)
                for i in range(1, cases + 1)
            ],
        )  # fmt: skip
        conn.execute(
            table(Contact).insert(),
            [
                dict(case_id=i, position=0, raw="x", e164=f"+86138{i:08d}", kind="mobile",
                     validity="valid", source="import", created_at=NOW)
                for i in range(1, cases + 1)
            ],
        )  # fmt: skip
        conn.execute(
            table(QueueItem).insert(),
            [
                dict(campaign_id=campaign, unit_id=unit, case_id=i, stratum="s",
                     inclusion_probability=0.1, weight=10.0, state="open", wait_reason="new",
                     priority=i % 3)
                for i in range(1, cases + 1)
            ],
        )  # fmt: skip
    return campaign


@pytest.fixture
def pooled(database_url: str, engine: Engine) -> Iterator[Engine]:
    """An engine with a connection for every worker (the schema comes from ``engine``)."""
    # No pre-ping: a round trip before every transaction is a third of a claim's time here.
    pooled = create_engine(database_url, pool_size=WORKERS, max_overflow=4, pool_pre_ping=False)
    yield pooled
    pooled.dispose()


@pytest.mark.slow
def test_every_case_is_claimed_and_called_exactly_once(pooled: Engine) -> None:
    campaign = fill_queue(pooled, CASES)
    assert refresh(pooled, campaign, NOW) == CASES
    if pooled.dialect.name == "postgresql":
        with pooled.begin() as conn:
            conn.exec_driver_sql("ANALYZE queue_items")
    claimed: list[list[int]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(n: int) -> None:
        worker = f"dispatcher:test:{n}"
        start.wait()
        try:
            # The clock stands still, so a claim is never taken over by lease expiry: any
            # double claim would be the locking's fault.
            while (claim := claim_next(pooled, worker, now=NOW)) is not None:
                claimed[n].append(claim.item_id)
                assert claim.case_id is not None
                number = f"+86138{claim.case_id:08d}"  # each case has this one number
                attempt = begin_attempt(pooled, claim, number, "simulated", NOW)
                finish_attempt(pooled, attempt, EventKind.COMPLETED, NOW, progress=Progress.ALL)
        except BaseException as exc:  # reported below, with the worker's name
            errors.append(exc)

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    assert not errors, errors[:3]

    every = [i for ids in claimed for i in ids]
    assert len(every) == CASES and len(set(every)) == CASES
    assert sum(1 for ids in claimed if ids) > WORKERS // 2  # the work was really shared
    items, attempts = table(QueueItem), table(CallAttempt)
    with pooled.connect() as conn:
        per_item = conn.execute(
            sa.select(attempts.c.queue_item_id, sa.func.count()).group_by(attempts.c.queue_item_id)
        ).all()
        states = conn.execute(
            sa.select(
                items.c.state, items.c.final_disposition, items.c.held_by, sa.func.count()
            ).group_by(items.c.state, items.c.final_disposition, items.c.held_by)
        ).all()
    assert len(per_item) == CASES and {n for _, n in per_item} == {1}
    assert states == [("finished", "1.1", None, CASES)]
    print(f"{CASES} cases by {WORKERS} workers in {seconds:.1f} s ({CASES / seconds:.0f}/s)")
    assert claim_next(pooled, "late", now=NOW + timedelta(days=1)) is None


def test_a_claim_is_one_statement_that_commits_as_it_runs(engine: Engine) -> None:
    """PostgreSQL runs the claim in autocommit: one round trip, no BEGIN and COMMIT around it.

    Its SKIP LOCKED row locks and its update are atomic as any statement is; the test above
    checks that no two workers get one item. SQLite runs it under BEGIN IMMEDIATE instead.
    """
    campaign = fill_queue(engine, 3)
    assert refresh(engine, campaign, NOW) == 3
    postgresql = engine.dialect.name == "postgresql"
    seen: list[tuple[str, bool]] = []

    def record(conn: sa.Connection, _cursor: object, statement: str, *_: object) -> None:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        # In autocommit on PostgreSQL; inside the write transaction (BEGIN IMMEDIATE) on SQLite.
        committing = dbapi.autocommit if postgresql else dbapi.in_transaction  # type: ignore[attr-defined]
        seen.append((statement.split(None, 1)[0].upper(), committing))

    forget_campaigns()
    event.listen(engine, "before_cursor_execute", record)
    try:
        first = claim_next(engine, "w1", now=NOW)
        statements_of_first = list(seen)
        seen.clear()
        second = claim_next(engine, "w2", now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert first is not None and second is not None and first.item_id != second.item_id
    if postgresql:
        # The campaign list, then the claim (WITH ... UPDATE); the next claim reuses the list.
        assert statements_of_first == [("SELECT", True), ("WITH", True)]
        assert seen == [("WITH", True)]
    else:
        assert [s for s in seen if s[0] != "BEGIN"] == [("WITH", True)]
    with engine.connect() as conn:  # committed: another connection sees both leases
        held = conn.execute(
            sa.select(table(QueueItem).c.held_by).where(table(QueueItem).c.held_by.is_not(None))
        ).scalars()
        assert sorted(held) == ["w1", "w2"]
