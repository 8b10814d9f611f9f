"""``callback corrections``: review, apply, reject, revert and add corrections of the frame."""

from __future__ import annotations

from dataclasses import asdict

import click

from callback import corrections as core
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.models import CorrectionStatus

STATUSES = [s.value for s in CorrectionStatus]


@click.group()
def corrections() -> None:
    """Corrections of the frame (信息更正): what calls and the office learnt, with review."""


@corrections.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True,
              help="Only corrections in this status (repeatable).")  # fmt: skip
@click.option("--campaign", help="Only corrections from calls of this campaign (its name).")
@click.option("--unit", help="Only corrections of cases of this unit (its name).")
@click.option("--case", "case_no", help="Only corrections of this case number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(
    app: AppContext,
    status: tuple[str, ...],
    campaign: str | None,
    unit: str | None,
    case_no: str | None,
    as_json: bool,
) -> None:
    """List corrections, oldest first, with names and numbers masked."""
    found = core.list_corrections(app.database(), status, campaign, unit, case_no)
    if as_json:
        echo_json([asdict(c) for c in found])
        return
    tz = app.settings.tz
    rows = [
        (c.id, c.case_no, c.unit, c.kind, c.proposed, c.status, c.proposed_by,
         c.proposed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), c.attempt_id,
         c.decided_by or "")
        for c in found
    ]  # fmt: skip
    headers = ["id", "case", "unit", "kind", "proposed", "status", "by", "at", "call", "decided"]
    click.echo(table(headers, rows))


@corrections.command()
@click.argument("ids", nargs=-1, type=int)
@click.option(
    "--without-review",
    is_flag=True,
    help="Apply every pending correction of campaigns that do not ask for review.",
)
@click.option("--value", help="The fact to apply, when the answer did not say it or was wrong.")
@click.option(
    "--as",
    "as_kind",
    type=click.Choice(["unit", "item", "contact"]),
    help="Apply a 'case' correction (not my case) as this fact; needs --value.",
)
@click.option("--note", help="Why, for the audit log.")
@click.option("--create-unit/--no-create-unit", default=True, show_default=True,
              help="Create a unit the correction names that is not in the frame yet.")  # fmt: skip
@pass_app
def apply(
    app: AppContext,
    ids: tuple[int, ...],
    without_review: bool,
    value: str | None,
    as_kind: str | None,
    note: str | None,
    create_unit: bool,
) -> None:
    """Apply pending corrections IDS to the frame (a supervisor's review), or with
    --without-review every pending one that no campaign asked to review.

    \b
    Examples:
      callback corrections apply 12 13
      callback corrections apply 14 --value 区市场监管局 --note "checked with the unit"
      callback corrections apply 15 --as item --value 食品经营许可
      callback corrections apply --without-review
    """
    if without_review == bool(ids):
        raise click.UsageError("give correction ids, or --without-review (not both)")
    settings, engine, now = app.settings, app.database(), app.now()
    if without_review:
        if value or as_kind:
            raise click.UsageError("--value and --as apply to one correction at a time")
        result = core.apply_pending(engine, now, settings.actor, settings.default_area_code)
        click.echo(f"{len(result.applied)} applied, {len(result.waiting)} left for a person.")
        for correction_id, why in result.waiting:
            click.echo(f"  {correction_id}: {why}", err=True)
        return
    if (value or as_kind) and len(ids) > 1:
        raise click.UsageError("--value and --as apply to one correction at a time")
    for correction_id in ids:
        core.apply(
            engine, correction_id, settings.actor, now, note, value=value, as_kind=as_kind,
            create_unit=create_unit, area_code=settings.default_area_code,
        )  # fmt: skip
        click.echo(f"correction {correction_id} applied.")


@corrections.command()
@click.argument("correction_id", type=int)
@click.option("--note", required=True, help="Why the correction is wrong, for the audit log.")
@pass_app
def reject(app: AppContext, correction_id: int, note: str) -> None:
    """Reject a pending correction: the frame stays as it is."""
    core.reject(app.database(), correction_id, app.settings.actor, app.now(), note)
    click.echo(f"correction {correction_id} rejected.")


@corrections.command()
@click.argument("correction_id", type=int)
@click.option("--note", required=True, help="Why it is undone, for the audit log.")
@pass_app
def revert(app: AppContext, correction_id: int, note: str) -> None:
    """Undo an applied correction: the case's facts and numbers go back to what they were."""
    core.revert(app.database(), correction_id, app.settings.actor, app.now(), note)
    click.echo(f"correction {correction_id} reverted.")


@corrections.command()
@click.argument("case_no")
@click.option("--phone", help="A new number for the applicant, as typed.")
@click.option("--replaces", help="With --phone: the number on file it replaces (marked wrong).")
@click.option("--contact", help="The case's real contact person.")
@click.option("--unit", help="The unit that really handled the case.")
@click.option("--item", help="The item the case really was.")
@click.option("--item-code", help="With --item: the item's code.")
@click.option("--wrong-number", help="A number on file that does not reach the applicant.")
@click.option(
    "--attempt",
    "attempt_id",
    type=int,
    help="The call attempt that taught it (its campaign may ask for review).",
)
@click.option("--note", help="Why, for the audit log.")
@pass_app
def add(
    app: AppContext,
    case_no: str,
    phone: str | None,
    replaces: str | None,
    contact: str | None,
    unit: str | None,
    item: str | None,
    item_code: str | None,
    wrong_number: str | None,
    attempt_id: int | None,
    note: str | None,
) -> None:
    """Correct a fact of case CASE_NO (an agent's or the office's edit); it is applied at once
    unless it comes from a call of a campaign that asks for review.

    \b
    Examples:
      callback corrections add C0012 --phone 13912345671 --replaces 13587654321
      callback corrections add C0012 --contact 王五 --attempt 345
      callback corrections add C0012 --unit 区市场监管局 --note "per the unit's letter"
    """
    facts = (("phone", phone), ("contact", contact), ("unit", unit), ("item", item),
             ("wrong_number", wrong_number))  # fmt: skip
    given = {k: v for k, v in facts if v is not None}
    if len(given) != 1:
        raise click.UsageError(
            "give exactly one of --phone, --contact, --unit, --item, --wrong-number"
        )
    if replaces is not None and phone is None:
        raise click.UsageError("--replaces goes with --phone")
    if item_code is not None and item is None:
        raise click.UsageError("--item-code goes with --item")
    ((kind, value),) = given.items()
    settings = app.settings
    decision = core.propose(
        app.database(), case_no, kind, value, settings.actor, app.now(), attempt_id=attempt_id,
        replaces=replaces, item_code=item_code, note=note, area_code=settings.default_area_code,
    )  # fmt: skip
    click.echo(f"correction {decision.correction_id} {decision.status}.")
