"""Campaigns in the database: create, find, list and summarise them, and draw each one once.

Drawing (a case campaign's sample, a hotline campaign's spot checks) happens in one write
transaction here; what is read and written for it is callback.campaign_draws'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from callback.campaign_draws import draw_cases, plan_hotlines
from callback.claims import forget_campaigns
from callback.db import immediate
from callback.errors import CallbackError
from callback.models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
    QueueItem,
    QueueState,
    Unit,
    table,
)
from callback.queues import rules_from_json, rules_to_json
from callback.sampling_design import SamplingDesign
from callback.spotchecks import HotlineDesign

campaigns_t, units_t, queue_t = table(Campaign), table(Unit), table(QueueItem)

#: Letters (any script), digits, dot, dash and underscore: no quoting needed in a shell.
_NAME = re.compile(r"[^\W_][\w.\-]{0,99}")
Design = SamplingDesign | HotlineDesign


class CampaignError(CallbackError):
    """A campaign cannot be created, found, sampled or closed as asked."""


def load_design(target: str, data: Mapping[str, Any]) -> Design:
    """Read a campaign's stored design for its target."""
    if target == CampaignTarget.HOTLINES.value:
        return HotlineDesign.from_json(data)
    return SamplingDesign.from_json(data)


# -- creating, finding, closing ----------------------------------------------------------------


def create_campaign(
    engine: Engine,
    name: str,
    design: Design,
    *,
    script: str,
    dialer: str,
    created_by: str,
    now: datetime,
    title: str | None = None,
    rules: Mapping[str, Any] | None = None,
    deadline: datetime | None = None,
    review_corrections: bool = False,
) -> int:
    """Store a new campaign in status 'draft' and return its id.

    The target follows from the design: a SamplingDesign samples cases, a HotlineDesign plans
    spot checks. ``rules`` is callback.queues' JSON of the calling rules; script and dialer
    are plugin names, stored as given and resolved when the campaign runs.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.isdigit():
        raise CampaignError(
            f"campaign name {name!r}: use 1-100 letters, digits, '.', '-' or '_', starting "
            "with a letter or digit, and not only digits (e.g. 2018-summer)"
        )
    for what, value in (("script", script), ("dialer", dialer)):
        if not isinstance(value, str) or not value.strip():
            raise CampaignError(f"campaign {name}: the {what} name is empty")
    if deadline is not None and deadline.tzinfo is None:
        raise CampaignError(f"campaign {name}: the deadline must carry a time zone")
    target = CampaignTarget.HOTLINES if isinstance(design, HotlineDesign) else CampaignTarget.CASES
    # Stored with every setting written out (and checked now, not when the first call is due),
    # so a campaign keeps its rules when the defaults change. A spot check's calls fall inside
    # the office hours of its design unless rules say otherwise.
    try:
        if rules is None and isinstance(design, HotlineDesign):
            stored_rules = rules_to_json(design.rules)
        else:
            stored_rules = rules_to_json(rules_from_json(rules or {}, deadline))
    except CallbackError as exc:
        raise CampaignError(f"campaign {name}: {exc}") from None
    with immediate(engine) as conn:
        taken = conn.execute(sa.select(campaigns_t.c.id).where(campaigns_t.c.name == name)).first()
        if taken is not None:
            raise CampaignError(f"a campaign named {name} already exists")
        return int(
            conn.execute(
                sa.insert(campaigns_t)
                .values(
                    name=name,
                    title=title,
                    target=target.value,
                    script=script,
                    dialer=dialer,
                    period_start=design.period_start,
                    period_end=design.period_end,
                    deadline=deadline,
                    rules=stored_rules,
                    design=design.to_json(),
                    review_corrections=review_corrections,
                    status=CampaignStatus.DRAFT.value,
                    created_by=created_by,
                    created_at=now,
                )
                .returning(campaigns_t.c.id)
            ).scalar_one()
        )


def find_campaign(conn: Connection, campaign: int | str, lock: bool = False) -> Row[Any]:
    """The campaign row by id (an int) or name (a str)."""
    column = campaigns_t.c.id if isinstance(campaign, int) else campaigns_t.c.name
    query = sa.select(campaigns_t).where(column == campaign)
    if lock:  # PostgreSQL: two samplers of one campaign queue here; SQLite holds the db lock
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise CampaignError(f"no campaign {campaign!r}")
    return row


@dataclass
class QueueCount:
    unit: str
    items: int
    open: int
    finished: int


@dataclass
class CampaignSummary:
    """What ``callback campaign show`` and ``list`` print."""

    id: int
    name: str
    title: str | None
    target: str
    status: str
    script: str
    dialer: str
    period_start: date
    period_end: date
    deadline: datetime | None
    created_by: str
    created_at: datetime
    sampled_at: datetime | None
    closed_at: datetime | None
    items: int = 0
    open: int = 0
    finished: int = 0
    #: One per unit's queue (``show`` only).
    queues: list[QueueCount] = field(default_factory=list)
    design: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def _summary(row: Row[Any], counts: Mapping[str, int]) -> CampaignSummary:
    return CampaignSummary(
        row.id, row.name, row.title, row.target, row.status, row.script, row.dialer,
        row.period_start, row.period_end, row.deadline, row.created_by, row.created_at,
        row.sampled_at, row.closed_at, counts.get("items", 0), counts.get("open", 0),
        counts.get("finished", 0), design=row.design, report=row.sample_report,
    )  # fmt: skip


def _counts(by: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    is_open = sa.case((queue_t.c.state == QueueState.OPEN.value, 1), else_=0)
    return sa.select(
        *by, sa.func.count().label("items"), sa.func.coalesce(sa.func.sum(is_open), 0)
    ).group_by(*by)


def campaign_summary(engine: Engine, campaign: int | str) -> CampaignSummary:
    """Describe one campaign: its settings, its sample report and its queues."""
    with engine.connect() as conn:
        row = find_campaign(conn, campaign)
        queues = [
            QueueCount(unit, items, opened, items - opened)
            for unit, items, opened in conn.execute(
                _counts([units_t.c.name])
                .select_from(queue_t.join(units_t, units_t.c.id == queue_t.c.unit_id))
                .where(queue_t.c.campaign_id == row.id)
                .order_by(units_t.c.name)
            )
        ]
    items = sum(q.items for q in queues)
    opened = sum(q.open for q in queues)
    summary = _summary(row, {"items": items, "open": opened, "finished": items - opened})
    summary.queues = queues
    return summary


def list_campaigns(engine: Engine) -> list[CampaignSummary]:
    """Every campaign, newest first, with its queue item counts."""
    with engine.connect() as conn:
        counts = {
            cid: {"items": items, "open": opened, "finished": items - opened}
            for cid, items, opened in conn.execute(_counts([queue_t.c.campaign_id]))
        }
        rows = conn.execute(sa.select(campaigns_t).order_by(campaigns_t.c.id.desc())).all()
    return [_summary(row, counts.get(row.id, {})) for row in rows]


# -- sampling ----------------------------------------------------------------------------------


def sample_campaign(engine: Engine, campaign: int | str, now: datetime) -> dict[str, Any]:
    """Draw a draft campaign's sample (or plan its spot checks) and fill its queues.

    Everything happens in one write transaction: the exclusions are read, the sample drawn,
    the queue items written and the campaign marked 'sampled' with its report, or nothing is.
    A campaign that already has queue items is never sampled again. Returns the report.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    with immediate(engine) as conn:
        row = find_campaign(conn, campaign, lock=True)
        existing = conn.execute(
            sa.select(sa.func.count()).where(queue_t.c.campaign_id == row.id)
        ).scalar_one()
        if not existing and row.sampled_at is None and row.status == CampaignStatus.CLOSED.value:
            closed = f" on {row.closed_at:%Y-%m-%d}" if row.closed_at else ""
            raise CampaignError(
                f"campaign {row.name} is closed: it was closed{closed} without being sampled,"
                " and a closed campaign is never sampled; create a new one to draw"
            )
        if existing or row.status != CampaignStatus.DRAFT.value:
            when = f" on {row.sampled_at:%Y-%m-%d %H:%M} UTC" if row.sampled_at else ""
            raise CampaignError(
                f"campaign {row.name} is {row.status} and has {existing:,} queue items: it was"
                f" sampled{when}; a campaign is sampled once, so create a new one to draw again"
            )
        design = load_design(row.target, row.design)
        if isinstance(design, HotlineDesign):
            report = plan_hotlines(conn, row.id, design, now)
        else:
            report = draw_cases(conn, row.id, design, now)
        conn.execute(
            sa.update(campaigns_t)
            .where(campaigns_t.c.id == row.id)
            .values(status=CampaignStatus.SAMPLED.value, sampled_at=now, sample_report=report)
        )
    forget_campaigns()
    return report
