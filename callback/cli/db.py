"""``callback init`` and ``callback db``: create and upgrade the database."""

from __future__ import annotations

import click

from callback import migrate
from callback.cli.context import AppContext, pass_app


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the database, or upgrade it to this version of callback.

    \b
    The default is ./callback.db (SQLite). For PostgreSQL:
      callback --database postgresql://callback@localhost/callback init
    """
    engine = app.engine
    before = migrate.current(engine)
    migrate.upgrade(engine)
    after = migrate.current(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before is None:
        click.echo(f"Created the callback database at {where} (revision {after}).")
    elif before != after:
        click.echo(f"Upgraded {where} from revision {before} to {after}.")
    else:
        click.echo(f"{where} is up to date (revision {after}).")


@click.group()
def db() -> None:
    """Inspect and migrate the database schema."""


@db.command()
@click.argument("revision", default="head")
@pass_app
def upgrade(app: AppContext, revision: str) -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    migrate.upgrade(app.engine, revision)
    click.echo(f"At revision {migrate.current(app.engine)}.")


@db.command()
@click.argument("revision")
@pass_app
def downgrade(app: AppContext, revision: str) -> None:
    """Downgrade the schema to REVISION ("base" removes every table callback made)."""
    migrate.downgrade(app.engine, revision)
    click.echo(f"At revision {migrate.current(app.engine) or 'base'}.")


@db.command()
@pass_app
def current(app: AppContext) -> None:
    """Print the database's schema revision and the newest one this callback knows."""
    revision = migrate.current(app.engine)
    head = migrate.head()
    state = "up to date" if revision == head else "needs `callback db upgrade`"
    if revision is None:
        state = "not initialised: run `callback init`"
    click.echo(f"current: {revision or 'none'}\nhead: {head}\n{state}")
