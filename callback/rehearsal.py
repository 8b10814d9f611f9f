"""Rehearse a campaign with the simulated dialer on a virtual clock, to its end, in seconds.

The loop is the dispatcher's (claim what is due, write the attempt, dial, hear the events),
but time jumps: when nothing more is due now, the clock moves to the next due time instead
of waiting for it. Calling windows, holidays, retry delays, slots and the deadline all apply
exactly as in a real campaign, so a rehearsal shows what the real one would do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.attempts import attempt_placed, begin_attempt
from callback.calls import CallHandler
from callback.claims import ClaimError, Scope, claim_next, release
from callback.dial_plan import next_number
from callback.dialing import CallRequest, Dialer
from callback.models import Campaign, QueueItem, QueueState, table
from callback.queues import refresh

items_t, campaigns_t = table(QueueItem), table(Campaign)


@dataclass
class RehearsalReport:
    started: datetime
    ended: datetime
    attempts: int = 0
    steps: int = 0
    #: Open items left when the rehearsal stopped (deadline, limits, or max_steps).
    open_items: int = 0
    log: list[str] = field(default_factory=list)


def rehearse(
    engine: Engine,
    campaign_id: int,
    dialer_factory: Callable[[CallHandler], Dialer],
    start: datetime,
    lines: int = 20,
    call_minutes: float = 3.0,
    max_steps: int = 100_000,
    progress: Callable[[RehearsalReport, datetime], None] | None = None,
) -> RehearsalReport:
    """Run the campaign from ``start`` until nothing is left to call.

    ``lines`` calls are placed at each step (the simulated call centre's lines), and a step
    lasts ``call_minutes`` of virtual time: that, and the rules, set the pace.
    """
    handler = CallHandler(engine, actor="rehearsal", clock=lambda: now)
    dialer = dialer_factory(handler)
    with engine.connect() as conn:
        name = conn.execute(
            sa.select(campaigns_t.c.dialer).where(campaigns_t.c.id == campaign_id)
        ).scalar_one()
    worker = f"rehearsal:{campaign_id}"
    scope = Scope(campaigns=frozenset({campaign_id}))
    now = start
    report = RehearsalReport(started=start, ended=start)
    refresh(engine, campaign_id, now)
    step_length = timedelta(minutes=call_minutes)
    while report.steps < max_steps:
        report.steps += 1
        placed = 0
        while placed < lines:
            claim = claim_next(engine, worker, scope, now)
            if claim is None:
                break
            number = next_number(engine, claim, now)
            if number is None:
                release(engine, claim.item_id, worker)
                continue
            try:
                attempt_id = begin_attempt(engine, claim, number, name, now)
            except ClaimError:
                continue  # the queue has rescheduled and released it
            request = CallRequest(attempt_id, number, metadata={"attempt": claim.attempts + 1})
            call_id = dialer.start(request)
            attempt_placed(engine, attempt_id, call_id, now)
            placed += 1
        dialer.poll(now)
        report.attempts += placed
        if progress is not None:
            progress(report, now)
        if placed == lines:
            now += step_length  # the lines are busy: the next calls go out after these
            continue
        upcoming = _next_due(engine, campaign_id, now)
        if upcoming is None:
            break
        now = max(upcoming, now + step_length)
    dialer.close()
    report.ended = now
    report.open_items = _open_items(engine, campaign_id)
    return report


def _next_due(engine: Engine, campaign_id: int, now: datetime) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.min(items_t.c.due_at)).where(
                items_t.c.campaign_id == campaign_id,
                items_t.c.state == QueueState.OPEN,
                items_t.c.due_at.is_not(None),
                # A check handed to a tester is a person's work, not the simulated dialer's.
                items_t.c.handed_to.is_(None),
            )
        ).scalar()


def _open_items(engine: Engine, campaign_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    items_t.c.campaign_id == campaign_id, items_t.c.state == QueueState.OPEN
                )
            ).scalar_one()
        )
