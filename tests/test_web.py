"""The web app without a telephony provider: health, the OpenAPI document, refusals, serve."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio.from_thread
import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from callback import migrate, plugins
from callback.config import Settings
from callback.errors import ConfigError
from callback.web import WebSettings, create_app
from callback.web.app import Database

REPO = Path(__file__).resolve().parent.parent


class AppClient:
    """The app in-process (httpx's ASGI transport), called synchronously like a test client."""

    def __init__(
        self, app: Starlette, base_url: str = "http://127.0.0.1:8000", root_path: str = ""
    ) -> None:
        self.app = app
        self._stack = ExitStack()
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        transport = httpx.ASGITransport(app=app, root_path=root_path)
        self.client = httpx.AsyncClient(transport=transport, base_url=base_url)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(functools.partial(self.client.request, method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.portal.call(self.client.aclose)
        self._stack.close()


@contextmanager
def client_for(app: Starlette, root_path: str = "") -> Iterator[AppClient]:
    """``app`` in-process; ``root_path`` as uvicorn's --root-path sets it in the scope."""
    client = AppClient(app, root_path=root_path)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def served(app: Starlette) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # started is set once the socket listens
            if server.started:
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def no_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the built-in plugins: as if callback-twilio were not installed."""
    monkeypatch.setenv("CALLBACK_LOAD_PLUGINS", "")
    plugins.reset_for_tests()
    yield
    monkeypatch.delenv("CALLBACK_LOAD_PLUGINS")
    plugins.reset_for_tests()


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[AppClient]:
    with client_for(create_app(settings, engine=engine)) as c:
        yield c


# -- health and the OpenAPI document ---------------------------------------------------------


def test_health_says_ok_on_a_current_database(client: AppClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["schema"] == migrate.head()
    assert body["database"] in ("sqlite", "postgresql")


def test_health_is_unavailable_before_init(settings: Settings, bare_engine: Engine) -> None:
    with client_for(create_app(settings, engine=bare_engine)) as c:
        response = c.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "callback db upgrade" in response.json()["problem"]


def test_health_hides_why_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "callback.db"
    app = create_app(Settings(database_url=f"sqlite:///{missing}"))
    with client_for(app) as c:
        response = c.get("/health")
    assert response.status_code == 503
    assert response.json()["problem"] == "database unreachable"
    assert str(tmp_path) not in response.text


def test_the_openapi_document_describes_every_route(client: AppClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    app_routes = {
        (route.path, method.lower())
        for route in client.app.routes
        for method in route.methods - {"HEAD"}
    }
    assert described == app_routes
    for kind in ("voice", "gather", "status", "amd"):
        op = doc["paths"][f"/twilio/{kind}/{{attempt_id}}"]["post"]
        assert op["security"] == [{"twilioSignature": []}]
        assert {"400", "403"} <= set(op["responses"])
        assert op["parameters"][0]["name"] == "attempt_id"
    assert "twilioSignature" in doc["components"]["securitySchemes"]


# -- refusals that need no provider -------------------------------------------------------------


def test_a_non_integer_attempt_id_is_a_400_naming_it(client: AppClient) -> None:
    response = client.post("/twilio/gather/abc", content=b"CallSid=CA1")
    assert response.status_code == 400
    assert "attempt_id" in response.text and "'abc'" in response.text


@pytest.mark.parametrize("raw", ["0", "-3", "1e3", "2147483648", "99999999999999999999"])
def test_attempt_ids_must_be_positive_and_fit(client: AppClient, raw: str) -> None:
    assert client.post(f"/twilio/voice/{raw}", content=b"").status_code == 400


def test_webhooks_answer_404_when_the_twilio_plugin_is_absent(
    settings: Settings, engine: Engine, no_plugins: None
) -> None:
    with client_for(create_app(settings, engine=engine)) as c:
        response = c.post("/twilio/voice/1", content=b"CallSid=CA1")
        assert c.get("/health").status_code == 200
    assert response.status_code == 404
    assert "twilio" in response.text and "callback-twilio" in response.text


def test_the_app_imports_and_serves_without_twilio_installed(tmp_path: Path) -> None:
    # A fresh interpreter in which `import twilio` fails and the plugin is not loaded, as on a
    # core-only install.
    database = f"sqlite:///{tmp_path / 'x.db'}"
    tests = str(REPO / "tests")
    script = f"""
import sys
sys.modules["twilio"] = None
sys.modules["callback_twilio"] = None
from callback.config import Settings
from callback.web import create_app
app = create_app(Settings(database_url={database!r}))
sys.path.insert(0, {tests!r})
from test_web import client_for
with client_for(app) as c:
    r = c.post("/twilio/status/7", content=b"CallSid=CA1", headers={{
        "content-type": "application/x-www-form-urlencoded"}})
print(r.status_code, r.text)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={**os.environ, "CALLBACK_LOAD_PLUGINS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("404 ") and "no dialer named 'twilio'" in done.stdout


def test_an_unknown_path_is_a_404_and_a_get_on_a_webhook_a_405(client: AppClient) -> None:
    assert client.get("/nowhere").status_code == 404
    assert client.get("/twilio/voice/1").status_code == 405


# -- settings and the database mode -----------------------------------------------------------


def test_web_settings_read_the_web_table() -> None:
    settings = Settings(sections={"web": {"public_base_url": "https://a.example/cb/", "port": 9}})
    web = WebSettings.from_settings(settings)
    assert (web.public_base_url, web.port, web.workers) == ("https://a.example/cb", 9, 1)
    env = {"CALLBACK_WEB_PUBLIC_BASE_URL": "https://b.example"}
    assert WebSettings.from_settings(settings, env).public_base_url == "https://b.example"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"public_base_url": "callback.example"}, "http(s) URL"),
        ({"public_base_ur": "https://x"}, "unknown setting(s) public_base_ur"),
        ({"workers": 0}, "workers"),
        ({"port": "80"}, "port"),
    ],
)
def test_bad_web_settings_are_clean_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WebSettings.from_settings(Settings(sections={"web": table}))


def test_an_unknown_database_mode_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="inline"):
        Database(engine, "processes")


# -- callback serve -----------------------------------------------------------------------------


@pytest.fixture
def serve_cli(cli: Any) -> Any:
    """``callback ... serve ...``, with the command registered as the lead will register it."""
    from callback.cli import cli as root
    from callback.cli.serve import serve

    if "serve" not in root.commands:
        root.add_command(serve)
    return cli


def test_serve_runs_uvicorn_with_the_options_and_hands_settings_to_workers(
    serve_cli: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: str, **kwargs: Any) -> None:
        seen.update(kwargs, app=app, env=dict(os.environ))

    monkeypatch.setattr(uvicorn, "run", fake_run)
    for name in ("CALLBACK_DATABASE_URL", "CALLBACK_WEB_PUBLIC_BASE_URL", "CALLBACK_WEB_DB_MODE"):
        monkeypatch.setenv(name, "")  # restored after the test, whatever serve sets
    result = serve_cli(
        "serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "3",
        "--public-base-url", "https://callback.example.gov.cn", "--db-mode", "threads",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen["app"] == "callback.web.server:app_factory" and seen["factory"] is True
    assert (seen["host"], seen["port"], seen["workers"]) == ("0.0.0.0", 8123, 3)
    assert seen["env"]["CALLBACK_DATABASE_URL"] == database_url
    assert seen["env"]["CALLBACK_WEB_PUBLIC_BASE_URL"] == "https://callback.example.gov.cn"
    assert seen["env"]["CALLBACK_WEB_DB_MODE"] == "threads"


def test_serve_refuses_a_database_without_the_schema(
    serve_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from callback.cli import cli as root

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    from click.testing import CliRunner

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(root, ["--database", empty, "serve"])
    assert result.exit_code == 1
    assert "callback init" in result.output


def test_serve_help_documents_every_option(serve_cli: Any) -> None:
    result = serve_cli("serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--public-base-url", "--db-mode"):
        assert option in result.output


def test_the_worker_factory_builds_the_app_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine
) -> None:
    from callback.web.server import app_factory

    monkeypatch.setenv("CALLBACK_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLBACK_WEB_DB_MODE", "threads")
    app = app_factory()
    assert app.state.services.db.mode == "threads"
    with client_for(app) as c:
        assert c.get("/health").json()["status"] == "ok"
    app.state.services.engine.dispose()


#: What ``serve`` hands its workers through the environment: restored after each test.
WORKER_VARIABLES = (
    "CALLBACK_DATABASE_URL", "CALLBACK_ACTOR", "CALLBACK_TIMEZONE", "CALLBACK_CONFIG",
    "CALLBACK_WEB_PUBLIC_BASE_URL", "CALLBACK_WEB_DB_MODE", "CALLBACK_WEB_NOW",
    "CALLBACK_WEB_NOW_SINCE",
)  # fmt: skip


@pytest.fixture
def workers_of_serve(
    serve_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., list[Starlette]]:
    """Run ``callback [ROOT...] serve`` with uvicorn replaced by two workers' app factories."""
    from callback.web.server import app_factory

    for name in WORKER_VARIABLES:
        monkeypatch.setenv(name, "")  # restored after the test, whatever serve sets
        monkeypatch.delenv(name)

    def invoke(*root: str, stale: dict[str, str] | None = None) -> list[Starlette]:
        for name, value in (stale or {}).items():
            monkeypatch.setenv(name, value)
        apps: list[Starlette] = []

        def run(*args: Any, **kwargs: Any) -> None:
            # uvicorn calls the factory in each worker process, with serve's environment.
            apps.extend(app_factory() for _ in range(kwargs["workers"]))

        monkeypatch.setattr(uvicorn, "run", run)
        result = serve_cli(*root, "serve", "--workers", "2")
        assert result.exit_code == 0, result.output
        return apps

    return invoke


def test_serve_hands_the_root_now_to_every_worker_as_callback_run_does(
    workers_of_serve: Callable[..., list[Starlette]],
) -> None:
    apps = workers_of_serve("--now", "2026-06-10 10:00")
    try:
        rehearsal = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
        readings = [app.state.services.clock() for app in apps]
        for app, at in zip(apps, readings, strict=True):
            # The clock starts at --now and runs on at the wall clock's pace, as `callback run`.
            assert rehearsal <= at < rehearsal + timedelta(seconds=30)
            services = app.state.services
            assert services.handler.clock is services.clock  # calls are recorded at that time
            assert services.sessions.clock is services.clock
        assert abs(readings[1] - readings[0]) < timedelta(seconds=1)  # one clock for all
    finally:
        for app in apps:
            app.state.services.engine.dispose()


def test_serve_without_now_keeps_real_time_even_with_a_stale_rehearsal_in_the_environment(
    workers_of_serve: Callable[..., list[Starlette]],
) -> None:
    stale = {
        "CALLBACK_WEB_NOW": "2026-06-10T10:00:00+08:00",
        "CALLBACK_WEB_NOW_SINCE": "2026-06-10T02:00:00+00:00",
    }
    apps = workers_of_serve(stale=stale)
    try:
        for app in apps:
            assert abs(app.state.services.clock() - datetime.now(UTC)) < timedelta(seconds=30)
        assert "CALLBACK_WEB_NOW" not in os.environ
    finally:
        for app in apps:
            app.state.services.engine.dispose()


def test_the_worker_clock_runs_from_now_at_the_wall_clocks_pace() -> None:
    from callback.web.server import worker_clock, worker_environment

    since = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    now = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    env = worker_environment(Settings(), WebSettings(), None, None, now, since)
    assert (env["CALLBACK_WEB_NOW"], env["CALLBACK_WEB_NOW_SINCE"]) == (
        "2026-06-10T10:00:00+08:00", "2026-12-01T00:00:00+00:00",
    )  # fmt: skip
    wall = since + timedelta(minutes=5, seconds=3)
    assert worker_clock(env, lambda: wall)() == datetime(2026, 6, 10, 2, 5, 3, tzinfo=UTC)
    assert "CALLBACK_WEB_NOW" not in worker_environment(Settings(), WebSettings(), None, None)
    assert worker_clock({}, lambda: wall)() == wall


def test_a_malformed_worker_clock_is_a_config_error_naming_the_variables() -> None:
    from callback.web.server import worker_clock

    with pytest.raises(ConfigError, match="CALLBACK_WEB_NOW='tomorrow' and CALLBACK_WEB_NOW_SINCE"):
        worker_clock({"CALLBACK_WEB_NOW": "tomorrow"})
    with pytest.raises(ConfigError, match="expected two ISO 8601 times with a UTC offset"):
        worker_clock({"CALLBACK_WEB_NOW": "2026-06-10T10:00", "CALLBACK_WEB_NOW_SINCE": "x"})


def test_the_server_answers_over_http(settings: Settings, engine: Engine) -> None:
    with served(create_app(settings, engine=engine)) as base:
        response = httpx.get(base + "/health")
        document = httpx.get(base + "/openapi.json").json()
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert json.dumps(document)  # plain JSON, no YAML
