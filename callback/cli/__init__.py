"""The ``callback`` command: a root group and one module per noun."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import click
import sqlalchemy as sa

from callback import __version__
from callback.cli.context import AppContext
from callback.errors import CallbackError


class CallbackGroup(click.Group):
    """The root group: plugin commands on first use, expected failures as one clean line.

    Plugins load when a command is looked up, not when callback is imported (flask's
    pattern), so ``callback --help`` shows plugin commands and importing callback stays cheap.
    """

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        if not self._plugin_commands_loaded:
            self._plugin_commands_loaded = True
            from callback.plugins import register_commands

            register_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            try:
                self._load_plugin_commands()
            except CallbackError as exc:
                raise click.ClickException(str(exc)) from None
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            self._load_plugin_commands()
        except CallbackError as exc:
            raise click.ClickException(str(exc)) from None
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CallbackError as exc:
            raise click.ClickException(str(exc)) from None
        except sa.exc.OperationalError as exc:
            raise click.ClickException(f"database error: {exc.orig}") from None


@click.group(cls=CallbackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callback")
@click.option(
    "--database",
    metavar="URL",
    help="Database URL, e.g. sqlite:///callback.db or postgresql://user@host/db "
    "(also CALLBACK_DATABASE_URL or database_url in callback.toml).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Settings file to read instead of ./callback.toml (also CALLBACK_CONFIG).",
)
@click.option("--actor", help="Who is making changes, for the audit log (default: your login).")
@click.option("-v", "--verbose", count=True, help="Log more to stderr; twice for SQL.")
@click.option(
    "--now",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    hidden=True,
    help="Act as if it were this local time (rehearsals, training, tests).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    database: str | None,
    config_file: str | None,
    actor: str | None,
    verbose: int,
    now: datetime | None,
) -> None:
    """Callback surveys of service cases, hotline spot checks and accurate sampling frames.

    \b
    Quick start:
      callback init                      create ./callback.db
      callback cases import export.csv   import a service centre's export
      callback frame summary             see what the frame holds
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose >= 2:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    ctx.obj = AppContext({"database_url": database, "actor": actor}, config_file, now)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from callback.cli import (
        agent,
        audit,
        campaign,
        cases,
        corrections,
        db,
        demo,
        dnc,
        frame,
        frame_export,
        hotlines,
        plugins,
        problems,
        queue,
        report,
        run,
        serve,
    )

    cli.add_command(db.init)
    cli.add_command(db.db)
    cli.add_command(cases.cases)
    cli.add_command(frame.frame)
    frame.frame.add_command(frame_export.export_command)
    cli.add_command(hotlines.hotlines)
    cli.add_command(dnc.dnc_group)
    cli.add_command(campaign.campaign)
    cli.add_command(queue.queue)
    cli.add_command(agent.agent)
    cli.add_command(agent.agents_group)
    cli.add_command(run.run)
    cli.add_command(serve.serve)
    cli.add_command(corrections.corrections)
    cli.add_command(problems.problems)
    cli.add_command(audit.audit)
    cli.add_command(report.report)
    cli.add_command(plugins.plugins)
    cli.add_command(demo.demo)


_register()


def main() -> None:
    cli(prog_name="callback")
