"""``callback serve``: the web server for voice webhooks (uvicorn running callback.web)."""

from __future__ import annotations

import importlib.util

import click

from callback.cli.context import AppContext, pass_app

#: Modules of the ``web`` extra: a core install must say so instead of a traceback.
_WEB_MODULES = ("starlette", "uvicorn")


@click.command()
@click.option(
    "--host", help="Address to listen on, e.g. 0.0.0.0 for all ([web] host; default 127.0.0.1)."
)
@click.option("--port", type=click.IntRange(0, 65535), help="Port ([web] port; default 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Worker processes ([web] workers; default 1). Keep 1 on SQLite: it has one writer.",
)
@click.option(
    "--public-base-url",
    metavar="URL",
    help="The URL Twilio calls, when a proxy sits in front, e.g. "
    "https://callback.example.gov.cn ([web] public_base_url).",
)
@click.option(
    "--db-mode",
    type=click.Choice(["inline", "threads"]),
    help="Run database work on the event loop (inline, the default) or on a thread pool.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (the proxy in front usually does already).",
)
@pass_app
def serve(
    app: AppContext,
    host: str | None,
    port: int | None,
    workers: int | None,
    public_base_url: str | None,
    db_mode: str | None,
    access_log: bool,
) -> None:
    """Serve the voice webhooks, /health and /openapi.json over HTTP.

    \b
    Examples:
      callback serve                                # http://127.0.0.1:8000
      callback serve --host 0.0.0.0 --port 8080 --workers 4
      callback serve --public-base-url https://callback.example.gov.cn

    Twilio's requests are checked against [web] public_base_url (or the dialer's own), so
    behind a proxy set it to the URL Twilio calls. See docs/web.md.
    """
    missing = [name for name in _WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"callback serve needs {' and '.join(missing)}: pip install 'callback[web]'"
        )
    from callback.web.server import ServeOptions
    from callback.web.server import serve as run
    from callback.web.settings import PUBLIC_BASE_URL_ENV, WebSettings

    settings = app.settings
    override = {PUBLIC_BASE_URL_ENV: public_base_url} if public_base_url else {}
    web = WebSettings.from_settings(settings, override)
    app.database()  # an old or missing schema stops here, before any worker starts
    options = ServeOptions(
        host=host or web.host,
        port=web.port if port is None else port,
        workers=workers or web.workers,
        access_log=access_log,
        db_mode=db_mode,
    )
    # A rehearsal (root --now): the workers' clock starts there, as `callback run`'s does.
    now = app.now() if app.fixed_now is not None else None
    rehearsal = f", their clock starting at {now:%Y-%m-%d %H:%M %Z}" if now else ""
    click.echo(
        f"Serving on http://{options.host}:{options.port} with {options.workers} worker(s)"
        f"{rehearsal}; Ctrl-C stops.",
        err=True,
    )
    # The workers read the same file: the root group's --config, if one was given.
    config_file = click.get_current_context().find_root().params.get("config_file")
    run(settings, web, options, config_file=config_file, now=now)
