"""``callback queue``: what the callback queues hold."""

from __future__ import annotations

from datetime import datetime

import click

from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.dispositions import Disposition
from callback.queue_status import QueueStatus, queue_status


@click.group()
def queue() -> None:
    """Callback queues (回访对象): sampled cases waiting to be called."""


@queue.command()
@click.option("--campaign", metavar="NAME", help="Show only this campaign.")
@click.option("--unit", metavar="NAME", help="Show only this unit's queue.")
@click.option(
    "--at",
    metavar="'YYYY-MM-DD HH:MM'",
    help="Count as of this local time instead of now (to see what will be due).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_app
def status(
    app: AppContext, campaign: str | None, unit: str | None, at: str | None, as_json: bool
) -> None:
    """Count each campaign's and unit's items: due, held, waiting, and finished.

    "tester" counts open items an automated dialer handed to a person (hotline checks a
    person answered: a tester makes the consultation call); they are in the other counts too.

    \b
    Examples:
      callback queue status
      callback queue status --campaign 2026-W24 --unit 西湖区市场监管局
      callback queue status --json
    """
    now = app.now()  # the root --now of a rehearsal, else the clock
    if at is not None:
        try:
            now = datetime.fromisoformat(at).replace(tzinfo=app.settings.tz)
        except ValueError:
            raise click.BadParameter(f"not a time: {at!r}", param_hint="--at") from None
    rows = queue_status(app.database(), now, campaign=campaign, unit=unit)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("No queue items" + (" match." if campaign or unit else " yet."))
        return
    click.echo(
        table(
            [
                "campaign",
                "unit",
                "calling",
                "due",
                "held",
                "retry",
                "appointment",
                "other",
                "finished",
                "tester",
            ],
            [
                [
                    r.campaign,
                    r.unit,
                    _calling(r),
                    r.due,
                    r.held,
                    r.retry,
                    r.appointment,
                    r.other,
                    r.finished,
                    r.handed,
                ]
                for r in rows
            ],
        )  # fmt: skip
    )
    waiting = [[r.campaign, r.unit, k, n] for r in rows for k, n in sorted(r.waiting.items())]
    if waiting:
        click.echo("")
        click.echo(table(["campaign", "unit", "other: waiting for", "items"], waiting))
    finished = [
        [r.campaign, r.unit, code, _label(code), n]
        for r in rows
        for code, n in sorted(r.dispositions.items())
    ]
    if finished:
        click.echo("")
        click.echo(table(["campaign", "unit", "final", "结果", "items"], finished))


def _label(code: str) -> str:
    try:
        return Disposition(code).info.zh
    except ValueError:
        return ""


def _calling(status: QueueStatus) -> str:
    """yes or no, or why a campaign that is not sampled never calls (paused, closed)."""
    if status.calling:
        return "yes"
    return "no" if status.campaign_status == "sampled" else status.campaign_status
