"""The gather path's own parts: the states kept of live sessions, and its transactions.

The webhooks' behaviour end to end is in test_web_twilio.py; these check what it cannot see:
that a kept state is only ever used for the exact text its row holds, and that a transaction
that fails (to begin, to commit, to roll back) leaves no connection out and none broken kept.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from test_calls import NOW, dial, world

from callback import plugins
from callback.models import CallAttempt, SurveySession, sqlite_timestamp, table
from callback.surveys import Context, SessionState, answer, start
from callback.web.ivr import GOODBYE_STEP, KeyedSessions, LiveStates, _GatherSQL, position

sessions_t, attempts_t = table(SurveySession), table(CallAttempt)


def session_row(engine: Engine, attempt: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sessions_t.c.id, sessions_t.c.state).where(sessions_t.c.attempt_id == attempt)
        ).one()


# -- LiveStates -------------------------------------------------------------------------------


def states(n: int) -> list[SessionState]:
    """``n`` successive states of one service-callback session, keyed in with 1s."""
    script = plugins.get_script("service-callback")
    state = start(script, Context(item="结婚登记", unit="区民政局"), channel="ivr")
    found = [state]
    while len(found) < n:
        state = answer(script, state, "1")
        found.append(state)
    return found


def test_a_kept_state_is_given_only_for_the_text_it_was_saved_with() -> None:
    first, second = states(2)
    live = LiveStates()
    live.save(7, 70, second.to_json(), second)
    assert live.get(7) == (70, second.to_json(), second)
    assert live.state(7, second.to_json()) is second
    assert live.state(7, first.to_json()) is None  # the row holds another text now
    assert live.state(8, second.to_json()) is None and live.get(8) is None  # never another's


def test_the_least_recently_saved_and_the_finished_are_forgotten() -> None:
    one, two, three = states(3)
    live = LiveStates(limit=2)
    live.save(1, 10, one.to_json(), one)
    live.save(2, 20, two.to_json(), two)
    live.save(1, 10, two.to_json(), two)  # saved again: now the most recent
    live.save(3, 30, three.to_json(), three)
    assert live.get(2) is None
    assert live.state(1, two.to_json()) is two and live.state(3, three.to_json()) is three
    ended = SessionState.from_json(three.to_json().replace('"status":"active"', '"status":"ended"'))
    live.save(3, 30, ended.to_json(), ended)
    assert live.get(3) is None and len(live) == 1


def test_every_kept_state_is_what_its_row_reads_as(engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    sessions = KeyedSessions(engine, clock=lambda: NOW)
    step = sessions.begin(attempt)
    kept = 0
    while step.at:
        step = sessions.reply(attempt, step.at, "1", None)
        session_id, text = session_row(engine, attempt)
        if (live := sessions.live.get(attempt)) is not None:
            assert live[:2] == (session_id, text)
            assert live[2] == SessionState.from_json(text)
            kept += 1
    assert kept >= 3 and len(sessions.live) == 0  # the finished session is forgotten


def test_a_session_written_elsewhere_is_read_from_its_row(engine: Engine) -> None:
    """Another worker, or an agent resuming the case, wrote the session: what this worker
    kept is stale, and the input applies to the position the row holds."""
    attempt = dial(engine, world(engine))
    sessions = KeyedSessions(engine, clock=lambda: NOW)
    opened = sessions.begin(attempt)
    session_id, before = session_row(engine, attempt)
    second = sessions.reply(attempt, opened.at, "1", None)
    assert second.at != opened.at and len(sessions.live) == 1
    with engine.begin() as conn:  # back to the first question, as written elsewhere
        conn.execute(sa.update(sessions_t).where(sessions_t.c.id == session_id)
                     .values(state=before))  # fmt: skip
    again = sessions.reply(attempt, opened.at, "1", None)
    assert again.at == second.at  # applied: the row said the first question was asked
    _, after = session_row(engine, attempt)
    assert position(SessionState.from_json(after)) == second.at
    assert len(SessionState.from_json(after).answers) == 1


def test_a_swap_never_writes_over_a_change_made_elsewhere(engine: Engine) -> None:
    """The row is at the position this worker kept, but someone corrected the case's facts
    in it: the key is applied to the row's state, not to the one kept."""
    attempt = dial(engine, world(engine))
    sessions = KeyedSessions(engine, clock=lambda: NOW)
    step = sessions.reply(attempt, sessions.begin(attempt).at, "1", None)
    session_id, text = session_row(engine, attempt)
    corrected = dataclasses.replace(
        SessionState.from_json(text), fields=(("item", "离婚登记"), ("unit", "区民政局"))
    )
    with engine.begin() as conn:
        conn.execute(sa.update(sessions_t).where(sessions_t.c.id == session_id)
                     .values(state=corrected.to_json()))  # fmt: skip
    assert position(corrected) == step.at == position(sessions.live.get(attempt)[2])  # type: ignore[index]
    sessions.reply(attempt, step.at, "1", None)
    script = plugins.get_script("service-callback")
    assert session_row(engine, attempt)[1] == answer(script, corrected, "1").to_json()


@pytest.mark.parametrize("closed", ["attempt", "session"])
def test_a_swap_writes_nothing_once_the_call_or_session_is_over(
    engine: Engine, closed: str
) -> None:
    """The status callback ended the attempt (or the session was stopped) after this worker
    kept the state: the next key is refused by the read, as it always was."""
    attempt = dial(engine, world(engine))
    sessions = KeyedSessions(engine, clock=lambda: NOW)
    step = sessions.reply(attempt, sessions.begin(attempt).at, "1", None)
    session_id, text = session_row(engine, attempt)
    with engine.begin() as conn:
        if closed == "attempt":
            conn.execute(sa.update(attempts_t).where(attempts_t.c.id == attempt)
                         .values(state="ended"))  # fmt: skip
        else:
            conn.execute(sa.update(sessions_t).where(sessions_t.c.id == session_id)
                         .values(status="stopped"))  # fmt: skip
    assert sessions.reply(attempt, step.at, "1", None) == GOODBYE_STEP
    assert session_row(engine, attempt)[1] == text


def test_a_kept_state_saves_three_statements_and_a_retry_still_writes_nothing(
    engine: Engine,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("counts SQLite's statements")
    attempt = dial(engine, world(engine))
    sessions = KeyedSessions(engine, clock=lambda: NOW, hold=True)
    opened = sessions.begin(attempt)  # keeps what it opened: even the first key is swapped
    statements: list[str] = []

    def traced(at: str) -> tuple[Any, list[str]]:
        """The reply to the key "1" at ``at``, and the first word of each statement it ran."""
        connection = sessions._sql._held[0].driver_connection
        statements.clear()
        connection.set_trace_callback(statements.append)
        try:
            step = sessions.reply(attempt, at, "1", None)
        finally:
            connection.set_trace_callback(None)
        return step, [s.split()[0] for s in statements]

    with sessions._sql.transaction():  # a connection kept before the first key
        pass
    second, first_key = traced(opened.at)
    assert first_key == ["UPDATE"]  # the swap, alone
    again, retried = traced(opened.at)  # a retry of the first key: read, no write
    assert retried == ["BEGIN", "SELECT", "COMMIT"] and again == second
    before = session_row(engine, attempt)[1]
    third, next_key = traced(second.at)
    assert next_key == ["UPDATE"]
    assert third.at != second.at and session_row(engine, attempt)[1] != before
    sessions.close()


# -- _GatherSQL's transactions ------------------------------------------------------------------


class FlakyCursor(sqlite3.Cursor):
    """Fails the statements in ``failing`` (shared by the test), as a full disk would."""

    failing: set[str] = set()

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        if sql in self.failing:
            raise sqlite3.OperationalError(f"injected failure of {sql}")
        return super().execute(sql, parameters)


class FlakyConnection(sqlite3.Connection):
    def cursor(self, factory: Any = FlakyCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)


@pytest.fixture
def flaky(tmp_path: Path) -> Any:
    """A SQLite engine whose cursors fail what ``FlakyCursor.failing`` names, and its table."""
    path = tmp_path / "flaky.db"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, factory=FlakyConnection, isolation_level=None,
                               check_same_thread=False)  # fmt: skip

    engine = sa.create_engine(f"sqlite:///{path}", creator=connect, poolclass=sa.QueuePool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 0)")
    FlakyCursor.failing = set()
    yield engine
    FlakyCursor.failing = set()
    engine.dispose()


SET = ("UPDATE t SET x = ? WHERE id = 1", None)
GET = ("SELECT x FROM t WHERE id = 1", None)


def x_of(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT x FROM t").scalar_one())


def checked_out(engine: Engine) -> int:
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]


def test_transactions_keep_one_connection_and_cursor(flaky: Engine) -> None:
    sql = _GatherSQL(flaky, hold=True)
    cursors = set()
    for value in (1, 2, 3):
        with sql.transaction() as run:
            cursors.add(id(run(SET, (value,))))  # type: ignore[arg-type]
    assert len(cursors) == 1 and x_of(flaky) == 3 and checked_out(flaky) == 1
    sql.close()
    assert checked_out(flaky) == 0


def test_a_block_that_raises_is_rolled_back_and_the_connection_kept(flaky: Engine) -> None:
    sql = _GatherSQL(flaky, hold=True)
    with pytest.raises(RuntimeError), sql.transaction() as run:
        run(SET, (5,))  # type: ignore[arg-type]
        raise RuntimeError("the answer could not be applied")
    assert x_of(flaky) == 0 and checked_out(flaky) == 1
    with sql.transaction() as run:
        assert run(GET, ()).fetchone() == (0,)  # type: ignore[arg-type]
    sql.close()


def test_a_connection_that_cannot_roll_back_is_never_used_again(flaky: Engine) -> None:
    sql = _GatherSQL(flaky, hold=True)
    FlakyCursor.failing = {"ROLLBACK"}
    with pytest.raises(RuntimeError), sql.transaction() as run:
        run(SET, (5,))  # type: ignore[arg-type]
        broken = run.__self__.connection  # type: ignore[attr-defined]
        raise RuntimeError("the answer could not be applied")
    FlakyCursor.failing = set()
    assert not broken.is_valid and checked_out(flaky) == 0
    assert x_of(flaky) == 0  # the invalidated connection's transaction went with it
    with sql.transaction() as run:
        run(SET, (6,))  # type: ignore[arg-type]
        assert run.__self__.connection is not broken  # type: ignore[attr-defined]
    assert x_of(flaky) == 6
    sql.close()


@pytest.mark.parametrize("statement", ["BEGIN IMMEDIATE", "COMMIT"])
def test_a_transaction_that_cannot_begin_or_commit_leaves_nothing(
    flaky: Engine, statement: str
) -> None:
    sql = _GatherSQL(flaky, hold=True)
    FlakyCursor.failing = {statement}
    with pytest.raises(sqlite3.OperationalError, match=statement), sql.transaction() as run:
        run(SET, (5,))  # type: ignore[arg-type]
    FlakyCursor.failing = set()
    # Given back to the pool, which rolled back what was open; nothing kept.
    assert checked_out(flaky) == 0 and x_of(flaky) == 0
    with sql.transaction() as run:
        run(SET, (7,))  # type: ignore[arg-type]
    assert x_of(flaky) == 7
    sql.close()


# A day inside datetime's range either side, so that no zone's offset overflows it.
@given(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.timezones()))
@example(datetime(2026, 6, 10, 2, 0, tzinfo=UTC))  # the clock's own zone, taken as it is
@example(datetime(2026, 6, 10, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=8))))
def test_the_gathers_timestamp_is_what_the_columns_type_stores_on_sqlite(value: Any) -> None:
    column = sessions_t.c.updated_at.type
    dialect = sqlite.dialect()
    bind = column.dialect_impl(dialect).bind_processor(dialect)
    assert sqlite_timestamp(value) == bind(value)
