"""What the reports read: the campaigns in scope, their tables, and one database snapshot.

The figures' modules (callback.reports, callback.outcome_report, callback.hotline_report and
callback.weekly) share these pieces so that every figure of a report counts the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.errors import CallbackError
from callback.models import (
    CallAttempt,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Case,
    QueueItem,
    Response,
    Unit,
    table,
)

qi, r, c, u = table(QueueItem), table(Response), table(Case), table(Unit)
a, camp = table(CallAttempt), table(Campaign)

#: The group of cases without a town or channel.
NONE = "(无)"


class ReportError(CallbackError):
    """A report cannot be made as asked (unknown campaign or grouping)."""


@dataclass(frozen=True)
class CampaignRef:
    id: int
    name: str
    target: str
    sample_report: Mapping[str, Any] | None


def find_campaigns(conn: Connection, wanted: Sequence[int | str] | None) -> list[CampaignRef]:
    """Campaigns by id or name (a string of digits is an id: names are never only digits);
    every campaign past its draft when ``wanted`` is empty."""
    query = sa.select(camp.c.id, camp.c.name, camp.c.target, camp.c.sample_report)
    if not wanted:
        rows = conn.execute(
            query.where(camp.c.status != CampaignStatus.DRAFT.value).order_by(camp.c.id)
        ).all()
        return [CampaignRef(*row) for row in rows]
    found: list[CampaignRef] = []
    for key in wanted:
        is_id = isinstance(key, int) or key.isdigit()
        column = camp.c.id if is_id else camp.c.name
        row = conn.execute(query.where(column == (int(key) if is_id else key))).first()
        if row is None:
            raise ReportError(f"no campaign {key!r}")
        if row.id not in {f.id for f in found}:
            found.append(CampaignRef(*row))
    return found


def target_ids(campaigns: Iterable[CampaignRef], target: CampaignTarget) -> list[int]:
    return [x.id for x in campaigns if x.target == target.value]


def items_of(conn: Connection, campaign_ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """Queue items of these campaigns, read by a scan on SQLite.

    SQLite would otherwise walk ix_queue_items_ready, whose (campaign, unit) order spares it
    the GROUP BY's sort, and fetch every row from the table at random: three times slower than
    a scan on a million attempts (bench/reports). ``+ 0`` makes the column unindexable there.
    """
    column = qi.c.campaign_id + 0 if conn.dialect.name == "sqlite" else qi.c.campaign_id
    return column.in_(campaign_ids)


def unit_names(conn: Connection) -> dict[int, str]:
    return {id_: name for id_, name in conn.execute(sa.select(u.c.id, u.c.name))}


def snapshot(engine: Engine) -> Connection:
    """A connection whose statements all see one snapshot of the database."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn
