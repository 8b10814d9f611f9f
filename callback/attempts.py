"""The outbox of attempts: an attempt's row is written before its number is dialled.

``begin_attempt`` writes the attempt row in the transaction that re-checks everything that
could make the call wrong (window, deadline, limits, do-not-call, the claim still held); the
dialer is asked to dial only after it commits, and ``attempt_placed`` records that it did.
callback.attempt_outcomes ends each attempt exactly once; none is ever dialled again. Locking
order as in callback.claims: the item row first, then the attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

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
from callback.dial_plan import ITEM_WITH_CAMPAIGN, item_rules
from callback.models import AttemptState, CampaignStatus, QueueState
from callback.queues import (
    NOT_PLACED,
    ItemHistory,
    attempts_t,
    dnc_t,
    items_t,
    load_histories,
    reschedule,
)
from callback.rules import CallingRules

log = logging.getLogger(__name__)
q = items_t.c


def _mask(number: str) -> str:
    # Messages reach logs and screens: never a citizen's whole number.
    return number[:6] + "****" + number[-4:] if len(number) > 10 else "****" + number[-2:]


# The item, locked (item row only) for the transaction.
_LOCK_ITEM = ITEM_WITH_CAMPAIGN.where(q.id == sa.bindparam("item_id")).with_for_update(of=items_t)
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
        rules = item_rules(item)
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
