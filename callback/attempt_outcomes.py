"""Ending attempts: an outcome, a refused placement or reconciliation settles the item.

Events finish an attempt exactly once (``finish_attempt``); an attempt the provider would
not take counts for nothing (``attempt_not_placed``); an attempt whose fate a dead worker
took with it is settled by ``reconcile_unknown``, never dialled again. Locking order as in
callback.claims: the item row first, then the attempt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from callback.appointments import validate_appointment
from callback.db import immediate
from callback.decisions import Reason
from callback.dial_plan import ITEM_WITH_CAMPAIGN, item_rules
from callback.dialing import EventKind
from callback.dispositions import (
    AgentOutcome,
    Disposition,
    Progress,
    attempt_disposition,
    final_disposition,
    is_final,
)
from callback.errors import CallbackError
from callback.models import AttemptState, QueueState
from callback.queues import (
    NOT_PLACED,
    WAIT_FINISHED,
    attempts_t,
    items_t,
    load_histories,
    schedule,
    slot_index,
)
from callback.rules import Appointment

q = items_t.c


@dataclass(frozen=True)
class AttemptResult:
    """What finishing (or reconciling) an attempt did; ``changed`` is False for a repeat."""

    attempt_id: int
    changed: bool
    disposition: str | None
    finished: bool
    final_disposition: str | None
    due_at: datetime | None
    wait_reason: str | None


class UnknownAttempt(CallbackError):
    """No attempt has that id."""


#: Reasons after an attempt that mean no further attempt will be made: the case closes.
CLOSING_REASONS = frozenset({Reason.CASE_LIMIT, Reason.NUMBERS_EXHAUSTED, Reason.DO_NOT_CALL})

# The item of an attempt, locked (item row only) for the transaction.
_LOCK_ITEM_OF_ATTEMPT = ITEM_WITH_CAMPAIGN.where(
    q.id
    == sa.select(attempts_t.c.queue_item_id)
    .where(attempts_t.c.id == sa.bindparam("attempt_id"))
    .scalar_subquery()
).with_for_update(of=items_t)


def attempt_not_placed(
    engine: Engine,
    attempt_id: int,
    now: datetime,
    retry_after: float,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Record that the provider would not take the call (429, 5xx, network); False if repeated.

    No telephone rang, so the attempt counts for nothing (not toward limits, not in the
    case's disposition): it is kept with outcome "not-placed" and code 3.11, its claim is
    released, and the case is due again no sooner than ``retry_after`` seconds from now.
    """
    values = {
        "attempt_id": attempt_id,
        "state": AttemptState.ENDED,
        "ended_at": now,
        "outcome": NOT_PLACED,
        "disposition": Disposition.NOT_ATTEMPTED.value,
        "detail": {"retry_after": retry_after, **dict(detail or {})},
    }
    with immediate(engine) as conn:
        item = conn.execute(_LOCK_ITEM_OF_ATTEMPT, {"attempt_id": attempt_id}).first()
        if item is None:
            raise UnknownAttempt(f"no attempt with id {attempt_id}")
        ended = conn.execute(
            attempts_t.update()
            .where(attempts_t.c.id == attempt_id, attempts_t.c.state == AttemptState.PENDING)
            .values({k: v for k, v in values.items() if k != "attempt_id"})
            .returning(attempts_t.c.worker)
        ).first()
        if ended is None:
            return False
        rules = item_rules(item)
        history = load_histories(conn, [item])[item.id].history
        due_at, reason = schedule(rules, history, now + timedelta(seconds=retry_after))
        update: dict[str, Any] = {"due_at": due_at, "wait_reason": reason}
        if item.held_by == ended.worker:
            update.update(held_by=None, held_at=None)
        conn.execute(items_t.update().where(q.id == item.id).values(**update))
        return True


def finish_attempt(
    engine: Engine,
    attempt_id: int,
    outcome: EventKind | AgentOutcome | str,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
    final: Disposition | str | None = None,
    appointment: Appointment | None = None,
    *,
    progress: Progress = Progress.NONE,
    provider_call_id: str | None = None,
) -> AttemptResult:
    """Record an attempt's outcome, update its item, and release the claim.

    The attempt's AAPOR code is ``final`` when given (the caller knows better: a survey's 1.1
    or 1.2, a supervisor's code), else ``attempt_disposition(outcome, progress)``. The case
    finishes when that code is final, or when the rules leave no further attempt (attempt
    limits, no number left, all numbers on the do-not-call list): its final code comes from
    ``final_disposition``. Otherwise it is rescheduled by the rules, with ``appointment`` if
    given (checked by ``validate_appointment``; a bad one raises and records nothing). A
    second call for the same attempt changes nothing and says so (``changed`` False).

    ``provider_call_id`` is the call the outcome came from: an attempt without one (its
    outcome came before its placement was recorded) keeps it, ended or not; one stored
    already is never replaced.
    """
    outcome = _outcome(outcome)
    code = Disposition(final) if final is not None else attempt_disposition(outcome, progress)
    values: dict[str, Any] = {
        "attempt_id": attempt_id,
        "state": AttemptState.ENDED,
        "ended_at": now,
        "outcome": str(outcome),
        "disposition": str(code),
    }
    with immediate(engine) as conn:
        # The item first, then its attempt: every writer locks in this order.
        item = conn.execute(_LOCK_ITEM_OF_ATTEMPT, {"attempt_id": attempt_id}).first()
        if item is None:
            raise UnknownAttempt(f"no attempt with id {attempt_id}")
        if provider_call_id:
            conn.execute(_KEEP_CALL_ID, {"attempt_id": attempt_id, "call_id": provider_call_id})
        if detail is not None:
            ended = conn.execute(_END_WITH_DETAIL, {**values, "detail": dict(detail)}).first()
        else:
            ended = conn.execute(_END, values).first()
        if ended is None:  # ended already, or marked unknown: a repeat changes nothing
            disposition = conn.execute(
                sa.select(attempts_t.c.disposition).where(attempts_t.c.id == attempt_id)
            ).scalar()
            return AttemptResult(
                attempt_id,
                False,
                disposition,
                item.state == QueueState.FINISHED,
                item.final_disposition,
                item.due_at,
                item.wait_reason,
            )
        return _settle(conn, item, ended, now, code, appointment)


def _outcome(value: EventKind | AgentOutcome | str) -> EventKind | AgentOutcome:
    if isinstance(value, EventKind | AgentOutcome):
        return value
    for kind in (EventKind, AgentOutcome):
        try:
            return kind(value)
        except ValueError:
            pass
    raise ValueError(f"unknown attempt outcome {value!r}")


# Ends an attempt only if it is still out: the row lock and the state test in one statement.
_END = (
    attempts_t.update()
    .where(
        attempts_t.c.id == sa.bindparam("attempt_id"),
        attempts_t.c.state.in_([AttemptState.PENDING, AttemptState.PLACED]),
    )
    .values(
        state=sa.bindparam("state"),
        ended_at=sa.bindparam("ended_at"),
        outcome=sa.bindparam("outcome"),
        disposition=sa.bindparam("disposition"),
    )
    .returning(attempts_t.c.id, attempts_t.c.worker, attempts_t.c.placed_at)
)
_END_WITH_DETAIL = _END.values(detail=sa.bindparam("detail"))
# Fills a missing call id only: replacing one would point the audit trail at another call.
_KEEP_CALL_ID = (
    attempts_t.update()
    .where(attempts_t.c.id == sa.bindparam("attempt_id"), attempts_t.c.provider_call_id.is_(None))
    .values(provider_call_id=sa.bindparam("call_id"))
)


def _settle(
    conn: Connection,
    item: Row[Any],
    attempt: Row[Any],
    now: datetime,
    code: Disposition,
    appointment: Appointment | None,
) -> AttemptResult:
    """Settle the item of an attempt just ended: counters, finish or next due time, release."""
    rules = item_rules(item)
    # A final code needs only the attempts' codes; scheduling needs the numbers too.
    known = load_histories(conn, [item], numbers=not is_final(code) or appointment is not None)[
        item.id
    ]
    # The appointment this attempt kept (or passed) is used up; a new one replaces it.
    history = dataclasses.replace(known.history, appointment=appointment)
    if appointment is not None:
        validate_appointment(
            rules, appointment, now, dataclasses.replace(history, finished=is_final(code))
        )
    placed = attempt.placed_at or now
    values: dict[str, Any] = {
        "attempts": item.attempts + 1,
        "last_attempt_at": max(placed, item.last_attempt_at or placed),
        "appointment_at": appointment.at if appointment else None,
        "appointment_agent": appointment.agent if appointment else None,
        "appointment_number": appointment.number if appointment else None,
    }
    slot = slot_index(rules, placed)
    if slot is not None:
        values[f"slot{slot}_attempts"] = getattr(item, f"slot{slot}_attempts") + 1
    if item.held_by == attempt.worker:
        values.update(held_by=None, held_at=None)
    final_code: str | None = item.final_disposition
    finished = item.state == QueueState.FINISHED
    due_at, reason = None, item.wait_reason
    if not finished:  # a case closed meanwhile (campaign closed) keeps its final code
        if is_final(code):
            final_code = final_disposition(known.codes, max_attempts_reached=False)
        else:
            due_at, reason = schedule(rules, history, now)
            if due_at is None and Reason(reason) in CLOSING_REASONS:
                final_code = final_disposition(known.codes, max_attempts_reached=True)
        if final_code is not None:
            finished, due_at, reason = True, None, WAIT_FINISHED
            values.update(state=QueueState.FINISHED, final_disposition=final_code, finished_at=now)
        values.update(due_at=due_at, wait_reason=reason)
    conn.execute(items_t.update().where(q.id == item.id).values(**values))
    return AttemptResult(attempt.id, True, str(code), finished, final_code, due_at, reason)


def reconcile_unknown(
    engine: Engine, older_than: timedelta, now: datetime, only: Sequence[int] | None = None
) -> list[int]:
    """Mark attempts pending or placed for longer than ``older_than`` as unknown; return them.

    Their worker died before learning their fate, so whether the phone rang is not known:
    such an attempt is never dialled again, counts as an attempt with code 3.16 (technical
    problems), and its item is rescheduled (or finished, if that was its last attempt).
    Choose ``older_than`` longer than the longest call: a live call marked unknown keeps that
    mark when its outcome arrives.
    """
    cutoff = now - older_than
    started = sa.func.coalesce(attempts_t.c.placed_at, attempts_t.c.created_at)
    out = attempts_t.c.state.in_([AttemptState.PENDING, AttemptState.PLACED])
    query = sa.select(attempts_t.c.id, attempts_t.c.state, attempts_t.c.detail).where(
        out, started < cutoff
    )
    if only is not None:  # these and no others (a dead dispatcher's), whatever their age
        query = sa.select(attempts_t.c.id, attempts_t.c.state, attempts_t.c.detail).where(
            out, attempts_t.c.id.in_(list(only))
        )
    with engine.connect() as conn:
        found = conn.execute(query.order_by(attempts_t.c.id)).all()
    done = []
    for attempt_id, state, detail in found:
        with immediate(engine) as conn:
            item = conn.execute(_LOCK_ITEM_OF_ATTEMPT, {"attempt_id": attempt_id}).one()
            ended = conn.execute(
                _END_WITH_DETAIL,
                {
                    "attempt_id": attempt_id,
                    "state": AttemptState.UNKNOWN,
                    "ended_at": now,
                    "outcome": AttemptState.UNKNOWN.value,
                    "disposition": Disposition.TECHNICAL.value,
                    "detail": {**(detail or {}), "reconciled_from": state},
                },
            ).first()
            if ended is None:
                continue  # its outcome arrived meanwhile
            _settle(conn, item, ended, now, Disposition.TECHNICAL, None)
            done.append(attempt_id)
    return done
