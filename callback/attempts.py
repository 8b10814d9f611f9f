"""The outbox of attempts: written before a number is dialled, finished once, never redialled.

``begin_attempt`` writes the attempt row in the transaction that re-checks everything that
could make the call wrong (window, deadline, limits, do-not-call, the claim still held); the
dialer is asked to dial only after it commits. Events finish an attempt exactly once, and an
attempt whose fate a dead worker took with it is settled by ``reconcile_unknown``, never
dialled again. Locking order as in callback.claims: the item row first, then the attempt.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from callback.appointments import validate_appointment
from callback.claims import (
    AttemptInProgress,
    Claim,
    ClaimError,
    ClaimLost,
    NotCallable,
    NotDue,
    NumberNotUsable,
    OnDoNotCallList,
)
from callback.db import immediate
from callback.decisions import Reason, decide, is_callable, usable_numbers
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
from callback.models import (
    AttemptState,
    CampaignStatus,
    Contact,
    Hotline,
    QueueState,
    table,
)
from callback.queues import (
    NOT_PLACED,
    WAIT_FINISHED,
    ItemHistory,
    attempts_t,
    campaign_rules,
    campaigns_t,
    dnc_t,
    items_t,
    load_histories,
    reschedule,
    schedule,
    slot_index,
)
from callback.rules import Appointment, CallingRules

log = logging.getLogger(__name__)
q = items_t.c
contacts_t, hotlines_t = table(Contact), table(Hotline)


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


# -- claiming --------------------------------------------------------------------------------


class UnknownAttempt(CallbackError):
    """No attempt has that id."""


#: Reasons after an attempt that mean no further attempt will be made: the case closes.
CLOSING_REASONS = frozenset({Reason.CASE_LIMIT, Reason.NUMBERS_EXHAUSTED, Reason.DO_NOT_CALL})


def _mask(number: str) -> str:
    # Messages reach logs and screens: never a citizen's whole number.
    return number[:6] + "****" + number[-4:] if len(number) > 10 else "****" + number[-2:]


# An item with what its campaign says about it, locked (item row only) for the transaction.
_ITEM = sa.select(
    items_t,
    campaigns_t.c.status.label("campaign_status"),
    campaigns_t.c.rules.label("campaign_rules"),
    campaigns_t.c.deadline.label("campaign_deadline"),
).join_from(items_t, campaigns_t, campaigns_t.c.id == q.campaign_id)
_LOCK_ITEM = _ITEM.where(q.id == sa.bindparam("item_id")).with_for_update(of=items_t)
_LOCK_ITEM_OF_ATTEMPT = _ITEM.where(
    q.id
    == sa.select(attempts_t.c.queue_item_id)
    .where(attempts_t.c.id == sa.bindparam("attempt_id"))
    .scalar_subquery()
).with_for_update(of=items_t)


def _rules(item: Row[Any]) -> CallingRules:
    return campaign_rules(item.campaign_rules, item.campaign_deadline)


def next_number(engine: Engine, claim: Claim, now: datetime) -> str | None:
    """Return the number the rules would dial next for a claimed item, or None if none."""
    with engine.connect() as conn:
        item = conn.execute(
            _ITEM.where(q.id == sa.bindparam("item_id")), {"item_id": claim.item_id}
        ).one()
        history = load_histories(conn, [item])[item.id].history
    return decide(_rules(item), history, now).number


def extension_of(engine: Engine, claim: Claim, number: str) -> str | None:
    """The extension to key after ``number`` answers, for a claimed item: the case's current
    contact's (0571-8800 1111 转 8001 in the frame) or the hotline's, as published."""
    if claim.case_id is not None:
        query = sa.select(contacts_t.c.extension).where(
            contacts_t.c.case_id == claim.case_id,
            contacts_t.c.e164 == number,
            contacts_t.c.superseded_at.is_(None),
        )
    elif claim.hotline_id is not None:
        query = sa.select(hotlines_t.c.extension).where(
            hotlines_t.c.id == claim.hotline_id, hotlines_t.c.e164 == number
        )
    else:
        return None
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).scalar()


_RELEASE = (
    items_t.update()
    .where(q.id == sa.bindparam("item_id"), q.held_by == sa.bindparam("worker"))
    .values(held_by=None, held_at=None)
)
_INSERT_ATTEMPT = attempts_t.insert().returning(attempts_t.c.id)
_IN_PROGRESS = (
    items_t.update()
    .where(q.id == sa.bindparam("item_id"))
    .values(due_at=None, wait_reason=str(Reason.IN_PROGRESS), held_at=sa.bindparam("now"))
)


def begin_attempt(engine: Engine, claim: Claim, number: str, dialer: str, now: datetime) -> int:
    """Write the attempt row for dialling ``number`` before it is dialled; return its id.

    In the same transaction, re-check that the claim is still this worker's, the campaign may
    call now, no attempt of the item is pending or placed, the number is not on the
    do-not-call list and is one the rules allow, and the case is due. On any refusal but a
    lost claim the item is rescheduled and released (the refusal is committed), then a
    ClaimError says why.
    """
    with immediate(engine) as conn:
        item = conn.execute(_LOCK_ITEM, {"item_id": claim.item_id}).first()
        if item is None or item.state != QueueState.OPEN or item.held_by != claim.worker:
            raise ClaimLost(f"queue item {claim.item_id} is no longer held by {claim.worker}")
        rules = _rules(item)
        known = load_histories(conn, [item])[item.id]
        refusal = _refusal(conn, item, rules, known, number, now)
        if refusal is not None:
            reschedule(conn, rules, [item.id], now)
            conn.execute(_RELEASE, {"item_id": item.id, "worker": claim.worker})
        else:
            attempt_id: int = conn.execute(
                _INSERT_ATTEMPT,
                {
                    "queue_item_id": item.id,
                    "campaign_id": item.campaign_id,
                    "contact_id": known.contact_ids.get(number),
                    "number": number,
                    "worker": claim.worker,
                    "dialer": dialer,
                    "state": AttemptState.PENDING,
                    "created_at": now,
                },
            ).scalar_one()
            # due_at NULL keeps every claimer away until the attempt ends, however long the
            # call lasts and whatever becomes of the lease.
            conn.execute(_IN_PROGRESS, {"item_id": item.id, "now": now})
    if refusal is not None:
        raise refusal
    return attempt_id


_LISTED = sa.select(dnc_t.c.id).where(dnc_t.c.e164 == sa.bindparam("number"))


def _refusal(
    conn: Connection,
    item: Row[Any],
    rules: CallingRules,
    known: ItemHistory,
    number: str,
    now: datetime,
) -> ClaimError | None:
    if item.campaign_status != CampaignStatus.SAMPLED:
        return NotCallable(f"the campaign is {item.campaign_status}: nothing is dialled")
    if not is_callable(rules, now):
        return NotCallable("the campaign may not call now (window, working day or deadline)")
    if known.outstanding:
        return AttemptInProgress(f"attempt {known.outstanding[0]} of this case has not ended")
    # The case's numbers were read with their do-not-call status in this transaction; any
    # other number is asked of the list itself, so that the refusal names the right reason.
    history = known.history
    listed = (
        number in history.do_not_call
        if number in history.numbers
        else conn.execute(_LISTED, {"number": number}).first() is not None
    )
    if listed:
        return OnDoNotCallList(f"{_mask(number)} is on the do-not-call list")
    if number not in usable_numbers(rules, known.history):
        return NumberNotUsable(f"{_mask(number)} may not be dialled for this case")
    decision = decide(rules, known.history, now)
    if decision.at is None or decision.at > now:
        return NotDue(f"the case is not due now ({decision.reason})")
    return None


def attempt_placed(
    engine: Engine,
    attempt_id: int,
    provider_call_id: str | None,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Record that the dialer placed the call (the retry clock starts now); False if repeated.

    Only a pending attempt becomes placed, so a retried provider callback, or one arriving
    after the outcome, changes nothing. A provider may report the end of a call before its
    dialer returns from placing it: that attempt stays ended with its outcome, and only gains
    the call id and placing time it lacks (still False: it was not placed now). ``detail`` is
    added to the attempt's.
    """
    values: dict[str, Any] = {
        "state": AttemptState.PLACED, "placed_at": now, "provider_call_id": provider_call_id,
    }  # fmt: skip
    with immediate(engine) as conn:
        if detail:
            known = conn.execute(
                sa.select(attempts_t.c.detail).where(attempts_t.c.id == attempt_id)
            ).scalar()
            values["detail"] = {**(known or {}), **dict(detail)}
        done = conn.execute(
            attempts_t.update()
            .where(attempts_t.c.id == attempt_id, attempts_t.c.state == AttemptState.PENDING)
            .values(**values)
        )
        if done.rowcount > 0:
            return True
        _complete_placement(conn, attempt_id, provider_call_id or None, now)
        return False


def _complete_placement(
    conn: Connection, attempt_id: int, provider_call_id: str | None, now: datetime
) -> None:
    """Give an attempt that ended before its placement was recorded what the placement knew."""
    row = conn.execute(
        sa.select(
            attempts_t.c.state,
            attempts_t.c.outcome,
            attempts_t.c.provider_call_id,
            attempts_t.c.placed_at,
            attempts_t.c.ended_at,
        )
        .where(attempts_t.c.id == attempt_id)
        .with_for_update()
    ).first()
    # A not-placed attempt is one no telephone rang for; it keeps saying so.
    if row is None or row.state != AttemptState.ENDED or row.outcome == NOT_PLACED:
        return
    if provider_call_id is not None and row.provider_call_id not in (None, provider_call_id):
        # Two calls claiming one attempt: keep the first for the audit trail, and say so.
        log.warning(
            "attempt %s ended as call %s; its placement as call %s was not recorded",
            attempt_id,
            row.provider_call_id,
            provider_call_id,
        )
        return
    values: dict[str, Any] = {}
    if row.provider_call_id is None and provider_call_id is not None:
        values["provider_call_id"] = provider_call_id
    if row.placed_at is None:
        # Placed before it ended, whenever the dialer got round to saying so.
        values["placed_at"] = min(now, row.ended_at) if row.ended_at is not None else now
    if values:
        conn.execute(attempts_t.update().where(attempts_t.c.id == attempt_id).values(**values))


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
        rules = _rules(item)
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
    rules = _rules(item)
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
