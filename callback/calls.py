"""The core's side of a dialled call: dialer events in, survey turns out, outcomes recorded.

``CallHandler`` is the one function every dialer reports to (its event sink) and the
``Conversation`` interactive dialers ask for their next turn. Events may come twice, late or
out of order (providers retry callbacks); each changes an attempt at most once: placement only
while pending, an outcome only while not yet ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.attempt_outcomes import UnknownAttempt, finish_attempt
from callback.db import immediate
from callback.dialing import CallEvent, Conversation, EventKind, Turn
from callback.hotline_checks import HANG_UP, MachineChecks
from callback.models import AttemptState, CallAttempt, table, utcnow
from callback.sessions import (
    close_session,
    current_prompt,
    give_answer,
    load_session,
    open_session,
)
from callback.survey_prompts import to_turn

log = logging.getLogger(__name__)
attempts_t = table(CallAttempt)

GOODBYE = Turn("感谢您的接听，再见。", expect="", hangup=True)
#: Outcomes that end an attempt at once (a machine is one: the IVR does not survey it).
_ENDING = frozenset(
    {EventKind.BUSY, EventKind.NO_ANSWER, EventKind.WRONG_NUMBER, EventKind.FAILED,
     EventKind.MACHINE}
)  # fmt: skip


class CallHandler(Conversation):
    """Record what dialers report, and run the survey for IVR calls."""

    def __init__(
        self, engine: Engine, actor: str = "ivr", clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.clock = clock
        #: Hotline checks placed by an automated dialer are observed, never surveyed by voice.
        self.checks = MachineChecks(engine, actor)

    # -- the event sink ------------------------------------------------------------------

    def __call__(self, event: CallEvent) -> None:
        self.on_event(event)

    def on_event(self, event: CallEvent) -> None:
        """Apply one event; repeated and late events change nothing."""
        try:
            if self.checks.on_event(event):
                return
            if event.kind is EventKind.ANSWERED:
                self._answered(event)
            elif event.kind in _ENDING:
                self._end(event, event.kind)
            elif event.kind is EventKind.COMPLETED:
                self._completed(event)
            # QUEUED and RINGING say nothing the attempt must keep.
        except UnknownAttempt:
            log.warning("an event for unknown attempt %s was ignored", event.attempt_id)

    def _answered(self, event: CallEvent) -> None:
        with immediate(self.engine) as conn:
            conn.execute(
                sa.update(attempts_t)
                .where(
                    attempts_t.c.id == event.attempt_id,
                    attempts_t.c.answered_at.is_(None),
                    # An "answered" that arrives after the outcome is history, not news.
                    attempts_t.c.state.in_([AttemptState.PENDING, AttemptState.PLACED]),
                )
                .values(answered_at=event.at)
            )

    def _end(self, event: CallEvent, outcome: EventKind) -> None:
        detail = {"event": str(event.kind), **dict(event.detail)}
        finish_attempt(self.engine, event.attempt_id, outcome, event.at, detail,
                       provider_call_id=event.provider_call_id or None)  # fmt: skip

    def _completed(self, event: CallEvent) -> None:
        session = load_session(self.engine, event.attempt_id)
        if session is None:
            # Answered and over before any question: a hang-up during the introduction.
            self._end(event, EventKind.COMPLETED)
            return
        outcome = close_session(self.engine, session, self.actor, event.at)
        detail = {"event": str(event.kind), **dict(event.detail)}
        finish_attempt(
            self.engine, event.attempt_id, outcome.outcome, event.at, detail,
            final=outcome.final, progress=outcome.progress,
            provider_call_id=event.provider_call_id or None,
        )  # fmt: skip

    # -- the conversation ------------------------------------------------------------------

    def begin(self, attempt_id: int) -> Turn:
        if (check := self.checks.turn(attempt_id)) is not None:
            return check
        if not self._live(attempt_id):
            return GOODBYE
        session = open_session(self.engine, attempt_id, "ivr", self.clock())
        if session.done:
            return GOODBYE
        return to_turn(current_prompt(session, "ivr"))

    def reply(self, attempt_id: int, digits: str, speech: str | None = None) -> Turn:
        if self.checks.handles(attempt_id):
            return HANG_UP  # detection has had its time: the call's end concludes the check
        session = load_session(self.engine, attempt_id) if self._live(attempt_id) else None
        if session is None or session.done:
            return GOODBYE
        session = give_answer(self.engine, session, speech or digits, self.clock())
        return to_turn(current_prompt(session, "ivr"))

    def _live(self, attempt_id: int) -> bool:
        """True while the attempt's call may still be talking (placed, not yet ended)."""
        with self.engine.connect() as conn:
            state = conn.execute(
                sa.select(attempts_t.c.state).where(attempts_t.c.id == attempt_id)
            ).scalar()
        return state in (AttemptState.PENDING, AttemptState.PLACED)
