"""``callback frame``: what the sampling frame holds."""

from __future__ import annotations

import click

from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.frame import summarise


@click.group()
def frame() -> None:
    """The sampling frame (样本框): the handled cases and their contacts."""


@frame.command()
@click.option("--top", default=10, show_default=True, help="How many of the busiest units to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_app
def summary(app: AppContext, top: int, as_json: bool) -> None:
    """Print what the frame holds: cases, units, period, channels and phone quality."""
    result = summarise(app.database(), top=top)
    if as_json:
        echo_json(result.as_dict())
        return
    tz = app.settings.tz
    period = "none"
    if result.first_handled and result.last_handled:
        first = result.first_handled.astimezone(tz).date()
        last = result.last_handled.astimezone(tz).date()
        period = f"{first} to {last}"
    units = ", ".join(f"{n} {kind}s" for kind, n in sorted(result.units.items()))
    click.echo(f"Cases: {result.cases:,} handled {period}, from {result.batches} imported files")
    click.echo(f"Units: {units or 'none'}")
    click.echo(f"Cases without a valid phone: {result.without_valid_phone:,}")
    click.echo("")
    click.echo(table(["channel", "cases"], sorted(result.by_channel.items(), key=lambda x: -x[1])))
    click.echo("")
    click.echo(table(["applicant", "cases"], sorted(result.by_applicant_type.items())))
    click.echo("")
    click.echo(table(["phone numbers", "count"], list(result.contacts.items())))
    click.echo("")
    click.echo(table(["unit", "kind", "cases"], result.top_units))
