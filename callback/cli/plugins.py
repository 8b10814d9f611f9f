"""``callback plugins``: what is installed, and what each plugin offers."""

from __future__ import annotations

from dataclasses import asdict

import click

from callback.cli.output import echo_json, table
from callback.plugins import describe


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
def plugins(as_json: bool, show_all: bool) -> None:
    """List installed plugins with their hooks, dialers, survey scripts and exporters.

    \b
    CALLBACK_LOAD_PLUGINS limits what loads: "" for none, "a,b" for only those.
    """
    infos = [info for info in describe() if show_all or not info.builtin]
    if as_json:
        echo_json([asdict(info) for info in infos])
        return
    if not infos:
        click.echo("No plugins installed (--all shows the built-in ones).")
        return
    rows = [
        (
            info.name + (" (built-in)" if info.builtin else ""),
            info.version or "",
            ", ".join(info.hooks),
            ", ".join(info.dialers),
            ", ".join(info.scripts),
            ", ".join(info.exporters),
        )
        for info in infos
    ]
    click.echo(table(["plugin", "version", "hooks", "dialers", "scripts", "exporters"], rows))
