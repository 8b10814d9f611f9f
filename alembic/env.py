"""Alembic environment: migrations run on callback's own engine and metadata."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from callback.config import load_settings
from callback.db import create_engine, normalise_url
from callback.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations are frozen history: they spell out plain SQLAlchemy types instead of importing
    # callback's models, which change.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


#: Indexes created by migrations in a form the models cannot state for every database
#: (per-dialect expressions and partial indexes); autogenerate and `alembic check` skip them.
DATABASE_ONLY_INDEXES = frozenset(
    {f"ix_queue_items_claim_slot{k}" for k in range(4)}
    | {"ix_queue_items_appointments", "ix_queue_items_held"}
)


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "index" and name in DATABASE_ONLY_INDEXES)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        include_object=_include_object,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


if context.is_offline_mode():
    _configure(url=str(normalise_url(_url())), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        engine = create_engine(_url())
        try:
            with engine.connect() as connection:
                _run(connection)
                connection.commit()
        finally:
            engine.dispose()
