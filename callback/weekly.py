"""The weekly report (周报): per unit, the week from Thursday to Wednesday, beside the last.

Every Thursday morning ``callback run`` writes it for the week that ended on Wednesday; the
figures come from callback.reports and callback.hotline_report, the files from
callback.report_render (the workbook) and callback.report_html (the page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.campaign_states import pause_notes
from callback.hotline_report import (
    hotlines_by_unit,
    not_dialled_in_week,
    not_dialled_note,
    pending_note,
    spot_checks,
)
from callback.models import (
    CampaignStatus,
    CampaignTarget,
)
from callback.problems import OPEN_STATUSES, ProblemView, list_problems
from callback.rates import (
    DEFAULT_CONFIDENCE,
    HotlineRates,
    Proportion,
    hotline_rates,
    proportion,
)
from callback.report_scope import (
    NONE,
    CampaignRef,
    a,
    camp,
    items_of,
    qi,
    r,
    snapshot,
    target_ids,
    unit_names,
)
from callback.report_weeks import Week, last_complete_week, report_week
from callback.reports import (
    _COMPLETE,
    _COMPLETED_AT,
    _ITEMS,
    CampaignDistrict,
    _district,
    _group_rates,
    _Tally,
)


@dataclass(frozen=True)
class UnitWeek:
    """One unit's line of the weekly report (or the district's, as ``WeeklyReport.total``)."""

    unit: str
    sampled: int  # cases in its queues of the campaigns of the week
    attempted: int  # cases with an attempt placed in the week
    completed: int  # completed interviews in the week
    completed_to_date: int  # by the end of the week
    completion: Proportion  # completed_to_date of sampled
    realisation: Proportion  # 实现率 of the week's completes
    satisfaction: Proportion  # 满意率 of the week's completes
    realisation_change: float | None  # minus the previous week's (a difference of shares)
    satisfaction_change: float | None
    hotline: HotlineRates  # the week's spot checks
    connection_change: float | None
    score: float | None  # the mean of 实现率 and 满意率, what units are ranked by
    rank: int | None


@dataclass(frozen=True)
class WeeklyReport:
    week: Week
    previous: Week
    timezone: str
    generated_at: datetime
    campaigns: tuple[str, ...]
    units: tuple[UnitWeek, ...]  # ranked units first, then the rest by name
    total: UnitWeek
    district: tuple[CampaignDistrict, ...]  # to the end of the week
    #: Open and 整改中 problems raised before the week ended, names and numbers masked.
    problems: tuple[ProblemView, ...]
    notes: tuple[str, ...]


def _change(now: Proportion, before: Proportion) -> float | None:
    if now.estimate is None or before.estimate is None:
        return None
    return now.estimate - before.estimate


def _week_campaigns(conn: Connection, start: datetime, end: datetime) -> list[CampaignRef]:
    """Campaigns sampled before the week ended and not closed before it began."""
    rows = conn.execute(
        sa.select(camp.c.id, camp.c.name, camp.c.target, camp.c.sample_report)
        .where(
            camp.c.status != CampaignStatus.DRAFT.value,
            sa.or_(camp.c.sampled_at.is_(None), camp.c.sampled_at < end),
            sa.or_(camp.c.closed_at.is_(None), camp.c.closed_at >= start),
        )
        .order_by(camp.c.id)
    ).all()
    return [CampaignRef(*row) for row in rows]


def _week_scan(
    conn: Connection, ids: Sequence[int], bounds: tuple[datetime, datetime, datetime]
) -> tuple[dict[int, list[int]], list[tuple[Any, ...]]]:
    """One pass over the sample for the unit lines and the district estimate.

    Per unit: sampled, completed to date, then the rate counts of this week and of the last.
    And the completes to date as (campaign, stratum, weight, realised, satisfied, n).
    """
    before, start, end = bounds
    at = _COMPLETED_AT
    # 0 not complete, 1 complete before last week, 2 last week, 3 this week, 4 after it.
    when = sa.case(
        (_COMPLETE, sa.case((at < before, 1), (at < start, 2), (at < end, 3), else_=4)), else_=0
    )
    columns = (qi.c.campaign_id, qi.c.unit_id, qi.c.stratum, qi.c.weight, when,
               r.c.realised, r.c.satisfied)  # fmt: skip
    query = sa.select(*columns, sa.func.count()).select_from(_ITEMS).where(items_of(conn, ids))
    units: dict[int, tuple[list[int], _Tally, _Tally]] = {}
    completes = []
    for campaign, unit, stratum, weight, period, realised, satisfied, n in conn.execute(
        query.group_by(*columns)
    ):
        sums, this_week, last_week = units.setdefault(unit, ([0, 0], _Tally(), _Tally()))
        sums[0] += n
        if period in (1, 2, 3):
            sums[1] += n
            completes.append((campaign, stratum, weight, realised, satisfied, n))
        if period in (2, 3):
            (this_week if period == 3 else last_week).add(realised, satisfied, n)
    counts = {u: [*sums, *now.counts, *last.counts] for u, (sums, now, last) in units.items()}
    return counts, completes


def _attempted(
    conn: Connection, ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, int]:
    rows = conn.execute(
        sa.select(qi.c.unit_id, sa.func.count(sa.distinct(a.c.queue_item_id)))
        .select_from(a.join(qi, qi.c.id == a.c.queue_item_id))
        .where(a.c.campaign_id.in_(ids), a.c.placed_at >= start, a.c.placed_at < end)
        .group_by(qi.c.unit_id)
    )
    return {unit_id: int(n) for unit_id, n in rows}


def _problems(engine: Engine, end: datetime, today: date) -> list[ProblemView]:
    """Problems still open or being fixed that were raised before the week ended, by unit and
    due date. callback.problems lists them, so a report masks exactly as its listings do."""
    found = [p for p in list_problems(engine, today, statuses=OPEN_STATUSES) if p.created_at < end]
    return sorted(found, key=lambda p: (p.unit, p.due_date or date.max, p.id))


def _unit_week(
    unit: str, counts: Sequence[int], attempted: int, hotline: HotlineRates,
    hotline_before: HotlineRates | None, confidence: float,
) -> UnitWeek:  # fmt: skip
    sampled, to_date = counts[0], counts[1]
    now = _group_rates(unit, counts[2:7], confidence)
    before = _group_rates(unit, counts[7:12], confidence)
    estimates = [x.estimate for x in (now.realisation, now.satisfaction) if x.estimate is not None]
    return UnitWeek(
        unit, sampled, attempted, now.completes, to_date, proportion(to_date, sampled, confidence),
        now.realisation, now.satisfaction, _change(now.realisation, before.realisation),
        _change(now.satisfaction, before.satisfaction), hotline,
        _change(hotline.connection, hotline_before.connection) if hotline_before else None,
        sum(estimates) / len(estimates) if estimates and now.completes else None, None,
    )  # fmt: skip


def _ranked(lines: list[UnitWeek]) -> list[UnitWeek]:
    """Rank units by score (equal scores share a rank); unscored units follow, unranked."""
    scored = sorted((x for x in lines if x.score is not None),
                    key=lambda x: (-(x.score or 0.0), -x.completed, x.unit))  # fmt: skip
    result, rank, previous = [], 0, None
    for position, line in enumerate(scored, start=1):
        # Rounded: two means of equal shares may differ in the last bit of a float.
        if round(line.score or 0.0, 9) != previous:
            rank, previous = position, round(line.score or 0.0, 9)
        result.append(replace(line, rank=rank))
    return result + sorted((x for x in lines if x.score is None), key=lambda x: x.unit)


def weekly_data(
    engine: Engine,
    week: Week,
    now: datetime,
    *,
    timezone: str = "Asia/Shanghai",
    confidence: float = DEFAULT_CONFIDENCE,
) -> WeeklyReport:
    """The weekly report's figures for ``week``, per unit and for the district."""
    tz = ZoneInfo(timezone)
    start, end = week.bounds(tz)
    before = week.previous().bounds(tz)[0]
    with snapshot(engine) as conn, conn.begin():
        refs = _week_campaigns(conn, start, end)
        cases, hotline_ids = (
            target_ids(refs, CampaignTarget.CASES),
            target_ids(refs, CampaignTarget.HOTLINES),
        )
        counts, completes = _week_scan(conn, cases, (before, start, end))
        attempted = _attempted(conn, cases, start, end) if cases else {}
        checks = spot_checks(conn, hotline_ids, before, end)
        names = unit_names(conn)
        paused = pause_notes(conn, {r.id: r.name for r in refs}, start, end, tz)
        undialled = not_dialled_in_week(conn, hotline_ids, start, min(end, now))
    problems = _problems(engine, end, now.astimezone(tz).date())
    district = _district(refs, completes, confidence)
    this_checks = [x for x in checks if x[1] >= start]
    hot_now = hotlines_by_unit(this_checks, names, confidence)
    hot_before = hotlines_by_unit([x for x in checks if x[1] < start], names, confidence)
    empty = [0] * 12
    unit_ids = set(counts) | {x[0] for x in checks}
    lines = [
        _unit_week(
            names.get(i, NONE),
            counts.get(i, empty),
            attempted.get(i, 0),
            hot_now.get(names.get(i, NONE), hotline_rates((), confidence)),
            hot_before.get(names.get(i, NONE)),
            confidence,
        )  # fmt: skip
        for i in unit_ids
    ]
    sums = [sum(col) for col in zip(*counts.values(), strict=True)] if counts else empty
    total = _unit_week(
        "全区 district", sums, sum(attempted.values()),
        hotline_rates((x[2] for x in this_checks), confidence),
        hotline_rates((x[2] for x in checks if x[1] < start), confidence), confidence,
    )  # fmt: skip
    notes = [
        f"week {week.label} ({timezone}); compared with {week.previous().label}",
        "units are ranked by the mean of the week's 实现率 and 满意率; units without completes"
        " in the week are not ranked",
    ]
    for d in district:
        if not d.population_known:
            notes.append(f"{d.campaign}: no stratum sizes, combined ratio estimator")
    if pending := total.hotline.pending:
        notes.append(pending_note(pending))
    if undialled:
        notes.append(not_dialled_note(undialled))
    notes += paused
    return WeeklyReport(
        week, week.previous(), timezone, now, tuple(x.name for x in refs),
        tuple(_ranked(lines)), total, tuple(district), tuple(problems), tuple(notes),
    )  # fmt: skip


def weekly_report(
    engine: Engine,
    week_of: date | None,
    out_dir: str | Path,
    now: datetime,
    *,
    timezone: str = "Asia/Shanghai",
) -> tuple[Path, Path]:
    """Write the weekly report as an XLSX workbook and an HTML page; return their paths.

    ``week_of`` picks the week containing that local date; None means the latest week that
    has ended by ``now`` (on Thursday morning, the one that ended at midnight). The scheduler
    calls this every Thursday; files are named by the week, so a rerun replaces them.
    """
    # Imported here: the renderers import this module's types.
    from callback.report_html import write_weekly_html
    from callback.report_render import write_weekly_xlsx

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(timezone)
    week = report_week(week_of) if week_of is not None else last_complete_week(now, tz)
    data = weekly_data(engine, week, now, timezone=timezone)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"weekly-{week.start:%Y-%m-%d}"
    xlsx, html = out / f"{stem}.xlsx", out / f"{stem}.html"
    write_weekly_xlsx(data, xlsx)
    write_weekly_html(data, html)
    return xlsx, html
