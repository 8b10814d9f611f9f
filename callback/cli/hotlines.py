"""``callback hotlines``: the published consultation hotlines that spot checks call."""

from __future__ import annotations

import click

from callback import hotlines as hotlines_
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table


@click.group()
def hotlines() -> None:
    """Units' published consultation hotlines (咨询电话) for the weekly spot checks."""


@hotlines.command()
@click.argument("unit")
@click.argument("number")
@click.option("--label", help="How the unit publishes it, e.g. 办事咨询.")
@pass_app
def add(app: AppContext, unit: str, number: str, label: str | None) -> None:
    """Add UNIT's hotline NUMBER (as published; landlines take the default area code).

    An extension is kept and keyed after the answer ("0571-8765 4321转8001"); a short
    service number (12345, 12366, 96xxx) is the city's: the default area code's, or the
    one written before it.

    \b
    Examples:
      callback hotlines add 区市场监管局 "0571-8765 4321" --label 办事咨询
      callback hotlines add 区民政局 "0571-8800 1111转8001"
      callback hotlines add 区税务局 12366
    """
    settings = app.settings
    added = hotlines_.add(
        app.database(), unit, number, settings.actor, app.now(), label, settings.default_area_code
    )
    click.echo("Added." if added else "Already listed.")


@hotlines.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False))
@pass_app
def import_(app: AppContext, path: str) -> None:
    """Add every hotline of a CSV file: unit, number and an optional label per row."""
    settings = app.settings
    added, present = hotlines_.import_file(
        app.database(), path, settings.actor, app.now(), settings.default_area_code
    )
    click.echo(f"{added} added, {present} already listed.")


@hotlines.command()
@click.argument("hotline_id", type=int)
@click.option("--reason", required=True, help="Why, for the audit log.")
@pass_app
def deactivate(app: AppContext, hotline_id: int, reason: str) -> None:
    """Stop spot-checking hotline HOTLINE_ID (kept, with its history, for the reports)."""
    hotlines_.deactivate(app.database(), hotline_id, app.settings.actor, app.now(), reason)
    click.echo(f"Hotline {hotline_id} deactivated.")


@hotlines.command(name="list")
@click.option("--all", "include_inactive", is_flag=True, help="Include inactive hotlines.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: AppContext, include_inactive: bool, as_json: bool) -> None:
    """List the hotlines (published numbers, shown in full: they are not personal)."""
    found = hotlines_.listed(app.database(), include_inactive)
    if as_json:
        echo_json([vars(h) for h in found])
        return
    rows = [
        (h.id, h.unit, h.e164, h.extension or "", h.label or "", "yes" if h.active else "no")
        for h in found
    ]
    click.echo(table(["id", "unit", "number", "extension", "label", "active"], rows))
