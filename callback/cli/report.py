"""``callback report``: rates with their intervals, and the weekly report (周报)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.errors import CallbackError
from callback.rates import RATE_NAMES
from callback.report_render import Kind, rates_tables, write_rates_csv, write_rates_xlsx
from callback.reports import GROUPINGS, rates_report
from callback.weekly import weekly_report

# The AAPOR table has 16 rates: in a terminal it is printed as two tables of the same rows.
_AAPOR_SPLIT = [
    ["任务 campaign", "单位 unit", "样本 cases", "未结 open", "e", "e 来源 source"]
    + [n.upper() for n in RATE_NAMES[:6]],
    ["任务 campaign", "单位 unit"] + [n.upper() for n in RATE_NAMES[6:]],
]


@click.group()
def report() -> None:
    """Reports: rates with their intervals, and the weekly report (周报)."""


@contextmanager
def _clean_errors() -> Iterator[None]:
    """Expected failures as one clean line, also when this group is invoked on its own."""
    try:
        yield
    except CallbackError as exc:
        raise click.ClickException(str(exc)) from None


def _terminal_value(value: Any, kind: Kind) -> Any:
    # Shares as percentages with one decimal: numbers, so the table right-aligns them.
    if kind in ("pct", "pp") and value is not None:
        return round(value * 100, 1)
    if kind == "num" and value is not None:
        return round(value, 3)
    return value


def _print_table(
    title: str, columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Any]],
    only: Sequence[str] | None = None,
) -> None:  # fmt: skip
    keep = [i for i, (name, _) in enumerate(columns) if only is None or name in only]
    headers = [columns[i][0] + (" %" if columns[i][1] in ("pct", "pp") else "") for i in keep]
    click.echo(title)
    if not rows:
        click.echo("  (none)\n")
        return
    body = [[_terminal_value(row[i], columns[i][1]) for i in keep] for row in rows]
    click.echo(table(headers, body) + "\n")


@report.command()
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="unit",
    show_default=True,
    help="Group the completed interviews by unit, town, item, channel or report week.",
)
@click.option(
    "--campaign",
    "campaigns",
    multiple=True,
    metavar="NAME",
    help="A campaign's name or id; repeat for several. Default: every campaign past its draft.",
)
@click.option(
    "--e",
    "e",
    type=click.FloatRange(0.0, 1.0),
    help="The share of unknown-eligibility cases taken as eligible for RR3, RR4, REF2 and CON2."
    " Default: estimated from each campaign's own dispositions.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="The confidence level of every interval.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every figure to this CSV file, one measure a row (UTF-8 with BOM).",
)
@click.option(
    "--xlsx",
    "xlsx_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the tables to this XLSX workbook, with a chart.",
)
@pass_app
def rates(
    app: AppContext,
    by: str,
    campaigns: tuple[str, ...],
    e: float | None,
    confidence: float,
    as_json: bool,
    csv_file: Path | None,
    xlsx_file: Path | None,
) -> None:
    """Print 实现率 and 满意率 by group, the weighted district estimate, AAPOR and hotline rates.

    \b
    Examples:
      callback report rates --campaign 2018-summer
      callback report rates --by town --campaign 2018-summer --xlsx rates.xlsx
      callback report rates --by week --json
    """
    with _clean_errors():
        result = rates_report(
            app.database(), by, campaigns or None, e=e, confidence=confidence,
            timezone=app.settings.timezone,
        )  # fmt: skip
    if csv_file is not None:
        write_rates_csv(result, csv_file)
        click.echo(f"wrote {csv_file}", err=True)
    if xlsx_file is not None:
        write_rates_xlsx(result, xlsx_file)
        click.echo(f"wrote {xlsx_file}", err=True)
    if as_json:
        echo_json(dataclasses.asdict(result))
        return
    tables = rates_tables(result)
    for title, (columns, rows) in tables.items():
        if title == "AAPOR":
            for part in _AAPOR_SPLIT:
                _print_table("AAPOR outcome rates", columns, rows, part)
        else:
            _print_table(title, columns, rows)
    for note in result.notes:
        click.echo(f"note: {note}")


@report.command()
@click.option(
    "--week-of",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="Report the week (Thursday to Wednesday, local time) containing this date."
    " Default: the week that ended last Wednesday.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="The folder the workbook and the page are written to.",
)
@pass_app
def weekly(app: AppContext, week_of: datetime | None, out_dir: Path) -> None:
    """Write the weekly report (周报) as an XLSX workbook and an HTML page.

    \b
    Examples:
      callback report weekly                       the week that ended last Wednesday
      callback report weekly --week-of 2018-07-12 --out reports/
    """
    with _clean_errors():
        paths = weekly_report(
            app.database(), week_of.date() if week_of else None, out_dir, app.now(),
            timezone=app.settings.timezone,
        )  # fmt: skip
    for path in paths:
        click.echo(str(path))
