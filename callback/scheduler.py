"""``callback run``'s clock: APScheduler ticks the dispatcher and runs the periodic jobs.

The only module that imports APScheduler. The database stays the source of truth for what
is due; the scheduler only says when to look. Jobs never overlap themselves (one instance,
missed runs coalesced), so a slow tick is followed by the next, not by a pile-up.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from callback.claims import release_expired
from callback.dispatch import Dispatcher
from callback.queues import refresh

log = logging.getLogger(__name__)


def build_scheduler(
    dispatcher: Dispatcher,
    timezone: str,
    tick_seconds: float = 2.0,
    reconcile_after: timedelta = timedelta(minutes=30),
    weekly_report: Callable[[], Any] | None = None,
    apply_corrections: Callable[[], Any] | None = None,
    extra_jobs: list[tuple[Callable[[], Any], Any]] | None = None,
) -> BlockingScheduler:
    """A scheduler with the dispatcher's tick and the periodic jobs of a call centre."""
    scheduler = BlockingScheduler(timezone=timezone)
    once = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(
        _guard(dispatcher.tick), IntervalTrigger(seconds=tick_seconds), id="tick", **once
    )
    scheduler.add_job(
        _guard(lambda: release_expired(dispatcher.engine, dispatcher.clock())),
        IntervalTrigger(minutes=1), id="release-expired-claims", **once,
    )  # fmt: skip
    scheduler.add_job(
        _guard(lambda: dispatcher.reconcile(reconcile_after)),
        IntervalTrigger(minutes=5), id="reconcile", **once,
    )  # fmt: skip
    # Due times change with things other than calls: a do-not-call entry, a corrected number.
    scheduler.add_job(
        _guard(lambda: _refresh_all(dispatcher)), IntervalTrigger(minutes=15), id="refresh",
        **once,
    )  # fmt: skip
    if weekly_report is not None:
        # Thursday morning: the week from last Thursday to yesterday, Wednesday.
        scheduler.add_job(
            _guard(weekly_report), CronTrigger(day_of_week="thu", hour=8, timezone=timezone),
            id="weekly-report", **once,
        )  # fmt: skip
    if apply_corrections is not None:
        # Corrections learnt in calls reach the frame within minutes (unless under review).
        scheduler.add_job(
            _guard(apply_corrections), IntervalTrigger(minutes=10), id="apply-corrections",
            **once,
        )  # fmt: skip
    for function, trigger in extra_jobs or []:
        scheduler.add_job(_guard(function), trigger, **once)
    return scheduler


def _refresh_all(dispatcher: Dispatcher) -> None:
    now = dispatcher.clock()
    for line in dispatcher.lines:
        for campaign_id in line.campaigns:
            refresh(dispatcher.engine, campaign_id, now)


def _guard(job: Callable[[], Any]) -> Callable[[], None]:
    """Log a job's failure and keep the scheduler running: the next tick may well succeed."""

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("scheduled job failed")

    return run


def run_until_stopped(
    scheduler: BlockingScheduler,
    dispatcher: Dispatcher,
    drain: timedelta = timedelta(minutes=2),
    on_stop: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then stop dialling and let calls in flight end."""
    stop = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        dispatcher.stopping = True
        stop.set()
        if on_stop is not None:
            on_stop(signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, _signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.start()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    _drain(dispatcher, drain)
    dispatcher.close()


def _drain(dispatcher: Dispatcher, limit: timedelta) -> None:
    """Let this dispatcher's calls end, polling dialers, for up to ``limit``."""
    deadline = datetime.now().astimezone() + limit
    while datetime.now().astimezone() < deadline:
        busy = sum(dispatcher.in_flight(line.name, mine=True) for line in dispatcher.lines)
        for line in dispatcher.lines:
            line.dialer.poll(dispatcher.clock())
        if not busy:
            return
        threading.Event().wait(0.5)
    log.warning("calls still in flight at shutdown; the next start reconciles them")
