"""Running the app under uvicorn: ``serve`` for ``callback serve``, ``app_factory`` per worker.

uvicorn starts each worker process afresh (spawn), so the settings ``callback serve`` resolved
from its options reach the workers through the environment, where ``load_settings`` reads them
with the same precedence. So does the root ``--now`` of a rehearsal: every worker's clock starts
where ``callback run --now`` starts its own, and runs on at the wall clock's pace.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callback.config import Settings, env_name, load_settings
from callback.errors import ConfigError
from callback.models import utcnow
from callback.web.settings import PUBLIC_BASE_URL_ENV, WebSettings

#: Where the app's database work runs in the workers ("inline" or "threads"); see Database.
DB_MODE_ENV = "CALLBACK_WEB_DB_MODE"
#: The root --now (ISO 8601, with its offset) and the wall clock's time when ``serve`` read it.
NOW_ENV = "CALLBACK_WEB_NOW"
NOW_SINCE_ENV = "CALLBACK_WEB_NOW_SINCE"
FACTORY = "callback.web.server:app_factory"


def app_factory() -> Any:
    """Build the app in a uvicorn worker from the environment ``serve`` prepared."""
    from callback.web.app import create_app

    settings = load_settings()
    web = WebSettings.from_settings(settings, os.environ)
    return create_app(
        settings,
        web=web,
        db_mode=os.environ.get(DB_MODE_ENV) or None,
        clock=worker_clock(os.environ),
    )


def worker_clock(
    environ: Mapping[str, str], wall: Callable[[], datetime] = utcnow
) -> Callable[[], datetime]:
    """The clock of a worker: the wall clock, or the rehearsal's that ``serve`` started.

    The workers are separate processes, so they share the moment the rehearsal clock started
    as a wall-clock time (``NOW_SINCE_ENV``) rather than each starting it when it comes up:
    then every worker reads the same time at the same moment.
    """
    if not environ.get(NOW_ENV):
        return wall
    try:
        start, since = (_instant(environ.get(name, "")) for name in (NOW_ENV, NOW_SINCE_ENV))
    except ValueError:
        raise ConfigError(
            f"{NOW_ENV}={environ.get(NOW_ENV)!r} and {NOW_SINCE_ENV}="
            f"{environ.get(NOW_SINCE_ENV)!r}: expected two ISO 8601 times with a UTC offset "
            "(callback serve --now sets them)"
        ) from None

    def clock() -> datetime:
        return start + (wall() - since)

    return clock


def _instant(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class ServeOptions:
    """How ``callback serve`` runs uvicorn."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    access_log: bool = False
    db_mode: str | None = None
    #: uvicorn's own log level ("warning", "info", …).
    log_level: str = "info"


def worker_environment(
    settings: Settings,
    web: WebSettings,
    config_file: str | None,
    db_mode: str | None,
    now: datetime | None = None,
    since: datetime | None = None,
) -> dict[str, str]:
    """The variables that make a worker see what the command saw: ``load_settings``, and
    ``worker_clock`` for a rehearsal at ``now`` (timezone-aware) read at wall time ``since``."""
    env = {env_name(name): str(getattr(settings, name)) for name in ("database_url", "actor")}
    env[env_name("timezone")] = settings.timezone
    if config_file:
        env["CALLBACK_CONFIG"] = os.path.abspath(config_file)
    if web.public_base_url:
        env[PUBLIC_BASE_URL_ENV] = web.public_base_url
    if db_mode:
        env[DB_MODE_ENV] = db_mode
    if now is not None:
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        env[NOW_ENV] = now.isoformat()
        env[NOW_SINCE_ENV] = (since or utcnow()).astimezone(UTC).isoformat()
    return env


def serve(
    settings: Settings,
    web: WebSettings,
    options: ServeOptions,
    config_file: str | None = None,
    now: datetime | None = None,
) -> None:
    """Run uvicorn until interrupted (Ctrl-C or SIGTERM: it finishes requests in flight).

    With ``now`` (a rehearsal's root --now), the workers' clock starts there, as ``callback
    run``'s does, and runs at the wall clock's pace.
    """
    import uvicorn

    # A rehearsal clock left in the environment by whoever started us must not leak into a
    # serve without --now: its workers keep the real time.
    for name in (NOW_ENV, NOW_SINCE_ENV):
        os.environ.pop(name, None)
    os.environ.update(worker_environment(settings, web, config_file, options.db_mode, now))
    uvicorn.run(
        FACTORY,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        access_log=options.access_log,
        log_level=options.log_level,
        # Twilio never keeps a connection idle for long; nginx's upstream keepalive does.
        timeout_keep_alive=75,
        # The signature check rebuilds the public URL from [web] public_base_url, never from
        # forwarded headers; the client address in logs may come from the proxy (127.0.0.1).
        proxy_headers=True,
        server_header=False,
    )
