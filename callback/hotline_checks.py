"""Hotline spot checks by machine: what an automated dialer observes, and the hand-off to a tester.

An automated dialer places a hotline check's call (咨询电话抽查) but never surveys the hotline by
voice. From the call's events the machine answers the script's ``observe`` questions, the ones
that need no human judgement (answered or not, seconds from the first ring to the answer, a
person or a machine), as an agent would have recorded them, and ends the call as soon as it
knows. Then:

- a check with nothing left that needs a person completes by itself (1.1): a machine answered,
  or nobody answered on the last try the calling rules leave the machine;
- a check answered by a person (or by someone the dialer cannot tell) is handed to a tester of
  the unit (``QueueItem.handed_to``): the dispatcher never claims it again, and a tester makes
  the consultation call at the workstation, resuming the same survey session.

The machine always leaves one attempt of the calling rules' limits to the tester, so that a
check answered on the machine's last try can still be finished by a person.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.attempt_outcomes import finish_attempt
from callback.db import immediate
from callback.dialing import (
    ANSWERED_BY_PERSON,
    ANSWERED_BY_UNKNOWN,
    PERSON_DIALERS,
    CallEvent,
    EventKind,
    Turn,
)
from callback.dispositions import Disposition
from callback.models import (
    LIVE_ATTEMPT_STATES,
    AuditEntry,
    CallAttempt,
    Campaign,
    CampaignTarget,
    HandOff,
    QueueItem,
    SessionStatus,
    SurveySession,
    table,
)
from callback.queues import NOT_PLACED, campaign_rules
from callback.sessions import close_session, open_session
from callback.survey_format import Script, Value
from callback.surveys import SessionState, decline, finished, observe

attempts_t, campaigns_t, items_t = table(CallAttempt), table(Campaign), table(QueueItem)
sessions_t, audit_t = table(SurveySession), table(AuditEntry)

#: Outcomes that say the hotline did not answer. A technical failure (``failed``) is ours, not
#: the unit's: it is retried and never recorded as "not answered".
UNANSWERED = frozenset({EventKind.BUSY, EventKind.NO_ANSWER, EventKind.WRONG_NUMBER})
#: How long the line stays open, silent, for a dialer's answering-machine detection to decide
#: (Twilio's "Enable" mode decides in about 3 s); then the machine hangs up.
LISTEN_SECONDS = 10
#: While detection listens: nothing is said, so nothing is taken for a recorded greeting.
LISTEN = Turn("", expect="digits", max_digits=1, timeout_seconds=LISTEN_SECONDS)
#: The machine's part is over: hang up without a word.
HANG_UP = Turn("", expect="", hangup=True)
#: Why a check is handed to a tester, in the audit log.
HANDED_PERSON = "answered by a person: a tester makes the consultation call"
HANDED_UNTOLD = (
    "answered, by a person or a machine the dialer could not tell apart: a tester finds out "
    "and makes the consultation call"
)
HANDED_EXTENSION = (
    "answered at the switchboard, which says nothing of the extension keyed after it: a tester "
    "calls, records whether and by whom it is answered, and makes the consultation call"
)
#: How many attempts' answers ``MachineChecks`` remembers (a dispatcher runs for months).
_REMEMBERED = 10_000


def is_machine_check(target: str, dialer: str) -> bool:
    """True for an attempt of a hotline campaign placed by an automated dialer."""
    return target == CampaignTarget.HOTLINES and dialer not in PERSON_DIALERS


class MachineChecks:
    """Run the machine's part of hotline checks from dialer events; ``CallHandler`` asks it
    first whether an event or a turn is its business."""

    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine = engine
        self.actor = actor
        self._known: dict[int, bool] = {}

    def handles(self, attempt_id: int) -> bool:
        """True for an attempt an automated dialer placed for a hotline check."""
        known = self._known.get(attempt_id)
        if known is None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(attempts_t.c.dialer, campaigns_t.c.target)
                    .join(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
                    .where(attempts_t.c.id == attempt_id)
                ).first()
            if row is None:
                return False  # unknown: the CallHandler logs and ignores it
            known = is_machine_check(row.target, row.dialer)
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            self._known[attempt_id] = known
        return known

    def turn(self, attempt_id: int) -> Turn | None:
        """What an interactive dialer does on a machine check's answered call, or None if the
        attempt is not one: listen in silence while detection decides, then hang up."""
        if not self.handles(attempt_id):
            return None
        return LISTEN if _attempt(self.engine, attempt_id) is not None else HANG_UP

    def on_event(self, event: CallEvent) -> bool:
        """Apply one event of a machine check; False when the attempt is not one."""
        if not self.handles(event.attempt_id):
            return False
        attempt = _attempt(self.engine, event.attempt_id)
        if attempt is None:
            return True  # ended already: repeated and late events change nothing
        kind = event.kind
        answered = kind in (EventKind.ANSWERED, EventKind.MACHINE, EventKind.COMPLETED)
        if kind is EventKind.RINGING:
            _note(self.engine, event.attempt_id, {"ringing_at": event.at.isoformat()})
        elif answered and attempt.detail.get("extension"):
            # The switchboard answered, then the extension was keyed: whatever detection said
            # was about the switchboard's greeting, and the seconds are the switchboard's.
            # Nothing is observed; the check is the tester's from its first question.
            _note(self.engine, event.attempt_id, {}, answered_at=event.at)
            self._conclude(event, attempt, {}, HANDED_EXTENSION)
        elif kind is EventKind.ANSWERED:
            _note(self.engine, event.attempt_id, {}, answered_at=event.at)
            if event.answered_by in (ANSWERED_BY_PERSON, ANSWERED_BY_UNKNOWN):
                self._answered(event, attempt, event.answered_by)
            # No verdict yet: detection is still listening; the call's end concludes it.
        elif kind is EventKind.MACHINE:
            _note(self.engine, event.attempt_id, {}, answered_at=event.at)
            self._answered(event, attempt, "machine")
        elif kind is EventKind.COMPLETED:
            # Over before detection could tell (or the dialer has none): a person must say.
            self._answered(event, attempt, ANSWERED_BY_UNKNOWN)
        elif kind in UNANSWERED and self._last_try(attempt, kind):
            self._conclude(event, attempt, {"answered": False})
        elif kind in UNANSWERED or kind is EventKind.FAILED:
            detail = {**attempt.detail, "event": str(kind), **dict(event.detail)}
            finish_attempt(self.engine, event.attempt_id, kind, event.at, detail,
                           provider_call_id=event.provider_call_id or None)  # fmt: skip
        return True

    # -- the verdicts ----------------------------------------------------------------------

    def _answered(self, event: CallEvent, attempt: _Attempt, by: str) -> None:
        answered_at = attempt.answered_at or event.at
        observations: dict[str, Value] = {"answered": True}
        started = attempt.ringing_at or attempt.placed_at
        if started is not None:
            # Whole seconds, as a tester reads a stopwatch; never below 0 when clocks differ.
            observations["answer_seconds"] = max(0, round((answered_at - started).total_seconds()))
        if by != ANSWERED_BY_UNKNOWN:
            observations["answered_by"] = by
        self._conclude(event, attempt, observations)

    def _last_try(self, attempt: _Attempt, kind: EventKind) -> bool:
        """True when the calling rules, less the one attempt kept for a tester, leave the
        machine no further try after this one (a dead number is never tried again)."""
        if kind is EventKind.WRONG_NUMBER:
            return True
        with self.engine.connect() as conn:
            campaign = conn.execute(
                sa.select(campaigns_t.c.rules, campaigns_t.c.deadline).where(
                    campaigns_t.c.id == attempt.campaign_id
                )
            ).one()
            tries = conn.execute(
                sa.select(attempts_t.c.number).where(
                    attempts_t.c.queue_item_id == attempt.item_id,
                    sa.or_(attempts_t.c.outcome.is_(None), attempts_t.c.outcome != NOT_PLACED),
                )
            ).scalars()
            numbers = list(tries)
        rules = campaign_rules(campaign.rules, campaign.deadline)
        on_number = sum(1 for n in numbers if n == attempt.number)
        return on_number >= max(1, rules.max_attempts_per_number - 1) or len(numbers) >= max(
            1, rules.max_attempts_per_case - 1
        )

    def _conclude(
        self,
        event: CallEvent,
        attempt: _Attempt,
        observations: Mapping[str, Value],
        why: str | None = None,
    ) -> None:
        """Record the observations in the attempt's session; complete or hand off the check
        (audited with ``why``, or why the observations say)."""
        now = event.at
        session = open_session(self.engine, attempt.id, "agent", now)
        state = settle(session.script, observe(session.script, session.state, observations))
        with immediate(self.engine) as conn:
            conn.execute(
                sa.update(sessions_t)
                .where(sessions_t.c.id == session.id)
                .values(state=state.to_json(), updated_at=now)
            )
            if observations:
                why_observed = "observed by the dialer from the call's events"
                _audit(conn, now, self.actor, "hotline_check.observe", attempt, None,
                       dict(observations), why_observed)  # fmt: skip
        session = dataclasses.replace(session, state=state)
        done = finished(state)
        if not done:
            if why is None:
                by_person = observations.get("answered_by") == ANSWERED_BY_PERSON
                why = HANDED_PERSON if by_person else HANDED_UNTOLD
            if not hand_off(self.engine, attempt.id, self.actor, now, why):
                return  # the attempt ended meanwhile (a repeated event got there first)
        close_session(self.engine, session, self.actor, now)
        detail: dict[str, Any] = {
            **attempt.detail, "event": str(event.kind), **dict(event.detail),
            "observed": dict(observations),
        }  # fmt: skip
        if done:
            outcome = event.kind if event.kind in UNANSWERED else EventKind.MACHINE
            final = Disposition.COMPLETE
        else:
            # Not an interview stopped by anyone: the machine's part is done and a tester's
            # begins. An eligible non-interview that closes nothing (2.36).
            outcome, final = EventKind.ANSWERED, Disposition.OTHER_ELIGIBLE
            detail["handed_to"] = HandOff.AGENT.value
        finish_attempt(self.engine, attempt.id, outcome, now, detail, final=final,
                       provider_call_id=event.provider_call_id or None)  # fmt: skip


def settle(script: Script, state: SessionState) -> SessionState:
    """Pass the optional questions left when nothing else remains: the check is complete.

    Optional questions are passed only when that finishes the session; otherwise a tester
    will be asked them in order, with the rest.
    """
    trial = state
    while not finished(trial) and trial.current is not None:
        if not script.question(trial.current).optional:
            return state
        trial = decline(script, trial)
    return trial


def hand_off(engine: Engine, attempt_id: int, actor: str, now: datetime, why: str) -> bool:
    """Hand the attempt's queue item to a person (a tester), for good; audited.

    Done while the attempt is still out, so that no claim can take the item between the end of
    the machine's call and the hand-off. False when the attempt has ended already.
    """
    with immediate(engine) as conn:
        # The item first, then its attempt: every writer locks in this order.
        item = conn.execute(
            sa.select(items_t.c.id, items_t.c.handed_to)
            .where(
                items_t.c.id
                == sa.select(attempts_t.c.queue_item_id)
                .where(attempts_t.c.id == attempt_id)
                .scalar_subquery()
            )
            .with_for_update()
        ).first()
        attempt = _read_attempt(conn, attempt_id, lock=True)
        if item is None or attempt is None:
            return False
        if item.handed_to is None:
            conn.execute(
                sa.update(items_t)
                .where(items_t.c.id == item.id)
                .values(handed_to=HandOff.AGENT.value, handed_at=now)
            )
            _audit(conn, now, actor, "queue_item.hand_off", attempt, {"handed_to": None},
                   {"handed_to": HandOff.AGENT.value}, why)  # fmt: skip
        return True


def observed_answers(engine: Engine, item_id: int, script: Script) -> tuple[str, ...]:
    """What the machine recorded for a handed-off check, one line per observed question, in
    the script's words (for the tester's card); empty when nothing was observed."""
    with engine.connect() as conn:
        saved = conn.execute(
            sa.select(sessions_t.c.state)
            .where(
                sessions_t.c.queue_item_id == item_id,
                sessions_t.c.status == SessionStatus.STOPPED,
                sessions_t.c.script == script.name,
            )
            .order_by(sessions_t.c.id.desc())
            .limit(1)
        ).scalar()
    if saved is None:
        return ()
    state = SessionState.from_json(saved)
    answers = state.answer_map()
    lines = []
    for question in script.questions:
        value = answers.get(question.id)
        if question.observe is None or value is None:
            continue
        chosen = question.chosen(value)
        shown = chosen.label.get(state.language) if chosen else str(value)
        lines.append(f"{question.observe.value} = {shown}")
    return tuple(lines)


# -- the attempt as the machine needs it ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Attempt:
    id: int
    item_id: int
    campaign_id: int
    number: str
    placed_at: datetime | None
    answered_at: datetime | None
    ringing_at: datetime | None
    detail: dict[str, Any]


def _read_attempt(conn: sa.Connection, attempt_id: int, lock: bool = False) -> _Attempt | None:
    """The attempt while it is out (pending or placed), else None."""
    query = sa.select(
        attempts_t.c.id, attempts_t.c.queue_item_id, attempts_t.c.campaign_id,
        attempts_t.c.number, attempts_t.c.placed_at, attempts_t.c.answered_at,
        attempts_t.c.detail,
    ).where(attempts_t.c.id == attempt_id, attempts_t.c.state.in_(LIVE_ATTEMPT_STATES))  # fmt: skip
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        return None
    detail = dict(row.detail or {})
    ringing = detail.get("ringing_at")
    return _Attempt(
        row.id, row.queue_item_id, row.campaign_id, row.number, row.placed_at,
        row.answered_at, datetime.fromisoformat(ringing) if ringing else None, detail,
    )  # fmt: skip


def _attempt(engine: Engine, attempt_id: int) -> _Attempt | None:
    with engine.connect() as conn:
        return _read_attempt(conn, attempt_id)


def _note(
    engine: Engine, attempt_id: int, detail: Mapping[str, Any], answered_at: datetime | None = None
) -> None:
    """Keep the first ringing time (in the attempt's detail) and the answer time, once each."""
    with immediate(engine) as conn:
        attempt = _read_attempt(conn, attempt_id, lock=True)
        if attempt is None:
            return
        values: dict[str, Any] = {}
        new = {k: v for k, v in detail.items() if k not in attempt.detail}
        if new:
            values["detail"] = {**attempt.detail, **new}
        if answered_at is not None and attempt.answered_at is None:
            values["answered_at"] = answered_at
        if values:
            conn.execute(sa.update(attempts_t).where(attempts_t.c.id == attempt_id).values(values))


def _audit(
    conn: sa.Connection,
    now: datetime,
    actor: str,
    action: str,
    attempt: _Attempt,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    reason: str,
) -> None:
    conn.execute(
        sa.insert(audit_t).values(
            at=now, actor=actor, action=action, entity="queue_items", entity_id=attempt.item_id,
            before=before, after=after, reason=reason, attempt_id=attempt.id,
        )
    )  # fmt: skip
