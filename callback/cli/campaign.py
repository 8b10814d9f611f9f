"""``callback campaign``: create a campaign, draw its sample, follow it, pause it, close it."""

from __future__ import annotations

import json
import secrets
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import click

from callback import campaign_states, campaigns
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.errors import ConfigError
from callback.queues import refresh, rules_from_json
from callback.sampling_design import (
    ALLOCATIONS,
    STRATUM_VARIABLES,
    Exclusions,
    SamplingDesign,
)
from callback.spotchecks import HotlineDesign


@click.group()
def campaign() -> None:
    """Campaigns (回访任务): a sampled frame, its script, dialer, rules and deadline."""


def _read_file(path: str, what: str) -> dict[str, Any]:
    """A JSON or TOML file of settings, or a clear error naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.lower().endswith(".toml") else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{path}: not valid {what}: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: {what} must be an object (a table)")
    return data


def _read_rules(path: str) -> dict[str, Any]:
    """A calling rules file, checked here so that a bad one is a usage error naming it."""
    data = _read_file(path, "calling rules")
    try:
        rules_from_json(data)  # the deadline is checked with the campaign
    except ConfigError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--rules") from None
    return data


def _deadline(app: AppContext, value: str | None) -> datetime | None:
    """A local date (the end of that day) or date and time, as an aware instant."""
    if value is None:
        return None
    try:
        if len(value) == 10:  # the whole day: calls end with its calling window anyway
            return datetime.combine(date.fromisoformat(value), time(23, 59), app.settings.tz)
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"not a date or time: {value!r} (use 2018-10-31 or '2018-10-31 17:00')",
            param_hint="--deadline",
        ) from None
    # An explicit offset (2018-10-31T17:00+08:00) is kept; a plain time is local.
    return at if at.tzinfo is not None else at.replace(tzinfo=app.settings.tz)


#: Options that build a design from the command line, so --design leaves no room for them.
_DESIGN_OPTIONS = (
    "year", "start", "end", "strata", "allocation", "size", "at_least", "margin", "confidence",
    "contact_gap_days", "one_per_phone", "calls_per_week", "seed",
)  # fmt: skip
#: Options of a case sample, meaningless for hotline spot checks.
_CASE_OPTIONS = (
    "strata", "allocation", "size", "at_least", "margin", "confidence", "contact_gap_days",
    "one_per_phone",
)  # fmt: skip


def _given(names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` typed on the command line (not left at their defaults)."""
    ctx = click.get_current_context()
    return [
        "/".join(param.opts + param.secondary_opts)
        for param in ctx.command.params
        if param.name in names
        and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE
    ]


@campaign.command()
@click.argument("name")
@click.option("--title", help="A title for reports, e.g. 2018年6-9月办事服务回访.")
@click.option("--hotlines", is_flag=True, help="Spot-check the units' hotlines, not cases.")
@click.option("--script", help="Survey script [service-callback; hotline-check with --hotlines].")
@click.option("--dialer", default="manual", show_default=True, help="Dialer plugin.")
@click.option("--year", type=int, help="Cases handled 1 June to 30 September of this year.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="Period start.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Period end (inclusive).")
@click.option(
    "--strata",
    default="unit",
    show_default=True,
    help=f"Comma-separated stratum variables from {', '.join(STRATUM_VARIABLES)}.",
)
@click.option(
    "--allocation", type=click.Choice(ALLOCATIONS), default="proportional", show_default=True
)
@click.option("--size", type=click.IntRange(1), help="Total sample size.")
@click.option("--at-least", type=click.IntRange(1), help="k of the at-least allocation.")
@click.option("--margin", type=float, help="Plan each unit's size for this margin of error.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--contact-gap-days", type=click.IntRange(0), default=30, show_default=True,
              help="Leave out numbers called in any campaign within this many days.")  # fmt: skip
@click.option("--one-per-phone/--every-case", default=True, show_default=True,
              help="One citizen (number) at most once per campaign.")  # fmt: skip
@click.option("--calls-per-week", type=click.IntRange(1), default=2, show_default=True,
              help="With --hotlines: spot checks per hotline per report week.")  # fmt: skip
@click.option("--seed", type=int, help="Random seed (default: a new one, printed and stored).")
@click.option("--design", "design_file", type=click.Path(exists=True, dir_okay=False),
              help="The whole sampling design, JSON or TOML (instead of options).")  # fmt: skip
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False),
              help="Calling rules as JSON or TOML (docs/calling_rules.md).")  # fmt: skip
@click.option("--deadline", metavar="'YYYY-MM-DD[ HH:MM]'", help="No call after this local time.")
@click.option("--review-corrections", is_flag=True,
              help="Hold corrections from calls for review instead of applying them.")  # fmt: skip
@pass_app
def create(
    app: AppContext,
    name: str,
    title: str | None,
    hotlines: bool,
    script: str | None,
    dialer: str,
    year: int | None,
    start: datetime | None,
    end: datetime | None,
    strata: str,
    allocation: str,
    size: int | None,
    at_least: int | None,
    margin: float | None,
    confidence: float,
    contact_gap_days: int,
    one_per_phone: bool,
    calls_per_week: int,
    seed: int | None,
    design_file: str | None,
    rules_file: str | None,
    deadline: str | None,
    review_corrections: bool,
) -> None:
    """Create campaign NAME as a draft; `callback campaign sample NAME` draws it.

    \b
    Examples:
      callback campaign create 2018-summer --year 2018 --size 2000 --strata unit,month \\
          --dialer simulated --deadline 2018-10-31
      callback campaign create 2018-hotlines --hotlines --from 2018-06-07 --to 2018-09-26
      callback campaign create 2018-units --design design.toml
    """
    design: campaigns.Design
    # An option the design ignores would be silently dropped: refuse it instead.
    if design_file is not None and (ignored := _given(_DESIGN_OPTIONS)):
        raise click.UsageError(f"--design gives the whole design: drop {', '.join(ignored)}")
    if hotlines and (ignored := _given(_CASE_OPTIONS)):
        raise click.UsageError(f"{', '.join(ignored)}: not for --hotlines spot checks")
    if not hotlines and (ignored := _given(("calls_per_week",))):
        raise click.UsageError("--calls-per-week is for --hotlines spot checks only")
    if design_file is not None:
        data = _read_file(design_file, "design")
        design = campaigns.load_design("hotlines" if hotlines else "cases", data)
    else:
        if year is not None and (start or end):
            raise click.UsageError("give --year or --from/--to, not both")
        if year is None and not (start and end):
            raise click.UsageError("give the period: --year, or --from and --to")
        first = date(year, 6, 1) if year is not None else start.date()  # type: ignore[union-attr]
        last = date(year, 9, 30) if year is not None else end.date()  # type: ignore[union-attr]
        seed = secrets.randbelow(2**31) if seed is None else seed
        if hotlines:
            design = HotlineDesign(first, last, seed, calls_per_week=calls_per_week)
        else:
            design = SamplingDesign(
                first, last, seed,
                strata=tuple(s.strip() for s in strata.split(",") if s.strip()),
                allocation=allocation, size=size, at_least=at_least, margin=margin,
                confidence=confidence,
                exclusions=Exclusions(contact_gap_days, one_per_phone),
            )  # fmt: skip
    rules = _read_rules(rules_file) if rules_file else None
    default_script = "hotline-check" if isinstance(design, HotlineDesign) else "service-callback"
    campaign_id = campaigns.create_campaign(
        app.database(), name, design,
        script=script or default_script, dialer=dialer, created_by=app.settings.actor,
        now=app.now(), title=title, rules=rules, deadline=_deadline(app, deadline),
        review_corrections=review_corrections,
    )  # fmt: skip
    click.echo(
        f"Created campaign {name} (id {campaign_id}), {design.period_start} to "
        f"{design.period_end}, seed {design.seed}. Next: callback campaign sample {name}"
    )


@campaign.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the campaigns, newest first, with their queue item counts."""
    found = campaigns.list_campaigns(app.database())
    if as_json:
        echo_json([_plain(c) for c in found])
        return
    rows = [
        (c.name, c.target, c.status, c.dialer, f"{c.period_start} – {c.period_end}",
         _local(app, c.deadline), c.items, c.open, c.finished)
        for c in found
    ]  # fmt: skip
    click.echo(
        table(
            [
                "campaign",
                "target",
                "status",
                "dialer",
                "period",
                "deadline",
                "items",
                "open",
                "finished",
            ],
            rows,
        )  # fmt: skip
    )


def _local(app: AppContext, at: datetime | None) -> str:
    return "" if at is None else f"{at.astimezone(app.settings.tz):%Y-%m-%d %H:%M}"


def _plain(summary: campaigns.CampaignSummary) -> dict[str, Any]:
    out = dict(vars(summary))
    out["queues"] = [vars(q) for q in summary.queues]
    return out


@campaign.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: AppContext, name: str, as_json: bool) -> None:
    """Show campaign NAME: its settings, the sample report, and each unit's queue."""
    c = campaigns.campaign_summary(app.database(), _ref(name))
    if as_json:
        echo_json(_plain(c))
        return
    click.echo(f"{c.name} (id {c.id}): {c.title or ''}".rstrip(": "))
    click.echo(f"  target {c.target}, status {c.status}, script {c.script}, dialer {c.dialer}")
    deadline = _local(app, c.deadline) or "none"
    click.echo(f"  period {c.period_start} to {c.period_end}, deadline {deadline}")
    click.echo(f"  created by {c.created_by} at {_local(app, c.created_at)}")
    if c.sampled_at:
        click.echo(f"  sampled at {_local(app, c.sampled_at)}")
    if c.closed_at:
        click.echo(f"  closed at {_local(app, c.closed_at)}")
    paused = campaign_states.last_pause(app.database(), c.id) if c.status == "paused" else None
    if paused is not None:
        click.echo(f"  paused at {_local(app, paused.at)} by {paused.actor}: {paused.reason}")
    if c.report:
        click.echo("")
        _print_report(c.report)
    if c.queues:
        click.echo("")
        rows = [(q.unit, q.items, q.open, q.finished) for q in c.queues]
        click.echo(table(["unit", "items", "open", "finished"], rows))


def _ref(name: str) -> int | str:
    """A campaign by name, or by id when given as #12."""
    return int(name[1:]) if name.startswith("#") and name[1:].isdigit() else name


def _print_report(report: dict[str, Any]) -> None:
    if report.get("target") == "hotlines":
        weeks = report.get("weeks", [])
        click.echo(
            f"Planned {report['planned']:,} spot checks of {report['hotlines']} hotlines over "
            f"{len(weeks)} report weeks ({report['calls_per_week']} per hotline per week)."
        )
    else:
        excluded = report.get("excluded", {})
        click.echo(
            f"Frame {report['frame']:,} cases; eligible {report['eligible']:,}; "
            f"sampled {report['sampled']:,} of {report['requested']:,} requested."
        )
        click.echo(
            "Excluded before the draw: "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in excluded.items())
        )
        strata = report.get("strata", [])
        if strata:
            shown = strata[:20]
            click.echo(
                table(["stratum", "N", "n"], [(s["stratum"], s["N"], s["n"]) for s in shown])
            )
            if len(strata) > len(shown):
                click.echo(f"… and {len(strata) - len(shown)} more strata (--json shows all)")
    for note in report.get("notes", []):
        click.echo(f"Note: {note}")


@campaign.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the sample report as JSON.")
@pass_app
def sample(app: AppContext, name: str, as_json: bool) -> None:
    """Draw campaign NAME's sample into its queues (once; the seed makes it reproducible)."""
    engine = app.database()
    now = app.now()
    report = campaigns.sample_campaign(engine, _ref(name), now)
    # Items are written unscheduled; work out when each is first due, so agents see them now.
    campaign_id = campaigns.campaign_summary(engine, _ref(name)).id
    refresh(engine, campaign_id, now)
    if as_json:
        echo_json(report)
        return
    _print_report(report)


@campaign.command()
@click.argument("name")
@click.option("--reason", help="Why, for the audit log.")
@pass_app
def close(app: AppContext, name: str, reason: str | None) -> None:
    """Close campaign NAME: nothing more is dialled for it; its items and answers stay."""
    campaign_states.close_campaign(
        app.database(), _ref(name), app.settings.actor, app.now(), reason or "closed"
    )
    click.echo(f"Closed campaign {name}.")


@campaign.command()
@click.argument("name")
@click.option("--deadline", metavar="'YYYY-MM-DD[ HH:MM]'", help="A new deadline (local time).")
@click.option("--no-deadline", is_flag=True, help="Remove the deadline.")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False),
              help="New calling rules, JSON or TOML (docs/calling_rules.md).")  # fmt: skip
@click.option("--default-rules", is_flag=True, help="Go back to the default calling rules.")
@click.option("--title", help="A new title for reports.")
@click.option("--reason", required=True, help="Why, for the audit log.")
@pass_app
def edit(
    app: AppContext,
    name: str,
    deadline: str | None,
    no_deadline: bool,
    rules_file: str | None,
    default_rules: bool,
    title: str | None,
    reason: str,
) -> None:
    """Change campaign NAME's deadline, calling rules or title (audited).

    The sample stays as drawn; the due times of its items are worked out again at once.

    \b
    Example:
      callback campaign edit 2018-summer --deadline 2018-11-15 --reason "区里延期到11月15日"
    """
    if deadline and no_deadline:
        raise click.UsageError("give --deadline or --no-deadline, not both")
    if rules_file and default_rules:
        raise click.UsageError("give --rules or --default-rules, not both")
    changes: dict[str, Any] = {}
    if deadline or no_deadline:
        changes["deadline"] = None if no_deadline else _deadline(app, deadline)
    if rules_file or default_rules:
        changes["rules"] = _read_rules(rules_file) if rules_file else None
    if title is not None:
        changes["title"] = title
    if not changes:
        raise click.UsageError("nothing to change: give --deadline, --rules or --title")
    changed = campaign_states.edit_campaign(
        app.database(), _ref(name), app.settings.actor, app.now(), reason, **changes
    )
    click.echo(f"Campaign {name}: {', '.join(changed)} changed." if changed else "Nothing changed.")


@campaign.command()
@click.argument("name")
@click.option("--reason", required=True, help="Why, for the audit log and `campaign show`.")
@pass_app
def pause(app: AppContext, name: str, reason: str) -> None:
    """Stop dialling campaign NAME until `campaign resume`; calls already up finish.

    Agents and dispatchers, in every process, take no new case of it within seconds.
    Nothing in its queues changes: resuming takes up where it stopped.
    """
    campaign_states.pause_campaign(
        app.database(), _ref(name), app.settings.actor, app.now(), reason
    )
    click.echo(
        f"Paused campaign {name}: nothing is dialled until `callback campaign resume {name}`."
    )


@campaign.command()
@click.argument("name")
@click.option("--reason", help="Why, for the audit log.")
@pass_app
def resume(app: AppContext, name: str, reason: str | None) -> None:
    """Dial paused campaign NAME again (within its window, before its deadline)."""
    campaign_states.resume_campaign(
        app.database(), _ref(name), app.settings.actor, app.now(), reason or "resumed"
    )
    click.echo(f"Resumed campaign {name}.")
