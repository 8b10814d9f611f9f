"""The demo: a synthetic district's summer campaign, from its export to its reports, in seconds.

``callback demo`` runs the main job end to end in a folder of its own: it writes a district's
service cases (June to September 2018, a few rows messy), imports them into a new SQLite
database, samples a campaign and has the simulated dialer call it to the end on a virtual
clock, then writes the weekly reports and the corrected frame. Everything is seeded, so the
same seed gives the same figures.
"""

from __future__ import annotations

import gc
import shutil
import time as timer
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import migrate, plugins
from callback.calendar import is_working_day
from callback.calls import CallHandler
from callback.campaigns import create_campaign, sample_campaign
from callback.config import Settings
from callback.corrections import PendingResult, apply_pending
from callback.db import create_engine
from callback.dialing import Dialer
from callback.errors import CallbackError
from callback.export import ExportResult, export_frame
from callback.importing import ImportOptions, ImportResult, import_file
from callback.models import ProblemReport, QueueItem, QueueState, Unit, table
from callback.problems import OPEN_STATUSES
from callback.queues import refresh
from callback.rates import Proportion
from callback.rehearsal import RehearsalReport, rehearse
from callback.report_weeks import Week, week_at
from callback.reports import CampaignDistrict, RatesReport, rates_report
from callback.sampling_design import SamplingDesign
from callback.synthetic import write_district
from callback.weekly import weekly_report

#: The file that marks a folder as the demo's own, so that a rerun may empty it.
MARKER = ".callback-demo"
#: What the shell demo of earlier versions left in ./demo/ (it wrote no marker).
_EARLIER_DEMO_FILES = frozenset(
    {"callback.db", "callback.db-wal", "callback.db-shm", "district.csv",
     "district.csv.rejects.csv"}
)  # fmt: skip
CAMPAIGN = "2018-summer"
TIMEZONE = "Asia/Shanghai"
_ZONE = ZoneInfo(TIMEZONE)
#: Cases handled June to September of this year, called back in October.
YEAR = 2018
#: The district's export holds this many times the cases called: the sample is half the frame.
FRAME_FACTOR = 2
#: The first Monday after the National Day week (1-7 October 2018, with 29-30 September
#: worked in exchange); the calling rules would skip the holiday anyway.
START = datetime(2018, 10, 8, 9, 0, tzinfo=_ZONE)
DEADLINE = datetime(2018, 10, 31, 23, 59, tzinfo=_ZONE)
#: The office imports, creates and samples before the first calls of the morning.
_PREPARED_AT = START - timedelta(hours=1)
#: A share of rows messy as real exports are (odd numbers and dates, missing facts).
MESSY = 0.02

units_t, items_t, problems_t = table(Unit), table(QueueItem), table(ProblemReport)


class DemoError(CallbackError):
    """The demo cannot run where or as asked."""


@dataclass(frozen=True)
class DemoOptions:
    directory: Path
    #: The campaign's sample: how many cases are called.
    cases: int = 2000
    seed: int = 1
    #: The simulated call centre's lines: calls placed at once.
    lines: int = 20


@dataclass(frozen=True)
class Progress:
    """Where a running rehearsal is: its virtual local time and what it has done."""

    at: datetime
    attempts: int
    finished: int
    sampled: int
    seconds: float


@dataclass(frozen=True)
class UnitLine:
    """One unit's queue at the end: its progress and its rates (``None`` without completes)."""

    unit: str
    sampled: int
    finished: int
    attempts: int
    completes: int
    realisation: Proportion | None
    satisfaction: Proportion | None
    #: AAPOR RR1: completes over every case of known and unknown eligibility.
    response_rate: float | None


@dataclass
class DemoResult:
    directory: Path
    database: Path
    district: Path
    imported: ImportResult
    sample: dict[str, Any]
    rehearsal: RehearsalReport
    units: list[UnitLine]
    total: UnitLine
    district_estimates: list[CampaignDistrict]
    corrections: PendingResult
    open_problems: int
    weekly: list[Path]
    export: Path
    exported: ExportResult
    #: Wall-clock seconds of each step, in order.
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` an empty demo folder, emptying it only if an earlier demo made it."""
    if directory.exists():
        if not directory.is_dir():
            raise DemoError(f"{directory} is a file, not a folder: choose another --dir")
        entries = {p.name for p in directory.iterdir()}
        earlier = MARKER in entries or entries <= _EARLIER_DEMO_FILES
        if not earlier:
            raise DemoError(
                f"{directory} is not empty and is not a folder an earlier demo made (it has no"
                f" {MARKER} file): the demo starts afresh by deleting its folder, so choose"
                " another --dir, or empty this one yourself"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text(
        "Made by `callback demo`, which deletes this folder when it runs again.\n",
        encoding="utf-8",
    )


def run_demo(
    options: DemoOptions,
    say: Callable[[str], None] = lambda line: None,
    progress: Callable[[Progress], None] | None = None,
) -> DemoResult:
    """Run the main job end to end in ``options.directory``, started afresh.

    ``say`` hears one line as each step begins and ends; ``progress`` hears the rehearsal's
    state at every hour of virtual time.
    """
    if options.cases < 1 or options.lines < 1:
        raise DemoError("the demo needs at least one case and one line")
    directory = options.directory
    prepare_directory(directory)
    clock = _Stopwatch()
    database = directory / "callback.db"
    url = f"sqlite:///{database}"
    settings = Settings(database_url=url, timezone=TIMEZONE, actor="demo")

    frame = options.cases * FRAME_FACTOR
    district = directory / "district.csv"
    say(f"Writing a district's export: {frame:,} cases handled June to September {YEAR}")
    written = write_district(district, frame, seed=options.seed, year=YEAR, messy=MESSY)
    clock.lap("generate")
    say(
        f"  {district}: {written.rows:,} rows, {sum(written.messes.values()):,} of them messy"
        f" ({written.expected_rejected:,} beyond repair)"
    )

    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        say(f"Importing it into a new database, {database}")
        imported = import_file(engine, district, settings, ImportOptions(), now=_PREPARED_AT)
        clock.lap("import")
        say(
            f"  {imported.inserted:,} cases imported, {imported.rejected:,} rejected,"
            f" {imported.warnings:,} kept but flagged; {imported.without_valid_phone:,} without"
            " a number to call"
        )
        if imported.rejects_path:
            say(f"  every rejected row and flagged value, with its reason: {imported.rejects_path}")

        say(f"Sampling campaign {CAMPAIGN}: {options.cases:,} cases, stratified by unit and month")
        design = SamplingDesign.summer(
            YEAR, options.seed, size=options.cases, strata=("unit", "month")
        )
        campaign_id = create_campaign(
            engine, CAMPAIGN, design, script="service-callback", dialer="simulated",
            created_by=settings.actor, now=_PREPARED_AT, title=f"{YEAR}年6-9月办事服务回访",
            deadline=DEADLINE,
        )  # fmt: skip
        sample = sample_campaign(engine, campaign_id, _PREPARED_AT)
        refresh(engine, campaign_id, _PREPARED_AT)
        clock.lap("sample")
        left_out = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sample["excluded"].items())
        say(
            f"  {sample['sampled']:,} of {sample['eligible']:,} eligible cases in"
            f" {len(sample['strata']):,} strata (frame {sample['frame']:,}; left out: {left_out})"
        )

        say(
            f"Calling with the simulated dialer on {options.lines} lines, from"
            f" {START:%Y-%m-%d %H:%M} ({TIMEZONE}) on a virtual clock"
        )
        rehearsal = _rehearse(engine, campaign_id, options, sample["sampled"], progress)
        clock.lap("call")
        end = rehearsal.ended.astimezone(_ZONE)
        say(
            f"  {rehearsal.attempts:,} calls over {_calling_days(START, end)} working days,"
            f" last call by {end:%Y-%m-%d %H:%M}; {rehearsal.open_items:,} cases left open"
        )

        corrections = apply_pending(engine, rehearsal.ended, settings.actor)
        say(
            f"Corrections learnt in the calls: {len(corrections.applied):,} applied to the frame,"
            f" {len(corrections.waiting):,} wait for a person"
        )
        report = rates_report(engine, "unit", [campaign_id], timezone=TIMEZONE)
        units, total = unit_lines(engine, campaign_id, report)
        clock.lap("rates")

        weekly = _weekly_reports(engine, START, rehearsal.ended, directory / "reports")
        clock.lap("weekly")
        # CSV (UTF-8 with BOM, as Excel opens it): a workbook takes seconds longer to write.
        export = directory / "frame-corrected.csv"
        with export.open("wb") as out:
            exported = export_frame(engine, "csv", out, _ZONE)
        clock.lap("export")
        open_problems = _open_problems(engine)
    finally:
        engine.dispose()
    return DemoResult(
        directory, database, district, imported, sample, rehearsal, units, total,
        list(report.district), corrections, open_problems, weekly, export, exported,
        clock.laps,
    )  # fmt: skip


class _Stopwatch:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = timer.perf_counter()

    def lap(self, name: str) -> None:
        now = timer.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def simulated_dialer(seed: int) -> Callable[[CallHandler], Dialer]:
    """The registered ``simulated`` dialer with its default citizens, seeded."""
    dialer_class = plugins.get_dialer("simulated")

    def make(handler: CallHandler) -> Dialer:
        dialer: Dialer = dialer_class({"seed": seed}, handler, handler)
        return dialer

    return make


def _rehearse(
    engine: Engine,
    campaign_id: int,
    options: DemoOptions,
    sampled: int,
    progress: Callable[[Progress], None] | None,
) -> RehearsalReport:
    started = timer.perf_counter()
    shown: list[datetime] = []

    def report(state: RehearsalReport, now: datetime) -> None:
        hour = now.astimezone(_ZONE).replace(minute=0, second=0, microsecond=0)
        if progress is None or (shown and hour <= shown[-1]):
            return
        shown.append(hour)
        progress(
            Progress(now.astimezone(_ZONE), state.attempts, _finished(engine, campaign_id),
                     sampled, timer.perf_counter() - started)
        )  # fmt: skip

    # Tens of thousands of small statements and transactions, and few cycles among them: the
    # cycle collector's default passes cost about a tenth of the rehearsal (measured, 2,000 cases).
    with few_collections():
        return rehearse(
            engine, campaign_id, simulated_dialer(options.seed), START, lines=options.lines,
            progress=report,
        )  # fmt: skip


def _finished(engine: Engine, campaign_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    items_t.c.campaign_id == campaign_id,
                    items_t.c.state == QueueState.FINISHED.value,
                )
            ).scalar_one()
        )


def _calling_days(start: datetime, end: datetime) -> int:
    days, day = 0, start.date()
    while day <= end.date():
        days += is_working_day(day)
        day += timedelta(days=1)
    return days


def unit_lines(
    engine: Engine, campaign_id: int, report: RatesReport
) -> tuple[list[UnitLine], UnitLine]:
    """Each unit's queue in the campaign: sampled, finished, attempts, completes and rates.

    The rates come from ``report``, the campaign's rates by unit as ``callback report rates``
    computes them, so the demo prints what that command prints.
    """
    groups = {g.group: g for g in report.groups}
    outcomes = {o.unit: o for o in report.outcomes}
    is_finished = sa.case((items_t.c.state == QueueState.FINISHED.value, 1), else_=0)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(units_t.c.name, sa.func.count(), sa.func.sum(is_finished),
                      sa.func.sum(items_t.c.attempts))
            .join(units_t, units_t.c.id == items_t.c.unit_id)
            .where(items_t.c.campaign_id == campaign_id)
            .group_by(units_t.c.name)
            .order_by(units_t.c.name)
        ).all()  # fmt: skip
    lines = []
    for name, sampled, finished, attempts in rows:
        group, outcome = groups.get(name), outcomes.get(name)
        lines.append(
            UnitLine(
                name, sampled, int(finished), int(attempts), group.completes if group else 0,
                group.realisation if group else None, group.satisfaction if group else None,
                outcome.rates.rr1 if outcome else None,
            )
        )  # fmt: skip
    whole = outcomes.get(None)
    total = UnitLine(
        "合计 total", sum(x.sampled for x in lines), sum(x.finished for x in lines),
        sum(x.attempts for x in lines), report.total.completes, report.total.realisation,
        report.total.satisfaction, whole.rates.rr1 if whole else None,
    )  # fmt: skip
    return lines, total


def _weekly_reports(engine: Engine, start: datetime, end: datetime, out: Path) -> list[Path]:
    """The weekly report of every report week the calls fell in, each written as on the
    Thursday morning after it (when ``callback run`` writes it)."""
    paths: list[Path] = []
    week: Week = week_at(start, _ZONE)
    last = week_at(end, _ZONE)
    while week.start <= last.start:
        thursday = week.start + timedelta(days=7)
        written_at = datetime.combine(thursday, time(8), _ZONE)
        paths.extend(weekly_report(engine, week.start, out, written_at, timezone=TIMEZONE))
        week = Week(thursday)
    return paths


def _open_problems(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(problems_t.c.status.in_(OPEN_STATUSES))
            ).scalar_one()
        )


@contextmanager
def few_collections() -> Iterator[None]:
    """Let the cycle collector run rarely during the rehearsal.

    Its tens of thousands of statements make few cycles, but some (SQLAlchemy's), so the
    collector is not paused: its thresholds are raised, and objects alive now are frozen out
    of its way. The thresholds come back after.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
