"""``callback problems``: what citizens raised in calls, and each unit's follow-up."""

from __future__ import annotations

from datetime import datetime

import click

from callback import problems as core
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table, width
from callback.models import ProblemStatus

STATUSES = [s.value for s in ProblemStatus]
#: Characters of a problem's text shown in the table; --json gives it whole (masked).
TEXT_WIDTH = 40


@click.group()
def problems() -> None:
    """Problems raised in calls (问题 / 意见建议): follow-up (整改) or explanation by the unit."""


@problems.command(name="list")
@click.option("--unit", help="Only problems of this unit (its name).")
@click.option("--status", type=click.Choice(STATUSES), multiple=True,
              help="Only problems in this status (repeatable).")  # fmt: skip
@click.option("--overdue", is_flag=True, help="Only open problems past their due date.")
@click.option("--case", "case_no", help="Only problems of this case number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(
    app: AppContext,
    unit: str | None,
    status: tuple[str, ...],
    overdue: bool,
    case_no: str | None,
    as_json: bool,
) -> None:
    """List problems, oldest first; citizens' names and numbers are masked, also in the text.

    \b
    Examples:
      callback problems list --unit 区民政局 --status open --status fixing
      callback problems list --overdue
    """
    today = app.now().astimezone(app.settings.tz).date()
    found = core.list_problems(
        app.database(), today, unit=unit, statuses=status, overdue=overdue, case_no=case_no
    )
    if as_json:
        echo_json([p.as_dict() for p in found])
        return
    rows = [
        (p.id, p.unit, p.case_no or "", p.applicant, p.category,
         p.status + (" (overdue)" if p.overdue else ""), p.owner or "",
         p.due_date.isoformat() if p.due_date else "", _short(p.text))
        for p in found
    ]  # fmt: skip
    headers = ["id", "unit", "case", "applicant", "category", "status", "owner", "due", "text"]
    click.echo(table(headers, rows))


@problems.command()
@click.argument("problem_id", type=int)
@click.option("--status", type=click.Choice(STATUSES), help="The new status.")
@click.option("--owner", help="Who in the unit follows it up.")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), help="Due date, YYYY-MM-DD.")
@click.option("--resolution", help="What was fixed or explained (needed to close it).")
@click.option("--note", help="Why, for the audit log.")
@pass_app
def update(
    app: AppContext,
    problem_id: int,
    status: str | None,
    owner: str | None,
    due: datetime | None,
    resolution: str | None,
    note: str | None,
) -> None:
    """Change a problem's status, owner, due date or resolution; the change is audited.

    \b
    Examples:
      callback problems update 7 --status fixing --owner 李科长 --due 2026-07-01
      callback problems update 7 --status fixed --resolution "窗口增设导办员"
    """
    now = app.now()
    view = core.update_problem(
        app.database(), problem_id, app.settings.actor, now, now.astimezone(app.settings.tz).date(),
        status=status, owner=owner, due_date=due.date() if due else None, resolution=resolution,
        note=note,
    )  # fmt: skip
    due_text = f", due {view.due_date}" if view.due_date else ""
    click.echo(f"problem {view.id}: {view.status}{due_text}.")


def _short(text: str) -> str:
    """The start of a text, cut to TEXT_WIDTH columns (a Chinese character takes two)."""
    text = " ".join(text.split())
    if width(text) <= TEXT_WIDTH:
        return text
    cut = ""
    for ch in text:
        if width(cut + ch) > TEXT_WIDTH - 1:
            break
        cut += ch
    return cut + "…"
