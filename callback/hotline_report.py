"""The reports' hotline spot checks per unit: 接通率, 实时答复率 and seconds to answer.

A check is read from the hotline-check script's response; the rates themselves are
callback.rates'. docs/reports.md defines them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from callback.models import QueueState
from callback.rates import HotlineRates, SpotCheck, hotline_rates
from callback.report_scope import NONE, a, qi, r


def pending_note(pending: int) -> str:
    """The report's note on checks whose answerer nobody has identified yet."""
    return (
        f"{pending:,} spot checks answered by someone not yet identified (待核实: the dialer"
        " could not tell a person from a machine and no tester has said) are left out of 接通率"
    )


def not_dialled_in_week(
    conn: Connection, campaign_ids: Sequence[int], start: datetime, cut: datetime
) -> int:
    """Spot checks planned in ``[start, cut)`` that had not been dialled by ``cut``.

    A pause or a stopped dispatcher leaves them in the queue; each counts in the week it is
    first dialled, so the week it was planned for has fewer checks than planned.
    """
    if not campaign_ids or cut <= start:
        return 0
    dialled = sa.exists().where(a.c.queue_item_id == qi.c.id, a.c.placed_at < cut)
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(qi)
            .where(
                qi.c.campaign_id.in_(list(campaign_ids)),
                qi.c.hotline_id.is_not(None),
                qi.c.appointment_at >= start,
                qi.c.appointment_at < cut,
                ~dialled,
            )
        ).scalar_one()
    )


def not_dialled_note(count: int) -> str:
    """The report's note on checks planned for the week and not dialled in it."""
    return (
        f"{count:,} spot checks planned for the week were not dialled in it (a paused campaign,"
        " or no dispatcher running); each counts in the week it is first dialled"
    )


def _spot_check(
    unit: str,
    rates: Mapping[str, Any] | None,
    answers: Mapping[str, Any] | None,
    with_tester: bool = False,
) -> SpotCheck:
    """One check from the hotline-check script's response; no response means nobody answered.

    A check that says neither "not answered" nor by whom it was answered, with a response
    (the dialer saw an answer it could not judge) or still open with a tester (it saw only a
    switchboard), is pending: nobody has recorded yet what the hotline did.
    """
    recorded = answers is not None
    rates, answers = rates or {}, answers or {}
    person = rates.get("connected") is True
    pending = (
        (recorded or with_tester)
        and not person
        and answers.get("answered") is not False
        and "answered_by" not in answers
    )
    seconds = answers.get("answer_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        seconds = None
    on_the_spot = rates.get("real_time")
    return SpotCheck(
        unit,
        answered=person,
        answered_on_the_spot=on_the_spot if person and isinstance(on_the_spot, bool) else None,
        seconds_to_answer=float(seconds) if person and seconds is not None else None,
        pending=pending,
    )


def spot_checks(
    conn: Connection,
    campaign_ids: Sequence[int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[int, datetime, SpotCheck]]:
    """(unit id, first dial, check) for every planned check dialled at least once.

    A check is its queue item, dialled perhaps more than once: it is dated by its first dial
    and judged by its response, which keeps the best call (and by whether it is still open
    with a tester).
    """
    if not campaign_ids:
        return []
    first = (
        sa.select(a.c.queue_item_id, sa.func.min(a.c.placed_at).label("at"))
        .where(a.c.campaign_id.in_(campaign_ids), a.c.placed_at.is_not(None))
        .group_by(a.c.queue_item_id)
        .subquery()
    )
    query = (
        sa.select(
            qi.c.unit_id,
            first.c.at,
            r.c.rates,
            r.c.answers,
            sa.and_(qi.c.handed_to.is_not(None), qi.c.state == QueueState.OPEN.value),
        )
        .select_from(first.join(qi, qi.c.id == first.c.queue_item_id))
        .outerjoin(r, r.c.queue_item_id == qi.c.id)
    )
    if since is not None:
        query = query.where(first.c.at >= since)
    if until is not None:
        query = query.where(first.c.at < until)
    return [
        (unit_id, at, _spot_check("", rates, answers, with_tester))
        for unit_id, at, rates, answers, with_tester in conn.execute(query)
    ]


@dataclass(frozen=True)
class UnitHotline:
    unit: str
    rates: HotlineRates


def hotlines_by_unit(
    checks: Iterable[tuple[int, datetime, SpotCheck]], names: Mapping[int, str], confidence: float
) -> dict[str, HotlineRates]:
    grouped: dict[str, list[SpotCheck]] = defaultdict(list)
    for unit_id, _, check in checks:
        grouped[names.get(unit_id, NONE)].append(check)
    return {unit: hotline_rates(calls, confidence) for unit, calls in sorted(grouped.items())}
