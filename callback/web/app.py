"""The ASGI app: Twilio's voice webhooks, ``/health`` and ``/openapi.json`` (Starlette; the
webhooks are bare ASGI endpoints it answers first, see ``callback.web.asgi``).

Each webhook is a short synchronous piece of database work (one session read, one write)
wrapped in an async endpoint. Where that work runs is ``Database``'s choice, measured in
docs/web.md: inline on the event loop for SQLite, a small thread pool for PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callback import migrate, plugins
from callback.calls import CallHandler
from callback.config import Settings
from callback.db import create_engine, is_sqlite
from callback.errors import CallbackError, PluginError
from callback.models import utcnow
from callback.web.asgi import TWIML_TYPE, Incoming, Reply, WebApp, Webhook
from callback.web.ivr import KeyedSessions
from callback.web.openapi import JSON, TEXT, TWIML, Field, Operation, document
from callback.web.settings import WebSettings

if TYPE_CHECKING:
    from callback.web.twilio_hooks import TwilioWebhooks

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A webhook that waits longer than Twilio's 15 s timeout for SQLite's write lock is answered
#: by nobody; give up sooner (and apologise to the caller) rather than stall the event loop.
WEB_SQLITE_BUSY_TIMEOUT_MS = 5_000
#: Where the app's database work runs: "inline" on the event loop, or "threads".
DB_MODES = ("inline", "threads")


class Database:
    """Run the app's synchronous database work, inline or on a bounded thread pool.

    On SQLite, inline: its read and write take about 0.1 ms with WAL and one writer holds the
    lock anyway. Threads only queue in front of that lock, and with as many threads as
    connections (a sync endpoint's default) SQLite's busy handler sleeps: p99 went from 80 ms
    to 1.3 s in bench/webhooks. On PostgreSQL, threads (as many as the pool has connections):
    a request mostly waits on the network, and inline would wait on each round trip in turn.
    """

    def __init__(self, engine: Engine, mode: str = "inline", threads: int = 10) -> None:
        if mode not in DB_MODES:
            raise ValueError(f"database mode must be one of {DB_MODES}, not {mode!r}")
        self.engine = engine
        self.mode = mode
        self._limiter = anyio.CapacityLimiter(threads) if mode == "threads" else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


class Services:
    """What the endpoints share: settings, engine, the core's handlers, the Twilio webhooks."""

    def __init__(
        self,
        settings: Settings,
        web: WebSettings,
        engine: Engine,
        db: Database,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.web = web
        self.engine = engine
        self.db = db
        self.clock = clock
        self.handler = CallHandler(engine, actor="ivr", clock=clock)
        # Inline, every reply runs on the event loop's thread: it may keep its connection.
        self.sessions = KeyedSessions(
            engine, clock, checks=self.handler.checks, hold=db.mode == "inline"
        )
        self._twilio: TwilioWebhooks | None = None
        self._head: str | None = None

    def twilio(self) -> TwilioWebhooks:
        """The Twilio webhooks, built on first use; 404 without the plugin, 503 unconfigured."""
        if self._twilio is None:
            try:
                dialer_class = plugins.get_dialer("twilio")
            except PluginError as exc:
                raise HTTPException(
                    404, f"Twilio webhooks are off: {exc}. Install callback-twilio to use them."
                ) from None
            from callback.web.twilio_hooks import TwilioWebhooks

            try:
                self._twilio = TwilioWebhooks(
                    dialer_class, self.settings, self.web, self.handler, self.sessions, self.clock
                )
            except CallbackError as exc:
                log.error("the twilio dialer cannot be set up: %s", exc)
                raise HTTPException(503, f"the twilio dialer is not configured: {exc}") from None
        return self._twilio

    def warm_up(self) -> None:
        """Load plugins and scripts before the first call, and log what the Twilio routes lack."""
        plugins.survey_scripts()
        try:
            self.twilio()
        except HTTPException as exc:
            log.warning("%s", exc.detail)

    def health(self) -> tuple[int, dict[str, Any]]:
        """Whether the database answers and is at this callback's schema revision."""
        if self._head is None:
            self._head = migrate.head()
        body: dict[str, Any] = {"database": self.engine.dialect.name}
        try:
            revision = migrate.current(self.engine)
        except Exception:
            # The driver's message names hosts and paths; it goes to the log, not the world.
            log.exception("health: the database is unreachable")
            return 503, {**body, "status": "unavailable", "problem": "database unreachable"}
        body["schema"] = revision
        if revision != self._head:
            problem = f"schema {revision} is not {self._head}: run `callback db upgrade`"
            return 503, {**body, "status": "unavailable", "problem": problem}
        return 200, {**body, "status": "ok"}


def web_engine(settings: Settings) -> Engine:
    """The engine for a web worker: pooled connections; a short SQLite busy timeout."""
    engine = create_engine(settings.database_url)
    if is_sqlite(engine):

        @event.listens_for(engine, "connect")
        def _shorter_wait(dbapi_connection: Any, _record: Any) -> None:
            # Registered after callback.db's own listener, so this value wins.
            dbapi_connection.execute(f"PRAGMA busy_timeout={WEB_SQLITE_BUSY_TIMEOUT_MS}")

    return engine


def create_app(
    settings: Settings,
    *,
    web: WebSettings | None = None,
    engine: Engine | None = None,
    db_mode: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> WebApp:
    """Build the app for ``settings``.

    ``engine`` defaults to one made from ``settings.database_url`` (disposed at shutdown);
    ``db_mode`` to ``default_db_mode`` (see ``Database``); ``clock`` is injected by tests.
    """
    web = web or WebSettings.from_settings(settings)
    owned = engine is None
    engine = engine or web_engine(settings)
    db = Database(engine, db_mode or default_db_mode(engine), threads=_pool_size(engine))
    services = Services(settings, web, engine, db, clock)
    operations = _operations()
    openapi = document(operations.values())

    async def health(request: Request) -> Response:
        status, body = await db.run(services.health)
        return JSONResponse(body, status_code=status)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def twilio_voice(hooks: TwilioWebhooks, request: Incoming) -> Reply:
        work = db.run(hooks.voice, request.attempt_id, request.form, request.query())
        return await _twiml(work, hooks, request.attempt_id)

    async def twilio_gather(hooks: TwilioWebhooks, request: Incoming) -> Reply:
        at = request.query().get("at")
        work = db.run(hooks.gather, request.attempt_id, at, request.form)
        return await _twiml(work, hooks, request.attempt_id)

    async def twilio_status(hooks: TwilioWebhooks, request: Incoming) -> Reply:
        work = (hooks.callback, "status", request.attempt_id, request.form, request.query())
        return Reply(204, then=await db.run(*work))

    async def twilio_amd(hooks: TwilioWebhooks, request: Incoming) -> Reply:
        work = (hooks.callback, "amd", request.attempt_id, request.form)
        return Reply(204, then=await db.run(*work))

    webhooks = {
        "voice": Webhook(services.twilio, twilio_voice, ("CallSid",)),
        "gather": Webhook(services.twilio, twilio_gather, ("CallSid",)),
        "status": Webhook(services.twilio, twilio_status, ("CallSid", "CallStatus")),
        "amd": Webhook(services.twilio, twilio_amd, ("CallSid", "AnsweredBy")),
    }
    # Starlette calls a function with a Request, and a Webhook (an ASGI app) with the scope.
    endpoints: dict[str, Callable[..., Any]] = {
        "health": health,
        "openapi": openapi_json,
        **{f"twilio_{kind}": webhook for kind, webhook in webhooks.items()},
    }
    routes = [
        Route(op.path, endpoints[name], methods=[op.method.upper()])
        for name, op in operations.items()
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services.warm_up()
        yield
        services.sessions.close()
        if owned:
            engine.dispose()

    app = WebApp(webhooks=webhooks, routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.operations = list(operations.values())
    return app


def default_db_mode(engine: Engine) -> str:
    """Inline on SQLite (one writer; threads only queue for its lock), threads on PostgreSQL
    (a request waits on the network; a few at a time overlap their round trips)."""
    return "inline" if is_sqlite(engine) else "threads"


def _pool_size(engine: Engine) -> int:
    size = getattr(engine.pool, "size", None)
    return int(size()) if callable(size) else 5


async def _twiml(work: Awaitable[str], hooks: TwilioWebhooks, attempt_id: int) -> Reply:
    """TwiML from ``work``; if it fails, an apology that ends the call, never a 500.

    Twilio answers a 500 with an English error message to a caller expecting Mandarin; the
    session stays where it was and the next call of the case resumes it.
    """
    try:
        body = await work
    except Exception:
        log.exception("attempt %s: the webhook failed; the caller hears an apology", attempt_id)
        body = hooks.apology
    return Reply(200, body.encode(), TWIML_TYPE)


def _operations() -> dict[str, Operation]:
    """Every route of the app, as the OpenAPI document describes it (keyed by endpoint)."""
    call = (
        Field("CallSid", "Twilio's id of the call.", required=True),
        Field("AccountSid", "The account the call belongs to."),
        Field("CallStatus", "queued, ringing, in-progress, completed, busy, no-answer, …"),
        Field("From", "The caller id presented."),
        Field("To", "The number called."),
    )
    refused = {
        400: ("A malformed attempt id or form; the text names the parameter.", TEXT),
        403: ("X-Twilio-Signature is missing or does not match the public URL and form.", TEXT),
        404: ("The twilio dialer is not installed.", TEXT),
        413: ("The body is too large.", TEXT),
        415: ("The body is not application/x-www-form-urlencoded.", TEXT),
        503: ("[dialers.twilio] is incomplete.", TEXT),
    }
    twiml_ok = {
        200: (
            "TwiML of the next turn: a <Gather> around the prompt, or a goodbye and <Hangup/> "
            "for unknown, finished or failed calls.",
            TWIML,
        )
    }
    tags = ("twilio",)
    no_detection = {
        "machine_detection": "`off` when the dialer placed the call without answering machine "
        "detection (turned off, or an extension to key): no verdict will come, so an answer "
        "is one the dialer cannot tell a person from a machine on."
    }
    ops = [
        ("health", Operation(
            "get", "/health", "health", "Check that the database answers and is current.",
            "200 when the database is reachable and at this callback's schema revision; 503 "
            "with the problem otherwise (for load balancers and monitoring).",
            responses={200: ("Ready.", JSON), 503: ("Not ready; `problem` says why.", JSON)},
        )),
        ("openapi", Operation(
            "get", "/openapi.json", "openapi", "This document.",
            responses={200: ("The OpenAPI document.", JSON)},
        )),
        ("twilio_voice", Operation(
            "post", "/twilio/voice/{attempt_id}", "twilio_voice",
            "The callee answered: begin the survey.",
            "Reports the call as answered (or as a machine, when synchronous answering machine "
            "detection says so) and answers the first turn of the attempt's survey session. A "
            "retry gets the same turn.",
            tags, (*call, Field("AnsweredBy", "human, machine_start, … (with detection)")),
            query=no_detection, responses={**twiml_ok, **refused}, signed=True,
        )),
        ("twilio_gather", Operation(
            "post", "/twilio/gather/{attempt_id}", "twilio_gather",
            "The caller's input to a turn: answer it, once, and ask the next.",
            "Applies `Digits` (or `SpeechResult`; neither after silence) to the turn asked at "
            "`at`. A request for a position the session has already left (a retry) is not "
            "applied again: it gets the turn the session is at.",
            tags,
            (*call, Field("Digits", "The keys pressed (finishOnKey not included)."),
             Field("SpeechResult", "Recognised speech, when the turn listened for it.")),
            query={"at": "The position the turn was asked at (question.refusals), as our "
                          "TwiML wrote it into the URL."},
            responses={**twiml_ok, **refused}, signed=True,
        )),
        ("twilio_status", Operation(
            "post", "/twilio/status/{attempt_id}", "twilio_status",
            "A status callback: record what became of the call.",
            "Maps CallStatus (with AnsweredBy, SipResponseCode, ErrorCode) to call events. "
            "Repeated, late and out-of-order callbacks change nothing twice.",
            tags,
            (*call[:2], Field("CallStatus", "queued, initiated, ringing, in-progress, completed, "
                              "busy, no-answer, failed or canceled.", required=True), *call[3:],
             Field("CallDuration", "Seconds, once completed."),
             Field("SequenceNumber", "Order in which Twilio sent the callbacks."),
             Field("SipResponseCode", "The carrier's SIP answer."),
             Field("AnsweredBy", "With answering machine detection.")),
            query=no_detection,
            responses={204: ("Recorded (or ignored, for unknown attempts).", ""), **refused},
            signed=True,
        )),
        ("twilio_amd", Operation(
            "post", "/twilio/amd/{attempt_id}", "twilio_amd",
            "An answering machine detection verdict.",
            "A machine ends the attempt (the IVR does not survey voicemail); human or unknown "
            "count as answered.",
            tags,
            (*call, Field("AnsweredBy", "human, machine_start, machine_end_*, fax, unknown",
                          required=True),
             Field("MachineDetectionDuration", "Milliseconds detection took.")),
            responses={204: ("Recorded (or ignored, for unknown attempts).", ""), **refused},
            signed=True,
        )),
    ]  # fmt: skip
    return dict(ops)
