"""``callback agent`` (the terminal workstation) and ``callback agents`` (who works what)."""

from __future__ import annotations

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import agents as agents_module
from callback.claims import agent_scope
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.errors import CallbackError
from callback.models import Campaign
from callback.models import table as model_table
from callback.workstation import Workstation, agent_work


class ClickTerminal:
    """The workstation's keyboard and screen: single keys, lines, text."""

    def key(self, prompt: str, keys: str) -> str:
        click.echo(prompt)
        while True:
            char = click.getchar()
            if char == "":
                raise EOFError  # the input ended (a pipe, a test)
            if char in ("\n", "\r\n"):
                char = "\r"
            if char == "\x03":
                raise KeyboardInterrupt
            if char.lower() in keys:
                return char.lower()

    def line(self, prompt: str) -> str:
        return str(click.prompt(prompt, default="", show_default=False, prompt_suffix=""))

    def say(self, text: str) -> None:
        click.echo(text)


@click.command()
@click.option(
    "--unit",
    "units",
    multiple=True,
    help="Work only this unit's queue (repeatable); default: every unit you work for.",
)
@click.option(
    "--campaign", "campaigns", multiple=True, help="Work only this campaign (repeatable)."
)
@pass_app
def agent(app: AppContext, units: tuple[str, ...], campaigns: tuple[str, ...]) -> None:
    """Work your callback queues: claim a case, dial it by hand, walk the script, record.

    \b
    You are the --actor (default: your login), registered with `callback agents add`.
    Keys: d dial, s skip, q quit; after dialling a for answered or the outcome's key;
    in the script the option's key, r refused, h hung up, p appointment. Ctrl-C quits and
    releases the case you hold.
    """
    engine = app.database()
    login = app.settings.actor
    agents_module.get_agent(engine, login)  # says how to register an unknown agent
    wanted = None
    if units:
        wanted = frozenset(agents_module.unit_ids(engine, units).values())
        if wanted - (agent_scope(engine, login).units or frozenset()):
            raise CallbackError("you do not work for every unit given to --unit")
    campaign_ids = None
    if campaigns:
        campaign_ids = frozenset(_campaign_ids(engine, campaigns))

    scope = agent_work(engine, login, wanted, campaign_ids)
    scope()  # an inactive agent is told before the workstation opens
    station = Workstation(engine, login, scope, ClickTerminal(), app.settings.tz, app.now)
    try:
        worked = station.run()
    except (KeyboardInterrupt, EOFError):
        click.echo("已退出。", err=True)
        return
    click.echo(f"本次处理 {worked} 个回访对象。")


def _campaign_ids(engine: Engine, names: tuple[str, ...]) -> list[int]:
    campaigns_t = model_table(Campaign)
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(campaigns_t.c.name, campaigns_t.c.id).where(campaigns_t.c.name.in_(names))
            ).all()
        )
    missing = [n for n in names if n not in found]
    if missing:
        raise CallbackError(f"no campaign named {', '.join(missing)}")
    return [found[n] for n in names]


@click.group(name="agents")
def agents_group() -> None:
    """Callback agents and the units whose queues they work."""


@agents_group.command(name="add")
@click.argument("login")
@click.option("--unit", "units", multiple=True, required=True, help="A unit they work for.")
@click.option("--name", help="The agent's name, for reports.")
@pass_app
def add(app: AppContext, login: str, units: tuple[str, ...], name: str | None) -> None:
    """Register LOGIN (or change their units) as an agent for the given units."""
    info = agents_module.save_agent(app.database(), login, units, app.settings.actor, name)
    click.echo(f"{info.login} works for {'、'.join(info.units)}.")
    if not info.active:
        click.echo(
            f"{info.login} is inactive: `callback agents activate {info.login} --reason ...` "
            "lets them work again."
        )


@agents_group.command(name="deactivate")
@click.argument("login")
@click.option("--reason", required=True, help="Why, for the audit log (e.g. left the team).")
@pass_app
def deactivate(app: AppContext, login: str, reason: str) -> None:
    """Stop LOGIN working any queue; their appointments go to colleagues.

    A call they have in hand can still be recorded; their open workstation stops before the
    next case. Kept, with their history, for the reports.
    """
    done = agents_module.deactivate_agent(
        app.database(), login, app.settings.actor, app.now(), reason
    )
    click.echo(f"{login} deactivated.")
    if done.appointments_freed:
        click.echo(
            f"{done.appointments_freed} appointment(s) booked with {login} are now for any "
            "agent of the unit, at the booked time."
        )
    if done.holding:
        click.echo(
            f"{login} holds {done.holding} case(s) now: theirs to record until the lease runs "
            "out, then back in the queue."
        )


@agents_group.command(name="activate")
@click.argument("login")
@click.option("--reason", required=True, help="Why, for the audit log.")
@pass_app
def activate(app: AppContext, login: str, reason: str) -> None:
    """Let an inactive LOGIN work their units' queues again."""
    agents_module.activate_agent(app.database(), login, app.settings.actor, app.now(), reason)
    click.echo(f"{login} is active again.")


@agents_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List agents and their units."""
    found = agents_module.list_agents(app.database())
    if as_json:
        echo_json([info.__dict__ for info in found])
        return
    click.echo(table(["login", "name", "active", "units"],
                     [(a.login, a.name or "", "yes" if a.active else "no", "、".join(a.units))
                      for a in found]))  # fmt: skip
