"""Running the app under uvicorn: ``serve`` for ``callback serve``, ``app_factory`` per worker.

uvicorn starts each worker process afresh (spawn), so the settings ``callback serve`` resolved
from its options reach the workers through the environment, where ``load_settings`` reads them
with the same precedence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from callback.config import Settings, env_name, load_settings
from callback.web.settings import PUBLIC_BASE_URL_ENV, WebSettings

#: Where the app's database work runs in the workers ("inline" or "threads"); see Database.
DB_MODE_ENV = "CALLBACK_WEB_DB_MODE"
FACTORY = "callback.web.server:app_factory"


def app_factory() -> Any:
    """Build the app in a uvicorn worker from the environment ``serve`` prepared."""
    from callback.web.app import create_app

    settings = load_settings()
    web = WebSettings.from_settings(settings, os.environ)
    return create_app(settings, web=web, db_mode=os.environ.get(DB_MODE_ENV) or None)


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
    settings: Settings, web: WebSettings, config_file: str | None, db_mode: str | None
) -> dict[str, str]:
    """The variables that make ``load_settings`` in a worker see what the command saw."""
    env = {env_name(name): str(getattr(settings, name)) for name in ("database_url", "actor")}
    env[env_name("timezone")] = settings.timezone
    if config_file:
        env["CALLBACK_CONFIG"] = os.path.abspath(config_file)
    if web.public_base_url:
        env[PUBLIC_BASE_URL_ENV] = web.public_base_url
    if db_mode:
        env[DB_MODE_ENV] = db_mode
    return env


def serve(
    settings: Settings,
    web: WebSettings,
    options: ServeOptions,
    config_file: str | None = None,
) -> None:
    """Run uvicorn until interrupted (Ctrl-C or SIGTERM: it finishes requests in flight)."""
    import uvicorn

    os.environ.update(worker_environment(settings, web, config_file, options.db_mode))
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
