"""The reports' AAPOR outcome rates per campaign and per unit's queue, interim while open.

Closed cases are counted by their final code in one grouped SQL statement; only the open ones
are classified one by one, from their attempts, by the code they would close with now. The
rates themselves are callback.rates'. docs/reports.md defines them.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from callback.dispositions import Category, Disposition, final_disposition
from callback.models import QueueState
from callback.rates import OutcomeRates, outcome_rates, outcome_rates_by
from callback.report_scope import NONE, CampaignRef, a, items_of, qi, unit_names


@dataclass(frozen=True)
class OutcomeLine:
    """AAPOR rates of a campaign (``unit`` None) or of one unit's queue in it."""

    campaign: str
    unit: str | None
    cases: int
    #: Cases still open, counted by the code they would close with now.
    open: int
    rates: OutcomeRates


def _category(code: str | Disposition | None) -> str:
    return _known(code).category.value if code is not None else Category.UO.value


def _known(code: str) -> Disposition:
    try:
        return Disposition(code)
    except ValueError:  # a code this version does not know: its eligibility is unknown
        return Disposition.UNKNOWN_OTHER


@functools.lru_cache(maxsize=4096)
def _interim(codes: tuple[str, ...]) -> str:
    """The category an open case would close with now; cached, as few sequences recur."""
    found = final_disposition([_known(c) for c in codes], max_attempts_reached=True)
    return _category(found)


def _open_codes(conn: Connection, ids: Sequence[int]) -> Iterator[tuple[int, int, str]]:
    """(campaign, unit, category) for each item without a final code, classified by its
    attempts so far as if it closed now."""
    rows = conn.execute(
        sa.select(qi.c.id, qi.c.campaign_id, qi.c.unit_id, a.c.disposition)
        .select_from(
            qi.outerjoin(a, sa.and_(a.c.queue_item_id == qi.c.id, a.c.disposition.is_not(None)))
        )
        .where(
            items_of(conn, ids),
            sa.or_(qi.c.state != QueueState.FINISHED.value, qi.c.final_disposition.is_(None)),
        )
        .order_by(qi.c.id, a.c.id)
    )
    item, key, codes = None, (0, 0), list[str]()
    for item_id, campaign_id, unit_id, code in rows:
        if item_id != item:
            if item is not None:
                yield *key, _interim(tuple(codes))
            item, key, codes = item_id, (campaign_id, unit_id), []
        if code is not None:
            codes.append(code)
    if item is not None:
        yield *key, _interim(tuple(codes))


def outcome_lines(
    conn: Connection, campaigns: Sequence[CampaignRef], e: float | None = None
) -> list[OutcomeLine]:
    """RR1–RR6, COOP1–4, REF1–3 and CON1–3 per campaign and per unit, interim while open.

    Closed items count by their final code; open ones by ``final_disposition(attempts,
    max_attempts_reached=True)``, the code they would get if calling stopped now (AAPOR's
    interim rates). One e per campaign: given, or estimated from its units pooled.
    """
    ids = [x.id for x in campaigns]
    if not ids:
        return []
    counts: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    opened: dict[tuple[int, int], int] = defaultdict(int)

    def add(campaign_id: int, unit_id: int, n: int, category: str) -> None:
        tally = counts[campaign_id][unit_id]
        tally[category] = tally.get(category, 0) + n

    finished = conn.execute(
        sa.select(qi.c.campaign_id, qi.c.unit_id, qi.c.final_disposition, sa.func.count())
        .where(
            items_of(conn, ids),
            qi.c.state == QueueState.FINISHED.value,
            qi.c.final_disposition.is_not(None),
        )
        .group_by(qi.c.campaign_id, qi.c.unit_id, qi.c.final_disposition)
    )
    for campaign_id, unit_id, code, n in finished:
        add(campaign_id, unit_id, n, _category(code))
    for campaign_id, unit_id, category in _open_codes(conn, ids):
        add(campaign_id, unit_id, 1, category)
        opened[campaign_id, unit_id] += 1
    names = unit_names(conn)
    lines = []
    for ref in campaigns:
        by_unit = counts.get(ref.id, {})
        total: dict[str, int] = defaultdict(int)
        for tally in by_unit.values():
            for category, n in tally.items():
                total[category] += n
        whole = outcome_rates(total, e)
        size = sum(total.values())
        lines.append(
            OutcomeLine(ref.name, None, size, sum(opened[ref.id, x] for x in by_unit), whole)
        )
        per_unit = outcome_rates_by(by_unit, e)
        for unit_id in sorted(by_unit, key=lambda x: names.get(x, "")):
            cases = sum(by_unit[unit_id].values())
            lines.append(
                OutcomeLine(ref.name, names.get(unit_id, NONE), cases, opened[ref.id, unit_id],
                            per_unit[unit_id])
            )  # fmt: skip
    return lines
