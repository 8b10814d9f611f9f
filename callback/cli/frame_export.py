"""``callback frame export``: the corrected frame for the evaluator, in any registered format."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from callback import plugins
from callback.audit_log import record_disclosure
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json
from callback.export import export_frame


@click.command("export")
@click.option(
    "--format",
    "format_name",
    metavar="NAME",
    help="Export format: csv, xlsx, or one a plugin registers (default: the --out file's "
    "suffix when it names a format, else csv).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write; it is replaced only once the whole frame is written.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def export_command(app: AppContext, format_name: str | None, out: Path, as_json: bool) -> None:
    """Export every case of the frame with its current facts and each number's verification.

    Cases come in case-number order, none left out, one row per case; numbers follow as
    联系电话（n）, 核实状态（n）, 核实日期（n）, the usable ones first. Nothing in the file depends
    on what citizens answered about realisation or satisfaction. See docs/corrections.md.

    \b
    Examples:
      callback frame export --out frame.xlsx
      callback frame export --format csv --out frame.csv
    """
    known = plugins.frame_exporters()
    if format_name is None:
        suffix = out.suffix.lstrip(".").lower()
        format_name = suffix if suffix in known else "csv"
    if format_name not in known:
        raise click.BadParameter(
            f"{format_name!r} is not an installed format (installed: {', '.join(sorted(known))})",
            param_hint="--format",
        )
    engine = app.database()
    partial = out.with_name(f".{out.name}.partial")
    bar = _Progress(format_name)
    try:
        with partial.open("wb") as handle:
            result = export_frame(engine, format_name, handle, app.settings.tz, bar.update)
        os.replace(partial, out)
    finally:
        bar.close()
        partial.unlink(missing_ok=True)
    # The file holds every citizen's name and number: who took it, and when, is on record.
    record_disclosure(engine, app.settings.actor, "disclose.frame", app.now(),
                      {"file": out.name, "format": result.format, "cases": result.cases,
                       "numbers": result.contacts}, "callback frame export")  # fmt: skip
    if as_json:
        echo_json({"path": str(out), "format": result.format, "cases": result.cases,
                   "numbers": result.contacts, "seconds": round(result.seconds, 3)})  # fmt: skip
        return
    click.echo(
        f"{out}: {result.cases:,} cases with {result.contacts:,} current numbers ({result.format})"
    )
    click.echo(f"  {result.seconds:.1f} s", err=True)


class _Progress:
    """A progress bar on stderr for a long export; nothing when stderr is not a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0
        self.started = time.monotonic()

    def update(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr,
                                         show_eta=True)  # fmt: skip
            self.bar.__enter__()
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.bar.label = f"{self.label} {rate:,.0f} cases/s"
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
