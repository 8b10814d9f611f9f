"""What every command needs: the settings and a database engine, both made on first use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from sqlalchemy.engine import Engine

from callback.config import Settings, load_settings
from callback.db import create_engine
from callback.migrate import require_current
from callback.models import utcnow


class AppContext:
    def __init__(
        self, options: dict[str, Any], config_file: str | None, now: datetime | None = None
    ) -> None:
        self._options = options
        self._config_file = config_file
        self._now = now
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    def override(self, **options: Any) -> None:
        """Let a command's own options take precedence, before the settings are first read."""
        if self._settings is not None:
            raise RuntimeError("settings were read before a command overrode them")
        self._options.update({k: v for k, v in options.items() if v is not None})

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._options, config_file=self._config_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        """The engine, without checking the schema (for init and db commands)."""
        if self._engine is None:
            self._engine = create_engine(self.settings.database_url)
        return self._engine

    def database(self) -> Engine:
        """The engine of a database that is at the newest schema revision."""
        require_current(self.engine)
        return self.engine

    @property
    def fixed_now(self) -> datetime | None:
        """The --now given, if any."""
        return self._now

    def now(self) -> datetime:
        """The time commands act at: the clock, or --now (local time) for rehearsals."""
        if self._now is None:
            return utcnow()
        return self._now.replace(tzinfo=self.settings.tz) if self._now.tzinfo is None else self._now

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(AppContext)
