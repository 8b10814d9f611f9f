"""The figures of the reports, read from the database: rates by group, the weighted district
estimate, AAPOR rates, hotline spot checks, and the weekly report's data.

Counting happens in SQL, one grouped statement per figure (only the open cases of the
interim AAPOR rates are classified one by one, from their attempts); the statistics are
callback.rates' and callback.estimates'. Report weeks run from Thursday
00:00 to Wednesday 24:00 local time; timestamps are stored in UTC, so a week is compared as
the pair of UTC instants its local midnights fall on. docs/reports.md defines every figure.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.dispositions import Category, Disposition, final_disposition
from callback.errors import CallbackError
from callback.estimates import DistrictRates, Observation, weighted_proportion
from callback.models import (
    CallAttempt,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Case,
    QueueItem,
    QueueState,
    Response,
    Unit,
    table,
)
from callback.rates import (
    DEFAULT_CONFIDENCE,
    HotlineRates,
    OutcomeRates,
    Proportion,
    SpotCheck,
    hotline_rates,
    outcome_rates,
    outcome_rates_by,
    proportion,
)

qi, r, c, u = table(QueueItem), table(Response), table(Case), table(Unit)
a, camp = table(CallAttempt), table(Campaign)

GROUPINGS = ("unit", "town", "item", "channel", "week")
#: The group of cases without a town or channel.
NONE = "(无)"
THURSDAY = 3


class ReportError(CallbackError):
    """A report cannot be made as asked (unknown campaign or grouping)."""


# -- the report week (周四 00:00 至 周三 24:00) ----------------------------------------------------


@dataclass(frozen=True, order=True)
class Week:
    """A report week, named by its Thursday; it ends with the Wednesday six days later."""

    start: date

    def __post_init__(self) -> None:
        if self.start.weekday() != THURSDAY:
            raise ValueError(f"a report week starts on a Thursday, not on {self.start:%A}")

    @property
    def end(self) -> date:
        """The last day (a Wednesday), inclusive."""
        return self.start + timedelta(days=6)

    def previous(self) -> Week:
        return Week(self.start - timedelta(days=7))

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants of its first local midnight and of the next week's: [start, end)."""
        return _midnight(self.start, tz), _midnight(self.start + timedelta(days=7), tz)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d} 至 {self.end:%Y-%m-%d}"


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def report_week(day: date) -> Week:
    """The report week containing the local date ``day``."""
    return Week(day - timedelta(days=(day.weekday() - THURSDAY) % 7))


def week_at(instant: datetime, tz: ZoneInfo) -> Week:
    """The report week containing an instant, judged by its local date in ``tz``."""
    if instant.tzinfo is None:
        raise ValueError("give the instant a time zone")
    return report_week(instant.astimezone(tz).date())


def last_complete_week(now: datetime, tz: ZoneInfo) -> Week:
    """The latest week that has ended by ``now``: on a Thursday, the one that ended at 00:00."""
    return week_at(now, tz).previous()


# -- campaigns in scope ---------------------------------------------------------------------


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


def _ids(campaigns: Iterable[CampaignRef], target: CampaignTarget) -> list[int]:
    return [x.id for x in campaigns if x.target == target.value]


def _in(conn: Connection, campaign_ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """Queue items of these campaigns, read by a scan on SQLite.

    SQLite would otherwise walk ix_queue_items_ready, whose (campaign, unit) order spares it
    the GROUP BY's sort, and fetch every row from the table at random: three times slower than
    a scan on a million attempts (bench/reports). ``+ 0`` makes the column unindexable there.
    """
    column = qi.c.campaign_id + 0 if conn.dialect.name == "sqlite" else qi.c.campaign_id
    return column.in_(campaign_ids)


def _unit_names(conn: Connection) -> dict[int, str]:
    return {id_: name for id_, name in conn.execute(sa.select(u.c.id, u.c.name))}


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
    where = sa.and_(_in(conn, campaign_ids), _COMPLETE)
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
    names = _unit_names(conn) if by in ("unit", "town") else {}
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
    where = sa.and_(_in(conn, _ids(campaigns, CampaignTarget.CASES)), _COMPLETE)
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


# -- AAPOR outcome rates ------------------------------------------------------------------------


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
            _in(conn, ids),
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
            _in(conn, ids),
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
    names = _unit_names(conn)
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


# -- hotline spot checks: 接通率, 实时答复率, seconds to answer --------------------------------


def pending_note(pending: int) -> str:
    """The report's note on checks whose answerer nobody has identified yet."""
    return (
        f"{pending:,} spot checks answered by someone not yet identified (待核实: the dialer"
        " could not tell a person from a machine and no tester has said) are left out of 接通率"
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


def _hotlines_by_unit(
    checks: Iterable[tuple[int, datetime, SpotCheck]], names: Mapping[int, str], confidence: float
) -> dict[str, HotlineRates]:
    grouped: dict[str, list[SpotCheck]] = defaultdict(list)
    for unit_id, _, check in checks:
        grouped[names.get(unit_id, NONE)].append(check)
    return {unit: hotline_rates(calls, confidence) for unit, calls in sorted(grouped.items())}


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


def _read(engine: Engine) -> Connection:
    """A connection whose statements all see one snapshot of the database."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


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
    with _read(engine) as conn, conn.begin():
        refs = find_campaigns(conn, campaigns)
        groups = group_rates(conn, by, _ids(refs, CampaignTarget.CASES), tz, confidence)
        district = district_estimates(conn, refs, confidence)
        outcomes = outcome_lines(conn, [x for x in refs if x.target == CampaignTarget.CASES], e)
        checks = spot_checks(conn, _ids(refs, CampaignTarget.HOTLINES))
        hotlines = _hotlines_by_unit(checks, _unit_names(conn), confidence)
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
