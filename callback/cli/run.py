"""``callback run``: the dispatcher that dials automated campaigns, and its periodic jobs."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path

import click

from callback.cli.context import AppContext, pass_app
from callback.dispatch import LINES_EVERY, Dispatcher, describe
from callback.models import utcnow
from callback.queues import refresh


@click.command()
@click.option(
    "--campaign", "campaigns", multiple=True, help="Dial only this campaign (repeatable)."
)
@click.option("--tick", default=2.0, show_default=True, help="Seconds between dispatcher ticks.")
@click.option(
    "--reconcile-after",
    default=30,
    show_default=True,
    help="Minutes after which a call still open is settled (longer than any call).",
)
@click.option(
    "--campaigns-every",
    default=LINES_EVERY,
    show_default=True,
    help="Seconds between looks for campaigns sampled, resumed, paused or closed.",
)
@click.option("--once", is_flag=True, help="Run one tick (after reconciling) and exit.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="reports",
    show_default=True,
    help="Where the weekly report is written every Thursday at 08:00.",
)
@pass_app
def run(
    app: AppContext,
    campaigns: tuple[str, ...],
    tick: float,
    reconcile_after: int,
    campaigns_every: float,
    once: bool,
    report_dir: Path,
) -> None:
    """Dial the due cases of automated campaigns (IVR) until stopped (SIGTERM or Ctrl-C).

    \b
    Several `callback run` processes may share one PostgreSQL database: none dials a case
    twice, and the dialers' pacing is shared. On start, calls a dead dispatcher left open
    are settled (the provider is asked, else they are closed and their cases retried).
    Campaigns whose dialer is manual are left to agents (`callback agent`). A campaign
    sampled or resumed while it runs is taken up within --campaigns-every seconds, and one
    paused or closed is let go (its calls already up finish); no restart is needed.

    \b
    Periodic jobs besides dialling: expired claims released (every minute), open calls
    reconciled (5 min), due times recomputed (15 min), corrections from calls applied
    unless their campaign reviews them (10 min), and the weekly report written to
    --report-dir every Thursday at 08:00 for the week that ended on Wednesday.
    """
    engine = app.database()
    settings = app.settings
    worker = f"dispatcher:{socket.gethostname()}:{os.getpid()}"
    started, t0 = app.now(), time.monotonic()

    def clock() -> datetime:
        # With --now the clock starts there and runs at the wall clock's pace.
        if app.fixed_now is None:
            return utcnow()
        return started + timedelta(seconds=time.monotonic() - t0)

    dispatcher = Dispatcher(
        engine, settings, worker, clock, campaigns or None, lines_every=campaigns_every
    )
    if not dispatcher.lines:
        if once:
            click.echo("No sampled campaign has an automated dialer: nothing to dial.", err=True)
            return
        click.echo(
            f"{worker}: no sampled campaign has an automated dialer yet; looking again every "
            f"{campaigns_every:g} s",
            err=True,
        )
    for described in describe(dispatcher.lines):
        click.echo(
            f"{worker}: {described['dialer']} for campaigns {described['campaigns']}", err=True
        )
    settled = dispatcher.reconcile(timedelta(minutes=reconcile_after))
    if settled:
        click.echo(f"settled {settled} calls left open by a stopped dispatcher", err=True)
    for line in dispatcher.lines:
        for campaign_id in line.campaigns:
            refresh(engine, campaign_id, clock())
    if once:
        report = dispatcher.tick()
        dispatcher.close()
        click.echo(f"placed {report.placed} calls")
        return
    from callback.corrections import apply_pending
    from callback.scheduler import build_scheduler, run_until_stopped
    from callback.weekly import weekly_report

    def write_weekly_report() -> None:
        paths = weekly_report(engine, None, report_dir, clock(), timezone=settings.timezone)
        click.echo(f"weekly report written: {', '.join(map(str, paths))}", err=True)

    def apply_corrections() -> None:
        result = apply_pending(engine, clock(), worker, settings.default_area_code)
        if result.applied:
            click.echo(f"applied {len(result.applied)} corrections from calls", err=True)

    scheduler = build_scheduler(
        dispatcher,
        settings.timezone,
        tick,
        timedelta(minutes=reconcile_after),
        weekly_report=write_weekly_report,
        apply_corrections=apply_corrections,
    )
    run_until_stopped(
        scheduler, dispatcher, on_stop=lambda name: click.echo(f"{name}: stopping", err=True)
    )
    click.echo(f"stopped; {sum(line.placed for line in dispatcher.lines)} calls placed", err=True)
