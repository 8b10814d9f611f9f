"""``callback demo``: the main job end to end, on SQLite with the simulated dialer."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import click

from callback.cli.output import table
from callback.demo import CAMPAIGN, DemoOptions, DemoResult, Progress, UnitLine, run_demo
from callback.rates import Proportion
from callback.report_render import interval


@click.command()
@click.option(
    "--dir",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="The folder the demo works in; it is emptied first if an earlier demo made it.",
)
@click.option(
    "--cases",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="How many cases the campaign calls (the district's export holds twice as many).",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed: the same seed, the same demo."
)
@click.option(
    "--lines",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Calls the simulated call centre places at once.",
)
def demo(directory: Path, cases: int, seed: int, lines: int) -> None:
    """Run the main job end to end on a synthetic district, in a folder of its own.

    Writes a district's service cases handled June to September 2018 (a few rows messy),
    imports them into DIR/callback.db (SQLite), samples campaign 2018-summer, has the
    simulated dialer call it to the end on a virtual clock from Monday 8 October 2018
    (after the National Day holiday), then prints each unit's progress and rates and writes
    the weekly reports and the corrected frame into DIR. It always uses DIR/callback.db,
    whatever --database says.

    \b
    Examples:
      callback demo
      callback demo --dir /tmp/demo --cases 300 --seed 7
    """
    started = time.perf_counter()
    result = run_demo(
        DemoOptions(directory, cases=cases, seed=seed, lines=lines), say=click.echo,
        progress=_progress,
    )  # fmt: skip
    click.echo("")
    _print_units(result)
    click.echo("")
    _print_district(result)
    click.echo("")
    _print_files(result)
    click.echo("")
    _print_next(result)
    seconds = time.perf_counter() - started
    laps = ", ".join(f"{name} {s:.1f}" for name, s in result.seconds.items())
    click.echo(f"\nDone in {seconds:.1f} s ({laps}).", err=True)


def _progress(p: Progress) -> None:
    click.echo(
        f"  {p.at:%Y-%m-%d %a %H:%M}  {p.attempts:>6,} calls  {p.finished:>6,} of"
        f" {p.sampled:,} cases finished  ({p.seconds:.1f} s)",
        err=True,
    )


def _rate(p: Proportion | None) -> float | None:
    # A number, so that the table right-aligns it; the interval goes in a column of its own.
    return None if p is None or p.estimate is None else round(p.estimate * 100, 1)


def _interval(p: Proportion | None) -> str:
    if p is None or p.low is None or p.high is None:
        return ""
    return f"{p.low * 100:.1f}–{p.high * 100:.1f}"


def _row(line: UnitLine) -> list[object]:
    rr1 = None if line.response_rate is None else round(line.response_rate * 100, 1)
    return [
        line.unit, line.sampled, line.finished, line.attempts, line.completes,
        _rate(line.realisation), _interval(line.realisation),
        _rate(line.satisfaction), _interval(line.satisfaction), rr1,
    ]  # fmt: skip


UNIT_HEADERS = [
    "单位 unit", "样本 sampled", "结束 finished", "拨打 calls", "完成 completes",
    "实现率 %", "95% CI", "满意率 %", "95% CI", "应答率 RR1 %",
]  # fmt: skip


def _print_units(result: DemoResult) -> None:
    click.echo(f"Campaign {CAMPAIGN}, each unit's queue (实现率 and 满意率 of its completes):")
    click.echo(table(UNIT_HEADERS, [*map(_row, result.units), _row(result.total)]))


def _print_district(result: DemoResult) -> None:
    for d in result.district_estimates:
        for name, w in (("实现率", d.rates.realisation), ("满意率", d.rates.satisfaction)):
            if w.estimate is None:
                continue
            click.echo(
                f"District {name}, weighted by the design: {w.estimate * 100:.1f}%"
                f" (95% CI {interval(w)}; unweighted {interval(w.unweighted)})"
            )
    if result.open_problems:
        click.echo(f"Problems citizens raised, open for their units: {result.open_problems:,}.")


def _print_files(result: DemoResult) -> None:
    click.echo("Written:")
    for path in (*result.weekly, result.export, result.imported.rejects_path):
        if path:
            click.echo(f"  {_shown(Path(path))}")


def _print_next(result: DemoResult) -> None:
    base = f"callback --database {shlex.quote('sqlite:///' + _shown(result.database))}"
    busiest = shlex.quote(max(result.units, key=lambda x: x.sampled).unit)
    export = shlex.quote(_shown(result.directory / "frame.xlsx"))
    click.echo("Try next:")
    for command, why in (
        (f"report rates --campaign {CAMPAIGN}", "every rate, and the AAPOR table"),
        ("report rates --by week", "the same by report week"),
        (f"queue status --campaign {CAMPAIGN}", "each unit's queue"),
        ("corrections list --status pending", "what calls said is wrong in the frame"),
        ("problems list", "what citizens raised, for their units"),
        (f"frame export --out {export}", "the corrected frame as a workbook"),
        (f"agents add demo --unit {busiest}", "then call cases by hand yourself:"),
        ("campaign create demo-manual --year 2018 --size 200 --seed 1", ""),
        ("campaign sample demo-manual", ""),
        ("--actor demo agent --campaign demo-manual", "the agent's terminal workstation"),
    ):
        click.echo(f"  {base} {command}" + (f"    # {why}" if why else ""))


def _shown(path: Path) -> str:
    """A path relative to the working folder when it is inside it, else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path(os.getcwd())))
    except ValueError:
        return str(absolute)
