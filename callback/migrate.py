"""Create, upgrade and inspect the database schema through Alembic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from callback.errors import DatabaseError


def script_location() -> str:
    """Return the Alembic script directory: inside the wheel, or alembic/ of a checkout."""
    spec = importlib.util.find_spec("callback.migrations")
    if spec is not None and spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    checkout = Path(__file__).resolve().parent.parent / "alembic"
    if (checkout / "env.py").is_file():
        return str(checkout)
    raise DatabaseError("the Alembic migrations are missing from this installation of callback")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location())
    # Percent signs in passwords would be read as interpolation by ConfigParser.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def _run(engine: Engine, action: str, *args: object) -> None:
    config = alembic_config(engine)
    # Not engine.begin(): env.py turns SQLite's foreign keys off before it begins the
    # transaction, and a PRAGMA inside one does nothing.
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, *args)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` in one transaction (creating it on an empty database)."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)


def check(engine: Engine) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    _run(engine, "check")


def head() -> str:
    script = ScriptDirectory(script_location())
    return str(script.get_current_head())


def current(engine: Engine) -> str | None:
    """Return the database's revision, or None for a database that was never initialised."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    """Raise a clear error unless the database is at the newest revision."""
    try:
        revision = current(engine)
    except Exception as exc:  # any driver error here means we cannot reach the database
        raise DatabaseError(f"cannot open the database {engine.url!r}: {exc}") from None
    if revision is None:
        raise DatabaseError(f"{engine.url!r} is not a callback database yet: run `callback init`")
    if revision != head():
        raise DatabaseError(
            f"the database is at revision {revision}, this callback needs {head()}: "
            "run `callback db upgrade`"
        )
