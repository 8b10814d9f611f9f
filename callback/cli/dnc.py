"""``callback dnc``: the do-not-call list."""

from __future__ import annotations

import click

from callback import dnc
from callback.audit_log import record_disclosure
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.phones import mask


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


@dnc_group.command()
@click.argument("numbers", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why, e.g. added by mistake.")
@click.option(
    "--citizen-asked",
    is_flag=True,
    help="The citizen who asked not to be called has asked to be called again.",
)
@pass_app
def remove(app: AppContext, numbers: tuple[str, ...], reason: str, citizen_asked: bool) -> None:
    """Take NUMBERS off the do-not-call list (audited, with the entry as it was).

    A block the citizen asked for is lifted only with --citizen-asked. Cases left out of a
    sample already drawn stay out; queues already holding the number call it again from the
    next refresh of due times.
    """
    settings = app.settings
    removed, absent = dnc.remove(
        app.database(), numbers, settings.actor, reason, citizen_asked,
        settings.default_area_code, app.now(),
    )  # fmt: skip
    click.echo(f"{removed} removed.")
    if absent:
        click.echo(f"Not on the list: {', '.join(mask(n) for n in absent)}.")


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
    engine = app.database()
    found = dnc.entries(engine)
    if full:
        record_disclosure(engine, app.settings.actor, "disclose.dnc", app.now(),
                          {"numbers": len(found)}, "callback dnc list --full")  # fmt: skip
    if as_json:
        echo_json([{"number": dnc.shown(e, full), "reason": e.reason, "source": e.source,
                    "added_by": e.added_by, "added_at": e.added_at} for e in found])  # fmt: skip
        return
    rows = [(dnc.shown(e, full), e.reason or "", e.source, e.added_by,
             f"{e.added_at:%Y-%m-%d}") for e in found]  # fmt: skip
    click.echo(table(["number", "reason", "source", "added by", "added"], rows))
