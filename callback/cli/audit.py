"""``callback audit``: read the audit log, newest first, masked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta, tzinfo
from typing import Any

import click

from callback.audit_log import AuditLine, audit_entries, record_disclosure
from callback.calendar import local_midnight
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json


@click.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="From this local date.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="To this local date, inclusive.")
@click.option("--actor", help="Only changes made by this login (an agent, a dispatcher).")
@click.option(
    "--action", help="Only this action, or every one of a kind: dnc, agent, campaign.pause."
)
@click.option("--case", "case_no", help="Only changes of this case.")
@click.option("--limit", default=50, show_default=True, help="At most this many entries.")
@click.option("--full", is_flag=True, help="Show names and numbers whole instead of masked.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def audit(
    app: AppContext,
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    action: str | None,
    case_no: str | None,
    limit: int,
    full: bool,
    as_json: bool,
) -> None:
    """List changes from the audit log, newest first: who, when, what changed from what to
    what, why, and from which call (names and numbers masked unless --full).

    \b
    Examples:
      callback audit --actor wangli --since 2018-07-12
      callback audit --action dnc --full
      callback audit --case 330106201806010000001
    """
    tz = app.settings.tz
    engine = app.database()
    found = audit_entries(
        engine,
        since=local_midnight(since.date(), tz) if since else None,
        until=local_midnight(until.date() + timedelta(days=1), tz) if until else None,
        actor=actor,
        action=action,
        case_no=case_no,
        limit=limit,
        full=full,
    )
    if full:
        asked = {"since": since, "until": until, "actor": actor, "action": action,
                 "case": case_no, "entries": len(found)}  # fmt: skip
        record_disclosure(engine, app.settings.actor, "disclose.audit", app.now(),
                          {k: str(v) for k, v in asked.items() if v is not None},
                          "callback audit --full")  # fmt: skip
    if as_json:
        echo_json([asdict(line) for line in found])
        return
    print_audit(found, tz)
    if len(found) == limit:
        click.echo(f"(the newest {limit}; --limit shows more)", err=True)


def print_audit(lines: Sequence[AuditLine], tz: tzinfo, with_case: bool = True) -> None:
    """Each entry as a heading line, its reason, and what it changed (before → after)."""
    if not lines:
        click.echo("  (none)")
    for a in lines:
        about = f"  case {a.case_no}" if with_case and a.case_no else ""
        if with_case and not a.case_no and a.entity_id is not None:
            about = f"  {a.entity} {a.entity_id}"
        call = f"  (call {a.attempt_id})" if a.attempt_id else ""
        batch = f"  (import {a.batch_id})" if a.batch_id else ""
        click.echo(
            f"  {a.at.astimezone(tz):%Y-%m-%d %H:%M}  {a.actor}  {a.action}{about}{call}{batch}"
        )
        click.echo(f"      why: {a.reason}")
        for key, before, after in _changes(a.before, a.after):
            click.echo(f"      {key}: {before} → {after}")


def _changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """(key, before, after) of what an entry changed; every key when nothing differs."""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    keys = list(dict.fromkeys([*old, *new]))
    changed = [k for k in keys if old.get(k) != new.get(k)] or keys
    return [(k, _brief(old.get(k)), _brief(new.get(k))) for k in changed]


def _brief(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(
            f"{k}: {_brief(v) if isinstance(v, dict) else v}" for k, v in value.items()
        )
    return str(value)
