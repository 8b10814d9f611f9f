"""A campaign's life after it is created: change its deadline or rules, pause, resume, close.

``sampled`` is the only status in which anything is dialled. A pause is the office's brake (a
script fault found, a complaint, a holiday moved): claims and new dials stop at once, in every
process, while calls already up run to their end and are recorded. ``resume`` takes up where
the pause stopped; ``close`` is for good. An edit changes when items may be called (the
deadline, the calling rules), never which items there are. None of them touches the sample,
its order or its weights, and each is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.campaigns import CampaignError, find_campaign
from callback.claims import Scope, forget_campaigns
from callback.db import immediate
from callback.errors import CallbackError
from callback.models import (
    AuditEntry,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    QueueItem,
    QueueState,
    table,
)
from callback.queues import refresh, rules_from_json, rules_to_json
from callback.spotchecks import HotlineDesign

campaigns_t, audit_t, items_t = table(Campaign), table(AuditEntry), table(QueueItem)

SAMPLED = CampaignStatus.SAMPLED.value
PAUSED, CLOSED = CampaignStatus.PAUSED.value, CampaignStatus.CLOSED.value


def pause_campaign(
    engine: Engine, campaign: int | str, actor: str, now: datetime, reason: str
) -> None:
    """Stop dialling campaign ``campaign`` until it is resumed; calls already up finish."""
    if not reason.strip():
        raise CampaignError("say why the campaign is paused (--reason)")
    with immediate(engine) as conn:
        row = find_campaign(conn, campaign, lock=True)
        if row.status == PAUSED:
            raise CampaignError(f"campaign {row.name} is already paused")
        if row.status != SAMPLED:
            raise CampaignError(
                f"campaign {row.name} is {row.status}: only a sampled campaign is dialled, "
                "so only a sampled one can be paused"
            )
        _set(conn, row.id, SAMPLED, PAUSED, actor, now, reason, "campaign.pause")
    forget_campaigns()


def resume_campaign(
    engine: Engine, campaign: int | str, actor: str, now: datetime, reason: str = "resumed"
) -> None:
    """Let a paused campaign be dialled again, within its window and before its deadline."""
    with immediate(engine) as conn:
        row = find_campaign(conn, campaign, lock=True)
        if row.status != PAUSED:
            raise CampaignError(f"campaign {row.name} is {row.status}, not paused")
        _set(conn, row.id, PAUSED, SAMPLED, actor, now, reason or "resumed", "campaign.resume")
    forget_campaigns()


def close_campaign(
    engine: Engine, campaign: int | str, actor: str, now: datetime, reason: str = "closed"
) -> None:
    """Close a campaign: nothing more is dialled for it. Its queue items stay as they are."""
    with immediate(engine) as conn:
        row = find_campaign(conn, campaign, lock=True)
        if row.status == CLOSED:
            raise CampaignError(
                f"campaign {row.name} was already closed on {row.closed_at:%Y-%m-%d}"
            )
        _set(conn, row.id, row.status, CLOSED, actor, now, reason or "closed", "campaign.close")
        conn.execute(sa.update(campaigns_t).where(campaigns_t.c.id == row.id).values(closed_at=now))
    forget_campaigns()


#: Leave a setting as it is (``edit_campaign``'s default); None is a value (no deadline).
KEEP: Any = object()


def edit_campaign(
    engine: Engine,
    campaign: int | str,
    actor: str,
    now: datetime,
    reason: str,
    *,
    deadline: datetime | None = KEEP,
    rules: Mapping[str, Any] | None = KEEP,
    title: str | None = KEEP,
) -> list[str]:
    """Change a campaign's deadline, calling rules or title; return the names of what changed.

    Audited with the values before and after. The rules are checked, with the deadline, before
    anything is stored; ``rules=None`` goes back to the defaults (a spot-check campaign's
    office hours). The sample is never touched: only when its items may be called changes, and
    their due times are worked out again at once. A closed campaign is not edited.
    """
    if not reason.strip():
        raise CampaignError("say why the campaign is changed (--reason)")
    if deadline is not KEEP and deadline is not None and deadline.tzinfo is None:
        raise CampaignError("the deadline must carry a time zone")
    with immediate(engine) as conn:
        row = find_campaign(conn, campaign, lock=True)
        if row.status == CLOSED:
            raise CampaignError(f"campaign {row.name} is closed: it is not changed any more")
        new_deadline = row.deadline if deadline is KEEP else deadline
        new_rules = row.rules
        if rules is not KEEP or deadline is not KEEP:
            wanted = row.rules if rules is KEEP else rules
            if wanted is None and row.target == CampaignTarget.HOTLINES.value:
                wanted = rules_to_json(HotlineDesign.from_json(row.design).rules)
            try:
                new_rules = rules_to_json(rules_from_json(wanted or {}, new_deadline))
            except CallbackError as exc:
                raise CampaignError(f"campaign {row.name}: {exc}") from None
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for field, old, new in (
            ("deadline", row.deadline, new_deadline),
            ("rules", row.rules, new_rules),
            ("title", row.title, row.title if title is KEEP else title),
        ):
            if old != new:
                before[field], after[field], values[field] = _json(old), _json(new), new
        if not values:
            return []
        conn.execute(sa.update(campaigns_t).where(campaigns_t.c.id == row.id).values(**values))
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action="campaign.edit", entity="campaign", entity_id=row.id,
                before=before, after=after, reason=reason,
            )
        )  # fmt: skip
        scheduled = row.status in (SAMPLED, PAUSED)
    forget_campaigns()
    if scheduled and ("deadline" in values or "rules" in values):
        refresh(engine, row.id, now)
    return list(values)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _set(
    conn: Connection,
    campaign_id: int,
    before: str,
    after: str,
    actor: str,
    now: datetime,
    reason: str,
    action: str,
) -> None:
    conn.execute(sa.update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(status=after))
    conn.execute(
        sa.insert(audit_t).values(
            at=now, actor=actor, action=action, entity="campaign", entity_id=campaign_id,
            before={"status": before}, after={"status": after}, reason=reason,
        )
    )  # fmt: skip


@dataclass(frozen=True)
class Pause:
    at: datetime
    actor: str
    reason: str


def last_pause(engine: Engine, campaign_id: int) -> Pause | None:
    """When, by whom and why the campaign was last paused (from the audit log)."""
    a = audit_t.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(a.at, a.actor, a.reason)
            .where(a.entity == "campaign", a.entity_id == campaign_id, a.action == "campaign.pause")
            .order_by(a.id.desc())
            .limit(1)
        ).first()
    return None if row is None else Pause(row.at, row.actor, row.reason)


def pause_notes(
    conn: Connection, campaigns: Mapping[int, str], start: datetime, end: datetime, tz: tzinfo
) -> list[str]:
    """A line for each campaign that was paused at some time in ``[start, end)``: when, by
    whom, why, and when it was resumed, so that a report's readers know why calls stopped."""
    if not campaigns:
        return []
    a = audit_t.c
    rows = conn.execute(
        sa.select(a.entity_id, a.action, a.at, a.actor, a.reason)
        .where(
            a.entity == "campaign",
            a.action.in_(["campaign.pause", "campaign.resume"]),
            a.entity_id.in_(list(campaigns)),
            a.at < end,
        )
        .order_by(a.at, a.id)
    ).all()
    notes = []
    for campaign_id, name in campaigns.items():
        events = [r for r in rows if r.entity_id == campaign_id]
        before = [r for r in events if r.at < start]
        during = [r for r in events if r.at >= start]
        parts = []
        if before and before[-1].action == "campaign.pause":
            p = before[-1]
            parts.append(f"paused since {_local(p.at, tz)} by {p.actor} ({p.reason})")
        for r in during:
            if r.action == "campaign.pause":
                parts.append(f"paused {_local(r.at, tz)} by {r.actor} ({r.reason})")
            else:
                parts.append(f"resumed {_local(r.at, tz)}")
        if parts:
            last = (during or before)[-1]
            tail = (
                "; still paused at the end of the week" if last.action == "campaign.pause" else ""
            )
            notes.append(f"{name}: {', '.join(parts)}{tail}")
    return notes


def paused_in_scope(engine: Engine, scope: Scope) -> list[tuple[str, Pause | None]]:
    """Paused campaigns with open items ``scope`` covers, and their last pause: what an agent
    who finds nothing due should be told."""
    q = items_t.c
    query = (
        sa.select(campaigns_t.c.id, campaigns_t.c.name)
        .where(
            campaigns_t.c.status == PAUSED,
            sa.exists().where(
                q.campaign_id == campaigns_t.c.id,
                q.state == QueueState.OPEN.value,
                *([q.unit_id.in_(sorted(scope.units))] if scope.units is not None else []),
            ),
        )
        .order_by(campaigns_t.c.name)
    )
    if scope.campaigns is not None:
        query = query.where(campaigns_t.c.id.in_(sorted(scope.campaigns)))
    with engine.connect() as conn:
        found = conn.execute(query).all()
    return [(name, last_pause(engine, campaign_id)) for campaign_id, name in found]


def _local(at: datetime, tz: tzinfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M}"
