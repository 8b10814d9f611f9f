"""Settings: command-line option > CALLBACK_* environment > callback.toml > default."""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callback import calendar
from callback.errors import ConfigError

ENV_PREFIX = "CALLBACK_"
CONFIG_FILE = "callback.toml"


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # getuser raises OSError or KeyError in a container without a passwd entry
        return "unknown"


@dataclass(frozen=True)
class Settings:
    """Every setting of the core; plugins read their own tables from ``sections``."""

    #: Any SQLAlchemy URL; ``postgresql://`` means PostgreSQL through psycopg 3.
    database_url: str = "sqlite:///callback.db"
    #: Where calling windows, holidays and report weeks are evaluated, and what naive times in
    #: imported files mean.
    timezone: str = "Asia/Shanghai"
    #: Prefixed to a landline typed without its area code (Hangzhou by default).
    default_area_code: str = "0571"
    #: Who is recorded in the audit log for changes made from this process.
    actor: str = field(default_factory=_default_actor)
    #: Tables of callback.toml that belong to plugins or later features, e.g. ``[dialers.twilio]``.
    sections: Mapping[str, Any] = field(default_factory=dict)
    #: Where each setting came from ("default", "callback.toml", "CALLBACK_TIMEZONE", "option").
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def section(self, dotted: str) -> Mapping[str, Any]:
        """Return the table ``[a.b]`` of callback.toml as ``section("a.b")``, or an empty one."""
        node: Any = self.sections
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, Mapping) else {}


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("sections", "origins")}


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def find_config_file(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    """Return the file to read: ``--config``, then ``CALLBACK_CONFIG``, then ./callback.toml."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        return path
    if environ.get(ENV_PREFIX + "CONFIG"):
        path = Path(environ[ENV_PREFIX + "CONFIG"])
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found (from CALLBACK_CONFIG)")
        return path
    path = Path.cwd() / CONFIG_FILE
    return path if path.is_file() else None


def load_settings(
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build the settings from their four sources, highest first.

    ``options`` holds command-line values; ``None`` values are treated as not given.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {name: "default" for name in _FIELDS}
    sections: dict[str, Any] = {}

    path = find_config_file(config_file, environ)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for key, value in data.items():
            if isinstance(value, dict):
                sections[key] = value
            elif key in _FIELDS:
                values[key] = _coerce(key, value, str(path))
                origins[key] = str(path)
            else:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")

    for key in _FIELDS:
        name = env_name(key)
        if environ.get(name, "") != "":
            values[key] = _coerce(key, environ[name], name)
            origins[key] = name

    for key, value in (options or {}).items():
        if value is not None:
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r}")
            values[key] = _coerce(key, value, "option")
            origins[key] = "option"

    settings = Settings(**values, sections=sections, origins=origins)
    _validate(settings)
    # The working-day calendar is the process's, like the plugins: every command, the
    # dispatcher and the web server load their settings here, so all see the same years.
    calendar.install(settings.section("calendar"), str(path) if path else "callback.toml")
    return settings


def _coerce(key: str, value: Any, origin: str) -> Any:
    if not isinstance(value, str):
        raise ConfigError(f"{origin}: {key} must be a string, not {type(value).__name__}")
    return value.strip()


_AREA_CODE = re.compile(r"0\d{2,3}")


def _validate(settings: Settings) -> None:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        origin = settings.origins.get("timezone", "")
        raise ConfigError(f"{origin}: unknown time zone {settings.timezone!r}") from None
    if not _AREA_CODE.fullmatch(settings.default_area_code):
        origin = settings.origins.get("default_area_code", "")
        raise ConfigError(
            f"{origin}: default_area_code must be a Chinese area code with its leading 0, "
            f"such as 0571, not {settings.default_area_code!r}"
        )
    if not settings.database_url:
        raise ConfigError("database_url must not be empty")
