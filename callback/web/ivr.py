"""IVR turns for webhooks: the survey session read, answered and saved in one short transaction,
with every turn keyed by the session's position so that a retried request is never applied twice.

Providers retry a webhook whose answer was late or lost, and the retry is byte for byte the
request we already applied: the same digits, to the same URL. The digits alone cannot tell a
retry from the next question answered with the same key, so each listening turn sends its input
back to a URL that names the position it was asked at (``?at=trips.0``: the question and the
refused inputs so far). A request for a position the session has left is a retry; it gets the
turn for where the session is now, which is what the first request was answered, and changes
nothing.

Scripts have no loops (the loader refuses them), so a session passes each question at most once
and ``question.refusals`` names one moment of an active session. This module holds the IVR's
hot path; ``callback.calls.CallHandler`` keeps the events and the agent-facing Conversation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler

from callback import plugins
from callback.calls import GOODBYE
from callback.dialing import Turn
from callback.frozen import quick_init
from callback.hotline_checks import HANG_UP, MachineChecks, is_machine_check
from callback.models import (
    LIVE_ATTEMPT_STATES,
    CallAttempt,
    Campaign,
    SessionStatus,
    SurveySession,
    sqlite_timestamp,
    table,
    utcnow,
)
from callback.sessions import open_session
from callback.survey_format import Script
from callback.survey_prompts import prompt, to_turn
from callback.surveys import SessionError, SessionState, answer, finished

log = logging.getLogger(__name__)
attempts_t, campaigns_t = table(CallAttempt), table(Campaign)
sessions_t = table(SurveySession)

# The gather path's statements; _GatherSQL compiles them once per engine.
_SESSION = (
    sa.select(
        sessions_t.c.id,
        sessions_t.c.script,
        sessions_t.c.state,
        sessions_t.c.status,
        attempts_t.c.state.label("attempt_state"),
        campaigns_t.c.target,
        attempts_t.c.dialer,
    )
    .join(attempts_t, attempts_t.c.id == sessions_t.c.attempt_id)
    .join(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
    .where(sessions_t.c.attempt_id == sa.bindparam("attempt_id"))
    # PostgreSQL: two deliveries of one request wait for each other on the row; on SQLite,
    # BEGIN IMMEDIATE already serialises writers and FOR UPDATE is not rendered.
    .with_for_update(of=sessions_t)
)
_SAVE = (
    sa.update(sessions_t)
    .where(sessions_t.c.id == sa.bindparam("session_id"))
    .values(state=sa.bindparam("state"), updated_at=sa.bindparam("now"))
)
#: The fast path's one statement: _SAVE, only if the row still holds the state this worker
#: saved and the session and its attempt still take input (LiveStates).
_SWAP = _SAVE.where(
    sessions_t.c.state == sa.bindparam("saved"),
    sessions_t.c.status == sa.literal_column(f"'{SessionStatus.ACTIVE.value}'"),
    sa.exists().where(
        attempts_t.c.id == sa.bindparam("attempt_id"),
        attempts_t.c.state.in_(
            [sa.literal_column(f"'{state.value}'") for state in sorted(LIVE_ATTEMPT_STATES)]
        ),
    ),
)
_ATTEMPT_STATE = sa.select(attempts_t.c.state).where(attempts_t.c.id == sa.bindparam("attempt_id"))


#: SQL text, and what puts its parameters in order for a positional driver (None: by name).
Prepared = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]] | None]
Run = Callable[[Prepared, dict[str, Any]], Any]


class _GatherSQL:
    """The gather path's read and write, compiled once, run on a pooled DBAPI connection.

    Through ``engine.connect()`` and ``execute`` the read-answer-write step took 0.51 ms on
    SQLite; this way 0.33 ms, a quarter of the whole request (docs/web.md). It keeps
    SQLAlchemy's SQL, types and pool, and skips its per-execution work. On SQLite
    the transaction is ``BEGIN IMMEDIATE`` (as ``callback.db.immediate``); on PostgreSQL the
    read locks the session row (FOR UPDATE), so two deliveries of one request take turns.
    """

    def __init__(self, engine: Engine, hold: bool = False) -> None:
        self.engine = engine
        #: Keep one pooled connection between transactions rather than check one out each
        #: time (~15 µs a request), for the thread that runs them all (the event loop's).
        #: Another thread, should one ever call, gets a connection of its own from the pool.
        self.hold = hold
        self._held: Any = None
        self._holder: int | None = None
        dialect = engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self.read = self._compile(_SESSION)
        self.save = self._compile(_SAVE)
        self._swap = self._compile(_SWAP)
        #: A datetime as the driver must receive it, as the column's type binds it. SQLite
        #: stores text: sqlite_timestamp writes it in 1 µs, the type's processors in 2.4.
        self.when: Callable[[datetime], Any] = sqlite_timestamp
        if not self.sqlite:
            updated_at = sessions_t.c.updated_at.type
            process = updated_at.dialect_impl(dialect).bind_processor(dialect)
            self.when = process or (lambda value: value)

    def _compile(self, statement: sa.ClauseElement) -> Prepared:
        compiled = statement.compile(dialect=self.engine.dialect)
        assert isinstance(compiled, SQLCompiler)
        if not compiled.positional:
            return str(compiled), None
        order = tuple(compiled.positiontup or ())
        # The parameters in the statement's order, by one C call rather than a generator.
        pick = itemgetter(*order)
        return str(compiled), (pick if len(order) > 1 else lambda params: (pick(params),))

    def transaction(self) -> _Transaction:
        """``with sql.transaction() as run``: ``run(statement, params)`` inside one write
        transaction, committed when the block ends, rolled back when it raises."""
        return _Transaction(self)

    def swap(self, params: dict[str, Any]) -> bool:
        """Run ``_SWAP`` (its own transaction); True when it wrote the row.

        On SQLite the statement is a transaction by itself (autocommit): no BEGIN, no COMMIT,
        three statements fewer than a read and a write in a transaction.
        """
        with _Transaction(self, single=True) as run:
            return bool(run(self._swap, params).rowcount == 1)

    def _checkout(self) -> tuple[Any, Any, bool]:
        """A connection and a cursor of it, and whether they are kept after the transaction."""
        if self.hold and self._holder in (None, threading.get_ident()):
            self._holder = threading.get_ident()
            held, self._held = self._held, None
            if held is not None:
                return held[0], held[1], True
            connection = self.engine.raw_connection()
            return connection, connection.cursor(), True
        connection = self.engine.raw_connection()
        return connection, connection.cursor(), False

    def close(self) -> None:
        """Return the connection held between transactions to the pool."""
        held, self._held = self._held, None
        if held is not None:
            held[1].close()
            held[0].close()


class _Transaction:
    """One transaction of ``_GatherSQL``: a class rather than a ``@contextmanager``
    generator, whose entering and leaving took 2 µs of every gather."""

    __slots__ = ("sql", "connection", "cursor", "hold", "autocommit")

    def __init__(self, sql: _GatherSQL, single: bool = False) -> None:
        """``single``: the block runs one statement, which SQLite commits by itself."""
        self.sql = sql
        self.autocommit = single and sql.sqlite

    def __enter__(self) -> Run:
        self.connection, self.cursor, self.hold = self.sql._checkout()
        if self.autocommit:
            return self.run
        if self.sql.sqlite:
            # callback.db puts pysqlite in autocommit mode: transactions are ours to open.
            try:
                self.cursor.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._release(keep=False)
                raise
        return self.run

    def run(self, statement: Prepared, params: dict[str, Any]) -> Any:
        sql, order = statement
        cursor = self.cursor
        cursor.execute(sql, params if order is None else order(params))
        return cursor

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        keep = False
        try:
            if self.autocommit:
                keep = self.hold  # the statement committed, or failed and changed nothing
            elif kind is None:
                if self.sql.sqlite:
                    self.cursor.execute("COMMIT")
                else:
                    self.connection.commit()
                keep = self.hold
            else:
                try:
                    if self.sql.sqlite:
                        self.cursor.execute("ROLLBACK")
                    else:
                        self.connection.rollback()
                    keep = self.hold
                except Exception:
                    # A connection that cannot even roll back is broken: never reuse it.
                    self.connection.invalidate()
        finally:
            self._release(keep)

    def _release(self, keep: bool) -> None:
        if keep:
            self.sql._held = (self.connection, self.cursor)
        else:
            if self.connection.is_valid:  # not invalidated, which closed its cursors
                self.cursor.close()
            self.connection.close()  # back to the pool (which rolls back what is open)


@quick_init
@dataclass(frozen=True)
class Step:
    """A turn and the position it was asked at ("" when no input is awaited)."""

    turn: Turn
    at: str = ""


#: What unknown, finished or broken calls hear.
GOODBYE_STEP = Step(GOODBYE)


def position(state: SessionState) -> str:
    """Name the moment of an active session: ``question.refusals``; "" once finished."""
    if finished(state) or state.current is None:
        return ""
    return f"{state.current}.{state.attempts}"


class LiveStates:
    """What this worker last saved of each live call's session: its id, text and state.

    A gather used to read the session (a transaction of four statements) and its JSON
    (``SessionState.from_json``, ~8 µs) before it could apply a key. The row usually still
    holds what this worker saved at the previous key, so ``KeyedSessions.reply`` applies the
    key to the state kept here and writes the result with one statement that changes the row
    only if it still holds exactly the text saved (and the session and its attempt still
    take input): a compare-and-swap. If anything else wrote the session meanwhile (a
    retry's first delivery, another worker, an agent resuming it), nothing is written and
    the request takes the full read as ever. ``state`` serves that read too, for the exact
    text only. At most ``limit`` calls, the least recently saved forgotten first; a finished
    session is forgotten at once. Nothing is shared between sessions.
    """

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._saved: dict[int, tuple[int, str, SessionState]] = {}
        self._lock = threading.Lock()  # for the eviction only: get and set are atomic

    def __len__(self) -> int:
        return len(self._saved)

    def get(self, attempt_id: int) -> tuple[int, str, SessionState] | None:
        """(session id, text, state) as last saved for the attempt's session, or None."""
        return self._saved.get(attempt_id)

    def state(self, attempt_id: int, text: str) -> SessionState | None:
        """The state kept for the attempt, when ``text`` is exactly the text it was saved as."""
        saved = self._saved.get(attempt_id)
        return saved[2] if saved is not None and saved[1] == text else None

    def save(self, attempt_id: int, session_id: int, text: str, state: SessionState) -> None:
        saved = self._saved
        saved.pop(attempt_id, None)  # re-inserted last: the order is of saving
        if finished(state):
            return
        saved[attempt_id] = (session_id, text, state)
        if len(saved) > self.limit:
            with self._lock:
                while len(saved) > self.limit:
                    saved.pop(next(iter(saved)), None)


class KeyedSessions:
    """Begin and continue IVR survey sessions for webhooks, idempotently."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] = utcnow,
        checks: MachineChecks | None = None,
        hold: bool = False,
    ) -> None:
        """``hold``: keep a connection between replies (they all run on one thread)."""
        self.engine = engine
        self.clock = clock
        self._sql = _GatherSQL(engine, hold=hold)
        self.live = LiveStates()
        #: Hotline checks by machine are observed, never surveyed (their events conclude them).
        #: Pass the CallHandler's, so that the app asks once per attempt, not once per user.
        self.checks = checks if checks is not None else MachineChecks(engine, "ivr")

    def close(self) -> None:
        """Give back the connection the replies kept (at the app's shutdown)."""
        self._sql.close()

    def begin(self, attempt_id: int) -> Step:
        """The first turn of the attempt's session (opening it once; a retry gets the same)."""
        if (check := self.checks.turn(attempt_id)) is not None:
            # Silence while detection listens, its input to a position no session has.
            return Step(check, "" if check.hangup else "listen")
        with self.engine.connect() as conn:
            state = conn.execute(_ATTEMPT_STATE, {"attempt_id": attempt_id}).scalar()
        if state not in LIVE_ATTEMPT_STATES:
            return GOODBYE_STEP
        session = open_session(self.engine, attempt_id, "ivr", self.clock())
        if session.done:
            return GOODBYE_STEP
        # What open_session wrote (or what a retry reads back): the first key can be swapped.
        self.live.save(attempt_id, session.id, session.state.to_json(), session.state)
        return self._step(session.script, session.state)

    def reply(self, attempt_id: int, at: str | None, digits: str, speech: str | None) -> Step:
        """Apply the caller's input to the turn asked at ``at``, once; return the next turn.

        ``at`` None (a URL without a position, from TwiML rendered elsewhere) applies the
        input to whatever is asked now, as ``CallHandler.reply`` does.
        """
        when = self._sql.when(self.clock())
        text = speech or digits
        if at is not None and (live := self.live.get(attempt_id)) is not None:
            session_id, saved, state = live
            asked = position(state)
            if asked and at == asked:
                script: Script = plugins.get_script(state.script)
                applied = answer(script, state, text)
                stored = applied.to_json()
                params = {"session_id": session_id, "saved": saved, "attempt_id": attempt_id,
                          "state": stored, "now": when}  # fmt: skip
                if self._sql.swap(params):
                    self.live.save(attempt_id, session_id, stored, applied)
                    return self._step(script, applied)
            # Not what this worker saved last, or a position it has left: read the row.
        with self._sql.transaction() as run:
            row = run(self._sql.read, {"attempt_id": attempt_id}).fetchone()
            # (session id, script, state, status, attempt state, target, dialer)
            machine = row is not None and is_machine_check(row[5], row[6])
            if row is None or machine:
                moved = None
            else:
                moved = self._apply(run, attempt_id, row, at, text, when)
        # A hotline check by machine: detection has had its time; the call's end concludes
        # it. The read says so (one statement, even in a worker that never saw the call);
        # asked apart only for a check that has no session yet.
        if machine or (row is None and self.checks.handles(attempt_id)):
            return Step(HANG_UP)
        if moved is None:
            return GOODBYE_STEP
        script, state, here = moved
        if here is not None:
            log.info("attempt %s: input for %r, the session is at %r; not applied", attempt_id,
                     at, here)  # fmt: skip
        # Rendered after COMMIT: the write lock is held for the read and the write only.
        return self._step(script, state)

    def _apply(
        self, run: Run, attempt_id: int, row: Any, at: str | None, text: str, when: Any
    ) -> tuple[Script, SessionState, str | None] | None:
        """Apply ``text`` to the session read as ``row`` when it is asked at ``at``.

        Returns the script, the state to ask from, and the position when the input was not
        applied (else None); None when the session takes no more input.
        """
        session_id, script_name, saved, status, attempt_state, _, _ = row
        if attempt_state not in LIVE_ATTEMPT_STATES or status != SessionStatus.ACTIVE:
            return None
        script: Script = plugins.get_script(script_name)
        state = self.live.state(attempt_id, saved)
        if state is None:
            state = SessionState.from_json(saved)
            self.live.save(attempt_id, session_id, saved, state)  # for the next key's swap
        here = position(state)
        if (at is not None and at != here) or not here:
            # A retry of a request already applied (or input after the last question): say
            # what is asked now, which is what the first delivery was answered.
            return script, state, here
        applied = answer(script, state, text)
        stored = applied.to_json()
        run(self._sql.save, {"session_id": session_id, "state": stored, "now": when})
        self.live.save(attempt_id, session_id, stored, applied)
        return script, applied, None

    def _step(self, script: Script, state: SessionState) -> Step:
        try:
            turn = to_turn(prompt(script, state, channel="ivr"))
        except SessionError:
            # The script changed under a running session: end the call politely; the
            # session stays as it was for someone to look at.
            log.exception("cannot render the session's prompt")
            return GOODBYE_STEP
        return Step(turn, "" if turn.hangup else position(state))
