"""An example plugin: one dialer, one survey script, one frame exporter and one command."""

from __future__ import annotations

from pathlib import Path

import click

from callback import hookimpl
from callback.dialing import CallRequest, Dialer
from callback.surveys import load_script


class EchoDialer(Dialer):
    """Pretends to place calls; good for nothing but tests."""

    def start(self, call: CallRequest) -> str:
        return f"echo-{call.attempt_id}"


@hookimpl
def register_dialers(register):
    register("echo", EchoDialer)


@hookimpl
def register_survey_scripts(register):
    register(load_script(Path(__file__).with_name("quick-check.toml")))


@hookimpl
def register_frame_exporters(register):
    def export(rows, out):
        for row in rows:
            out.write(f"{row}\n".encode())

    register("lines", export)


@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello from the example plugin."""
        click.echo("hello from callback-example")
