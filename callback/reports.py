"""The rates report: 实现率 and 满意率 of completed interviews by group and district-weighted.

``rates_report`` is what ``callback report rates`` prints: these figures beside the AAPOR rates
of callback.outcome_report and the hotline rates of callback.hotline_report. Counting happens
in SQL, one grouped statement per figure; the statistics are callback.rates' and
callback.estimates'. docs/reports.md defines every figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.dispositions import Disposition
from callback.estimates import DistrictRates, Observation, weighted_proportion
from callback.hotline_report import UnitHotline, hotlines_by_unit, pending_note, spot_checks
from callback.models import CampaignTarget
from callback.outcome_report import OutcomeLine, outcome_lines
from callback.rates import DEFAULT_CONFIDENCE, Proportion, proportion
from callback.report_scope import (
    NONE,
    CampaignRef,
    ReportError,
    c,
    find_campaigns,
    items_of,
    qi,
    r,
    snapshot,
    target_ids,
    unit_names,
)
from callback.report_weeks import Week, week_at

GROUPINGS = ("unit", "town", "item", "channel", "week")

# -- completed interviews: 实现率 and 满意率 by group ------------------------------------------

#: A completed interview: the case closed as 1.1, and nothing else. The disposition is the one
#: record of how a case ended; a response's ``complete`` flag is not: responses written before
#: screen-outs and refusals had statuses of their own say "complete" for a call that reached
#: the script's end on "not me" or a refusal. Partials (1.2) are not completes either, in the
#: completes column or in the rates (AAPOR I, as RR1 counts it; docs/reports.md).
_COMPLETE = qi.c.final_disposition == Disposition.COMPLETE.value
#: When it was completed: the response's time, or the item's end for a 1.1 without one.
_COMPLETED_AT = sa.case((r.c.complete.is_(True), r.c.recorded_at), else_=qi.c.finished_at)
_ITEMS = qi.outerjoin(r, r.c.queue_item_id == qi.c.id)


class _Tally:
    """Completes and the k and n of 实现率 and 满意率, summed from (realised, satisfied, count)
    rows. Grouping by the answers in SQL (not one conditional sum per figure) lets one grouped
    pass serve several figures: the weekly lines and the weighted estimate share theirs."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0, 0]

    def add(self, realised: bool | None, satisfied: bool | None, count: int) -> None:
        c = self.counts
        c[0] += count
        if realised is not None:
            c[1] += count * bool(realised)
            c[2] += count
        if satisfied is not None:
            c[3] += count * bool(satisfied)
            c[4] += count


@dataclass(frozen=True)
class GroupRates:
    """实现率 and 满意率 of one group's completed interviews (unweighted, Wilson intervals)."""

    group: str
    completes: int
    realisation: Proportion
    satisfaction: Proportion


def _group_rates(group: str, counts: Sequence[int], confidence: float) -> GroupRates:
    completes, rk, rn, sk, sn = (int(x) for x in counts)
    return GroupRates(
        group, completes, proportion(rk, rn, confidence), proportion(sk, sn, confidence)
    )


def _week_case(
    conn: Connection, where: sa.ColumnElement[bool], tz: ZoneInfo
) -> tuple[sa.ColumnElement[Any], list[Week]]:
    """The index of the local week of each completion, as a CASE over the weeks' UTC bounds."""
    first, last = conn.execute(
        sa.select(sa.func.min(_COMPLETED_AT), sa.func.max(_COMPLETED_AT))
        .select_from(_ITEMS)
        .where(where)
    ).one()
    if first is None:
        return sa.literal(0), []
    weeks = [week_at(first, tz)]
    while weeks[-1].bounds(tz)[1] <= last:
        weeks.append(Week(weeks[-1].start + timedelta(days=7)))
    whens = [(_COMPLETED_AT < w.bounds(tz)[1], i) for i, w in enumerate(weeks[:-1])]
    return (sa.case(*whens, else_=len(weeks) - 1) if whens else sa.literal(0)), weeks


def group_rates(
    conn: Connection,
    by: str,
    campaign_ids: Sequence[int],
    tz: ZoneInfo,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[GroupRates]:
    """实现率 and 满意率 per unit, town, item, channel or week over the campaigns' completes."""
    if by not in GROUPINGS:
        raise ReportError(f"cannot group by {by!r}; choose from {', '.join(GROUPINGS)}")
    where = sa.and_(items_of(conn, campaign_ids), _COMPLETE)
    source = _ITEMS if by in ("unit", "week") else _ITEMS.join(c, c.c.id == qi.c.case_id)
    weeks: list[Week] = []
    key: sa.ColumnElement[Any]
    if by == "week":
        key, weeks = _week_case(conn, where, tz)
    else:
        key = {"unit": qi.c.unit_id, "town": c.c.town_id, "item": c.c.item_name}.get(
            by, c.c.channel
        )
    answers = (r.c.realised, r.c.satisfied)
    tallies: dict[Any, _Tally] = defaultdict(_Tally)
    query = sa.select(key.label("key"), *answers, sa.func.count()).select_from(source)
    for key_value, realised, satisfied, count in conn.execute(
        query.where(where).group_by(key, *answers)
    ):
        tallies[key_value].add(realised, satisfied, count)
    names = unit_names(conn) if by in ("unit", "town") else {}
    result = []
    for key_value, tally in tallies.items():
        if by == "week":
            label = weeks[key_value].label if weeks else NONE
        elif by in ("unit", "town"):
            label = names.get(key_value, NONE) if key_value is not None else NONE
        else:
            label = key_value if key_value is not None else NONE
        result.append(_group_rates(label, tally.counts, confidence))
    return sorted(result, key=lambda g: g.group)


def _total(groups: Sequence[GroupRates], confidence: float) -> GroupRates:
    sums = [sum(getattr(g, name).k for g in groups) for name in ("realisation", "satisfaction")]
    ns = [sum(getattr(g, name).n for g in groups) for name in ("realisation", "satisfaction")]
    completes = sum(g.completes for g in groups)
    return _group_rates("合计 total", (completes, sums[0], ns[0], sums[1], ns[1]), confidence)


# -- the design-weighted district estimate --------------------------------------------------


@dataclass(frozen=True)
class CampaignDistrict:
    """A campaign's design-weighted 实现率 and 满意率, each beside its unweighted figure."""

    campaign: str
    rates: DistrictRates
    #: True when the sample report gave every stratum's size N_h (separate ratio estimator).
    population_known: bool


def _population_sizes(ref: CampaignRef, strata: Iterable[str]) -> dict[str, int] | None:
    listed = (ref.sample_report or {}).get("strata") or []
    sizes = {s["stratum"]: int(s["N"]) for s in listed if "stratum" in s and "N" in s}
    return sizes if sizes and all(h in sizes for h in strata) else None


def district_estimates(
    conn: Connection,
    campaigns: Sequence[CampaignRef],
    confidence: float = DEFAULT_CONFIDENCE,
    until: datetime | None = None,
) -> list[CampaignDistrict]:
    """The weighted estimate of every case campaign, from completes before ``until``."""
    where = sa.and_(items_of(conn, target_ids(campaigns, CampaignTarget.CASES)), _COMPLETE)
    if until is not None:
        where = sa.and_(where, _COMPLETED_AT < until)
    columns = (qi.c.campaign_id, qi.c.stratum, qi.c.weight, r.c.realised, r.c.satisfied)
    query = sa.select(*columns, sa.func.count()).select_from(_ITEMS).where(where)
    return _district(campaigns, conn.execute(query.group_by(*columns)).all(), confidence)


def _district(
    campaigns: Sequence[CampaignRef],
    rows: Iterable[Sequence[Any]],
    confidence: float,
) -> list[CampaignDistrict]:
    """Estimates from completes counted as (campaign, stratum, weight, realised, satisfied, n).

    Completes sharing stratum, weight and answer become one Observation repeated: a list slot
    each, not an object each (a third of the time on 200,000 completes).
    """
    completes: dict[int, int] = defaultdict(int)
    strata: dict[int, set[str]] = defaultdict(set)
    answers: dict[tuple[int, int], list[Observation]] = defaultdict(list)
    for campaign_id, stratum, weight, realised, satisfied, count in rows:
        completes[campaign_id] += count
        strata[campaign_id].add(stratum)
        for question, value in enumerate((realised, satisfied)):
            if value is not None:
                observation = Observation(stratum, weight, bool(value))
                answers[campaign_id, question].extend([observation] * count)
    result = []
    for ref in campaigns:
        if ref.target != CampaignTarget.CASES.value:
            continue
        sizes = _population_sizes(ref, strata[ref.id])
        realisation, satisfaction = (
            weighted_proportion(answers.get((ref.id, q), []), sizes, confidence) for q in (0, 1)
        )
        rates = DistrictRates(completes.get(ref.id, 0), realisation, satisfaction)
        result.append(CampaignDistrict(ref.name, rates, sizes is not None))
    return result


# -- callback report rates ---------------------------------------------------------------------


@dataclass(frozen=True)
class RatesReport:
    """Everything ``callback report rates`` prints."""

    by: str
    campaigns: tuple[str, ...]
    confidence: float
    groups: tuple[GroupRates, ...]
    total: GroupRates
    district: tuple[CampaignDistrict, ...]
    outcomes: tuple[OutcomeLine, ...]
    hotlines: tuple[UnitHotline, ...]
    notes: tuple[str, ...]


def rates_report(
    engine: Engine,
    by: str = "unit",
    campaigns: Sequence[int | str] | None = None,
    *,
    e: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    timezone: str = "Asia/Shanghai",
) -> RatesReport:
    """Rates by ``by`` over the campaigns' completes (all campaigns when none are named),
    their weighted district estimates, AAPOR rates per campaign and unit, and hotline rates."""
    tz = ZoneInfo(timezone)
    with snapshot(engine) as conn, conn.begin():
        refs = find_campaigns(conn, campaigns)
        groups = group_rates(conn, by, target_ids(refs, CampaignTarget.CASES), tz, confidence)
        district = district_estimates(conn, refs, confidence)
        outcomes = outcome_lines(conn, [x for x in refs if x.target == CampaignTarget.CASES], e)
        checks = spot_checks(conn, target_ids(refs, CampaignTarget.HOTLINES))
        hotlines = hotlines_by_unit(checks, unit_names(conn), confidence)
    notes = []
    for d in district:
        how = "stratum sizes N_h from the sample report" if d.population_known else (
            "no stratum sizes N_h in the sample report: combined ratio estimator")  # fmt: skip
        notes.append(f"{d.campaign}: weighted estimate by {how}")
    for line in outcomes:
        if line.unit is None and line.rates.e is not None:
            notes.append(f"{line.campaign}: AAPOR e = {line.rates.e:.3f} ({line.rates.e_source})")
    opened = sum(line.open for line in outcomes if line.unit is None)
    if opened:
        notes.append(
            f"{opened:,} cases still open are counted by the code they would close with now"
            " (interim AAPOR rates)"
        )
    if pending := sum(rates.pending for rates in hotlines.values()):
        notes.append(pending_note(pending))
    return RatesReport(
        by, tuple(x.name for x in refs), confidence, tuple(groups), _total(groups, confidence),
        tuple(district), tuple(outcomes),
        tuple(UnitHotline(unit, rates) for unit, rates in hotlines.items()), tuple(notes),
    )  # fmt: skip
