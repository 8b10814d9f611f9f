"""Drawing a campaign: a case campaign's sample from the frame, a hotline campaign's checks.

``callback.campaigns.sample_campaign`` calls these inside its one write transaction. The
decisions are callback.screening's, callback.sampling's and callback.spotchecks'; this module
reads the frame for them and writes what they decide as queue items.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from callback.bulk import BulkInsert, collector_paused
from callback.calendar import local_midnight
from callback.models import (
    CallAttempt,
    CampaignTarget,
    Case,
    Channel,
    Contact,
    DoNotCall,
    Hotline,
    PhoneKind,
    QueueItem,
    QueueState,
    Unit,
    Validity,
    table,
)
from callback.sampling import select_sample
from callback.sampling_design import SamplingDesign, StratumKey
from callback.screening import Screened, combine, screen, screen_share
from callback.screenprocess import screening_child, split_id, worth_a_process
from callback.spotchecks import HotlineDesign, plan_spot_checks

cases_t = table(Case)
contacts_t = table(Contact)
units_t = table(Unit)
queue_t = table(QueueItem)
attempts_t = table(CallAttempt)
dnc_t = table(DoNotCall)
hotlines_t = table(Hotline)

#: A new queue item waits for the queue to compute when it is due (callback.queues).
NEW = "new"


def _months(design: SamplingDesign) -> list[tuple[str, datetime]]:
    """The local months of the period, each with the UTC instant its next month begins."""
    zone = ZoneInfo(design.timezone)
    months = []
    year, month = design.period_start.year, design.period_start.month
    while (year, month) <= (design.period_end.year, design.period_end.month):
        following = (year + month // 12, month % 12 + 1)
        months.append((f"{year:04d}-{month:02d}", local_midnight(date(*following, 1), zone)))
        year, month = following
    return months


class _Strata:
    """Each row's stratum as one integer code in SQL (plus the item name when it is a variable).

    Integer codes are cheap to carry out of the database and to group by; the readable keys
    are made once per stratum, not once per case. The code is mixed-radix: every variable
    but the item is mapped to a small integer (ids, month number, channel number).
    """

    def __init__(self, conn: Connection, design: SamplingDesign, bulk: BulkInsert) -> None:
        self.variables = design.strata
        self.units = dict(conn.execute(sa.select(units_t.c.id, units_t.c.name)).all())
        self.months = _months(design)
        self.channels = [c.value for c in Channel]
        c = cases_t.c
        month = sa.case(
            *(
                (c.handled_at < _instant(bulk, end), i)
                for i, (_, end) in enumerate(self.months[:-1])
            ),
            else_=len(self.months) - 1,
        )
        channel = sa.case(
            *((c.channel == value, i + 1) for i, value in enumerate(self.channels)), else_=0
        )
        radix = max(self.units, default=0) + 1
        self.parts: list[tuple[str, sa.ColumnElement[int], int]] = []
        for name in self.variables:
            if name == "unit":
                self.parts.append((name, c.unit_id, radix))
            elif name == "town":
                self.parts.append((name, sa.func.coalesce(c.town_id, 0), radix))
            elif name == "month":
                self.parts.append((name, month, len(self.months)))
            elif name == "channel":
                self.parts.append((name, channel, len(self.channels) + 1))
        # BIGINT from the start: unit x town x month x channel outgrows PostgreSQL's integer.
        code: sa.ColumnElement[Any] = sa.cast(sa.literal(0), sa.BigInteger)
        for _, expression, base in self.parts:
            code = code * base + expression
        if "item" in self.variables:
            # A string code: "<integer code>|<item name>".
            code = sa.cast(code, sa.String) + sa.literal("|") + c.item_name
        self.expression = code

    def key(self, code: int | str) -> StratumKey:
        item = None
        if isinstance(code, str):
            number, item = code.split("|", 1)
            code = int(number)
        values: dict[str, str] = {}
        for name, _, base in reversed(self.parts):
            code, value = divmod(code, base)
            if name in ("unit", "town"):
                values[name] = self.units.get(value, "(none)")
            elif name == "month":
                values[name] = self.months[value][0]
            else:
                values[name] = self.channels[value - 1] if value else "(none)"
        if item is not None:
            values["item"] = item
        return tuple((name, values[name]) for name in self.variables)


def _instant(bulk: BulkInsert, at: datetime) -> sa.ColumnElement[Any]:
    """An instant bound as the database stores it, so the raw cursor below can take it as is."""
    if bulk.dialect == "sqlite":
        return sa.literal(bulk.timestamp(at), sa.String)
    return sa.literal(at, sa.DateTime(timezone=True))


def _frame_query(
    conn: Connection,
    bulk: BulkInsert,
    design: SamplingDesign,
    strata: _Strata,
    *where: sa.ColumnElement[bool],
) -> tuple[str, Any]:
    """The statement of ``_frame_rows`` (plus ``where``) as the driver takes it: SQL, parameters.

    One row per (case handled in the period, valid current number); None for no number. Only
    mobile and landline numbers count: a 400 or 95xxx service line is not a citizen.
    """
    zone = ZoneInfo(design.timezone)
    c, ct = cases_t.c, contacts_t.c
    usable = sa.and_(
        ct.case_id == c.id,
        ct.validity == Validity.VALID.value,
        ct.superseded_at.is_(None),
        sa.or_(ct.kind == PhoneKind.MOBILE.value, ct.kind == PhoneKind.LANDLINE.value),
    )
    start = local_midnight(design.period_start, zone)
    end = local_midnight(design.period_end + timedelta(days=1), zone)
    query = (
        sa.select(c.id, strata.expression, ct.e164)
        .select_from(cases_t.outerjoin(contacts_t, usable))
        .where(c.handled_at >= _instant(bulk, start), c.handled_at < _instant(bulk, end), *where)
    )
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = (
        tuple(params[name] for name in compiled.positiontup)
        if compiled.positional and compiled.positiontup is not None
        else params
    )
    return str(compiled), args


def _frame_rows(conn: Connection, statement: tuple[str, Any]) -> list[Any]:
    """The rows of a ``_frame_query``, straight off the driver's cursor: for a million cases,
    making SQLAlchemy rows cost about as much as everything the sampler does with them."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(*statement)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _screen_frame(
    conn: Connection,
    bulk: BulkInsert,
    design: SamplingDesign,
    strata: _Strata,
    do_not_call: set[str],
    recent: set[str],
) -> Screened:
    """Read the frame and apply the case-level exclusions, on two cores when it pays.

    A large SQLite frame is split at a case id: a child process screens the cases above it
    (callback.screenprocess) while this one screens the rest; the result is the same.
    """
    one = design.exclusions.one_per_phone
    c = cases_t.c
    database = None
    lowest = highest = None
    if bulk.dialect == "sqlite" and conn.engine.url.database:
        database = os.path.abspath(conn.engine.url.database)
        # Two subqueries: SQLite reads a lone min() or max() off the index, both at once by
        # scanning the table (95 ms for a million cases).
        lowest, highest = conn.execute(
            sa.select(
                sa.select(sa.func.min(c.id)).scalar_subquery(),
                sa.select(sa.func.max(c.id)).scalar_subquery(),
            )
        ).one()
    if not worth_a_process(database, lowest, highest):
        rows = _frame_rows(conn, _frame_query(conn, bulk, design, strata))
        return screen(rows, do_not_call, recent, one)
    assert database is not None and lowest is not None and highest is not None
    split = split_id(lowest, highest)
    theirs = _frame_query(conn, bulk, design, strata, c.id > split)
    with screening_child(database, *theirs, do_not_call, recent, one) as their_share:
        rows = _frame_rows(conn, _frame_query(conn, bulk, design, strata, c.id <= split))
        mine = screen_share(rows, do_not_call, recent, one)
        del rows
        return combine([mine, their_share()])


def _recently_called(conn: Connection, design: SamplingDesign, now: datetime) -> set[str]:
    days = design.exclusions.contact_gap_days
    if not days:
        return set()
    placed = attempts_t.c.placed_at
    return set(
        conn.execute(
            sa.select(attempts_t.c.number)
            .distinct()
            .where(placed >= now - timedelta(days=days), placed <= now)
        ).scalars()
    )


def draw_cases(
    conn: Connection, campaign_id: int, design: SamplingDesign, now: datetime
) -> dict[str, Any]:
    """Draw a case campaign's sample from the frame, write its queue items, return the report."""
    bulk = BulkInsert(conn)
    strata = _Strata(conn, design, bulk)
    do_not_call = set(conn.execute(sa.select(dnc_t.c.e164)).scalars())
    recent = _recently_called(conn, design, now)
    with collector_paused():
        screened = _screen_frame(conn, bulk, design, strata, do_not_call, recent)
        by_key: dict[StratumKey, list[int]] = {}
        for code, ids in screened.strata.items():
            by_key.setdefault(strata.key(code), []).extend(ids)
        sample = select_sample(design, by_key, screened.shared_phones)
        frame = screened.frame
        excluded = {
            "no_valid_phone": screened.no_valid_phone,
            "do_not_call": screened.do_not_call,
            "recently_called": screened.recently_called,
            "duplicate_phone": sample.duplicates,
        }
        # Freed now, while the collector is paused, not walked by its next pass.
        del screened, by_key
    if "unit" in design.strata:  # the stratum names the unit: no need to ask the database
        unit_ids = {name: unit_id for unit_id, name in strata.units.items()}
        queue = {s.label: unit_ids[dict(s.key)["unit"]] for s in sample.strata}
        unit_of = {case.case_id: queue[case.stratum] for case in sample.cases}
    else:
        unit_of = _units_of(conn, [case.case_id for case in sample.cases])
    bulk(
        queue_t,
        ("unit_id", "case_id", "stratum", "inclusion_probability", "weight"),
        [(unit_of[s.case_id], s.case_id, s.stratum, s.probability, s.weight) for s in sample.cases],
        _NEW_ITEM | {"campaign_id": campaign_id},
    )
    return {
        "target": CampaignTarget.CASES.value,
        "frame": frame,
        "excluded": excluded,
        "eligible": sample.eligible,
        "requested": sample.requested,
        "sampled": len(sample.cases),
        "strata": [
            {"stratum": s.label, "N": s.population, "n": s.size, "cases": s.cases}
            for s in sample.strata
        ],
        "notes": list(sample.notes),
        "design": design.to_json(),
    }


#: The columns of a new queue item that are the same for every item.
_NEW_ITEM: dict[str, Any] = {
    "state": QueueState.OPEN.value,
    "priority": 0,
    "due_at": None,
    "wait_reason": NEW,
    "attempts": 0,
    "slot0_attempts": 0,
    "slot1_attempts": 0,
    "slot2_attempts": 0,
    "slot3_attempts": 0,
}


def _units_of(conn: Connection, case_ids: Sequence[int]) -> dict[int, int]:
    """The unit of each sampled case: its queue. Asked in blocks to stay under bind limits."""
    found: dict[int, int] = {}
    for start in range(0, len(case_ids), 900):
        block = case_ids[start : start + 900]
        found.update(
            conn.execute(
                sa.select(cases_t.c.id, cases_t.c.unit_id).where(cases_t.c.id.in_(block))
            ).all()
        )
    return found


def plan_hotlines(
    conn: Connection, campaign_id: int, design: HotlineDesign, now: datetime
) -> dict[str, Any]:
    """Plan a hotline campaign's spot checks, write them as queue items, return the report."""
    bulk = BulkInsert(conn)
    hotlines = {
        hotline_id: (unit_id, name)
        for hotline_id, unit_id, name in conn.execute(
            sa.select(hotlines_t.c.id, hotlines_t.c.unit_id, units_t.c.name)
            .join(units_t, units_t.c.id == hotlines_t.c.unit_id)
            .where(hotlines_t.c.active.is_(True))
        )
    }
    plan = plan_spot_checks(design, hotlines, not_before=now)
    rows = []
    for check in plan:
        unit_id, unit = hotlines[check.hotline_id]
        stratum = f"unit={unit}|hotline={check.hotline_id}|week={check.week.isoformat()}"
        # Spot checks stand for themselves, not for a population: probability and weight 1.
        rows.append((unit_id, check.hotline_id, stratum[:300], bulk.timestamp(check.at)))
    bulk(
        queue_t,
        ("unit_id", "hotline_id", "stratum", "appointment_at"),
        rows,
        _NEW_ITEM | {"campaign_id": campaign_id, "inclusion_probability": 1.0, "weight": 1.0},
    )
    weeks = sorted({check.week for check in plan})
    notes = []
    if not hotlines:
        notes.append("no active hotline: nothing to plan")
    elif not plan:
        notes.append("no office hours left in the period after the sampling time")
    return {
        "target": CampaignTarget.HOTLINES.value,
        "hotlines": len(hotlines),
        "weeks": [week.isoformat() for week in weeks],
        "calls_per_week": design.calls_per_week,
        "planned": len(plan),
        "notes": notes,
        "design": design.to_json(),
    }
