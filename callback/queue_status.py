"""What each unit's queue holds now: due, held, waiting (and for what), finished (and how).

``callback queue status`` prints it; the office reads it to see where a campaign stands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.decisions import is_callable
from callback.models import Campaign, CampaignStatus, QueueItem, QueueState, Unit, table
from callback.queues import LEASE, WAIT_APPOINTMENT, WAIT_NEW, WAIT_RETRY, campaign_rules

items_t, campaigns_t, units_t = table(QueueItem), table(Campaign), table(Unit)


@dataclass
class QueueStatus:
    """What one unit's queue of one campaign holds at a moment."""

    campaign: str
    unit: str
    #: Whether the campaign may call now (sampled, in a window, on a working day, in time).
    calling: bool
    due: int = 0  # may be claimed now
    held: int = 0  # claimed by a worker (being called, or about to be)
    retry: int = 0  # waiting for a retry delay or another slot
    appointment: int = 0  # waiting for an appointment
    other: int = 0  # waiting for anything else (see waiting)
    finished: int = 0
    #: Open items waiting for something other than a retry or an appointment, by reason:
    #: a callback.decisions.Reason, "window" (not yet called, the window is closed) or
    #: "unscheduled" (the queue has not been refreshed since sampling).
    waiting: dict[str, int] = field(default_factory=dict)
    #: Finished items by final AAPOR disposition code.
    dispositions: dict[str, int] = field(default_factory=dict)
    #: Open items an automated dialer handed to a person (a tester), whatever they wait for;
    #: they are counted in their bucket above too.
    handed: int = 0
    #: The campaign's status: only a sampled one calls (a paused or closed one never does).
    campaign_status: str = CampaignStatus.SAMPLED.value

    @property
    def open(self) -> int:
        return self.due + self.held + self.retry + self.appointment + self.other

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "open": self.open}


def queue_status(
    engine: Engine,
    now: datetime,
    campaign: str | None = None,
    unit: str | None = None,
    lease: timedelta = LEASE,
) -> list[QueueStatus]:
    """Count each campaign's and unit's queue items by what they are waiting for.

    An item counts as held only while its claim is alive (claimed less than ``lease`` ago);
    a vanished worker's item counts as whatever it waits for, as the next claim will see it.
    """
    q = items_t.c
    live = sa.and_(q.held_by.is_not(None), q.held_at >= now - lease)
    bucket = sa.case(
        (q.state == QueueState.FINISHED, "finished"),
        (live, "held"),
        (q.due_at <= now, "due"),
        (sa.and_(q.due_at > now, q.wait_reason == WAIT_RETRY), "retry"),
        (sa.and_(q.due_at > now, q.wait_reason == WAIT_APPOINTMENT), "appointment"),
        (sa.and_(q.due_at > now, q.wait_reason == WAIT_NEW), "window"),
        (sa.and_(q.due_at.is_(None), q.wait_reason == WAIT_NEW), "unscheduled"),
        else_=sa.func.coalesce(q.wait_reason, "unscheduled"),
    ).label("bucket")
    query = (
        sa.select(
            campaigns_t.c.id,
            campaigns_t.c.name,
            units_t.c.name,
            bucket,
            q.final_disposition,
            sa.func.count(),
            # Open items handed to a person, in the same pass.
            sa.func.sum(
                sa.case((sa.and_(q.handed_to.is_not(None), q.state == QueueState.OPEN), 1), else_=0)
            ),
        )
        .select_from(items_t.join(campaigns_t).join(units_t, units_t.c.id == q.unit_id))
        .group_by(campaigns_t.c.id, campaigns_t.c.name, units_t.c.name, bucket, q.final_disposition)
    )
    if campaign is not None:
        query = query.where(campaigns_t.c.name == campaign)
    if unit is not None:
        query = query.where(units_t.c.name == unit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        campaign_rows = conn.execute(
            sa.select(
                campaigns_t.c.id, campaigns_t.c.status, campaigns_t.c.rules, campaigns_t.c.deadline
            ).where(campaigns_t.c.id.in_({r[0] for r in rows}))
        ).all()
    calling = {
        c.id: c.status == CampaignStatus.SAMPLED
        and is_callable(campaign_rules(c.rules, c.deadline), now)
        for c in campaign_rows
    }
    statuses = {c.id: c.status for c in campaign_rows}
    out: dict[tuple[str, str], QueueStatus] = {}
    for campaign_id, campaign_name, unit_name, what, code, n, handed in rows:
        key = (campaign_name, unit_name)
        if key not in out:
            out[key] = QueueStatus(
                campaign_name, unit_name, calling[campaign_id],
                campaign_status=statuses[campaign_id],
            )  # fmt: skip
        status = out[key]
        status.handed += int(handed or 0)
        if what == "finished":
            status.finished += n
            status.dispositions[code or "none"] = status.dispositions.get(code or "none", 0) + n
        elif what in ("held", "due", "retry", "appointment"):
            setattr(status, what, getattr(status, what) + n)
        else:
            status.other += n
            status.waiting[what] = status.waiting.get(what, 0) + n
    return [out[k] for k in sorted(out)]
