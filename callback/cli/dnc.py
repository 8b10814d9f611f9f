"""``callback dnc``: the do-not-call list."""

from __future__ import annotations

import click

from callback import dnc
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table


@click.group(name="dnc")
def dnc_group() -> None:
    """The do-not-call list (谢绝回访): numbers that are never dialled."""


@dnc_group.command()
@click.argument("numbers", nargs=-1, required=True)
@click.option("--reason", help="Why, e.g. the citizen asked not to be called again.")
@click.option(
    "--source",
    type=click.Choice(dnc.SOURCES),
    default="office",
    show_default=True,
    help="Who asked for the block.",
)
@pass_app
def add(app: AppContext, numbers: tuple[str, ...], reason: str | None, source: str) -> None:
    """Add NUMBERS (as people type them) to the do-not-call list.

    \b
    Example:
      callback dnc add 13912345671 "0571-8765 4321" --reason "asked twice"
    """
    settings = app.settings
    added, present = dnc.add(
        app.database(), numbers, settings.actor, reason, source, settings.default_area_code
    )
    click.echo(f"{added} added, {present} already on the list.")


@dnc_group.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False))
@pass_app
def import_(app: AppContext, path: str) -> None:
    """Add every number in a file: one per line, or CSV with number and reason columns."""
    settings = app.settings
    added, present = dnc.import_file(
        app.database(), path, settings.actor, area_code=settings.default_area_code
    )
    click.echo(f"{added} added, {present} already on the list.")


@dnc_group.command(name="list")
@click.option("--full", is_flag=True, help="Show whole numbers instead of masked ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: AppContext, full: bool, as_json: bool) -> None:
    """List the do-not-call list (numbers masked unless --full)."""
    found = dnc.entries(app.database())
    if as_json:
        echo_json([{"number": dnc.shown(e, full), "reason": e.reason, "source": e.source,
                    "added_by": e.added_by, "added_at": e.added_at} for e in found])  # fmt: skip
        return
    rows = [(dnc.shown(e, full), e.reason or "", e.source, e.added_by,
             f"{e.added_at:%Y-%m-%d}") for e in found]  # fmt: skip
    click.echo(table(["number", "reason", "source", "added by", "added"], rows))
