"""Twilio's webhooks end to end: signed requests, TwiML followed key by key, the database after.

The plugin's ``TwilioPhone`` plays Twilio: it signs each request for the public URL Twilio
would call, and the app (in-process, or under uvicorn over HTTP) sees only the path, as it
would behind a proxy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

pytest.importorskip("callback_twilio")

from callback_twilio.testing import (  # noqa: E402
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_FROM,
    DEFAULT_PUBLIC_BASE_URL,
    FakeTwilioAPI,
    SharedKey,
    TwilioPhone,
    TwimlPage,
    WebhookRequest,
    parse_twiml,
    sign,
    walk_survey,
)
from test_calls import NOW, A, dial, rows, world  # noqa: E402
from test_web import AppClient, client_for, served  # noqa: E402

from callback.attempts import attempt_placed, begin_attempt  # noqa: E402
from callback.claims import Scope, claim_next  # noqa: E402
from callback.config import Settings  # noqa: E402
from callback.models import CallAttempt, QueueItem, Response, SurveySession  # noqa: E402
from callback.web import create_app, ivr  # noqa: E402
from callback.web.asgi import Webhook  # noqa: E402

#: 本人, yes it is my case, went once, satisfied, no suggestion, policy explained, may recontact.
SATISFIED = ["1", "1", "1", "2", "2", "1", "1"]
REPO = Path(__file__).resolve().parent.parent
SIGNATURE = "X-Twilio-Signature"


def twilio_settings(
    database_url: str,
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL,
    web: Any = None,
    api_base_url: str | None = None,
) -> Settings:
    """Settings with [dialers.twilio] for the plugin's test account, and ``web`` as [web]."""
    dialer = {
        "account_sid": DEFAULT_ACCOUNT_SID,
        "auth_token": DEFAULT_AUTH_TOKEN,
        "from_number": DEFAULT_FROM,
        "public_base_url": public_base_url,
    }
    if api_base_url is not None:
        dialer["api_base_url"] = api_base_url
    return Settings(
        database_url=database_url, actor="tester",
        sections={"dialers": {"twilio": dialer}, "web": web or {}},
    )  # fmt: skip


def phone_for(attempt: int, base: str = DEFAULT_PUBLIC_BASE_URL, **kwargs: Any) -> TwilioPhone:
    """Twilio's side of the attempt's call, with the provider call id dial() recorded."""
    kwargs.setdefault("call_sid", f"call-{attempt}")
    return TwilioPhone.for_attempt(base, attempt, DEFAULT_AUTH_TOKEN, **kwargs)


class Twilio:
    """Delivers signed requests to the app and checks what comes back."""

    def __init__(self, deliver: Callable[[WebhookRequest], tuple[int, str]]) -> None:
        self.deliver = deliver

    def send(self, request: WebhookRequest) -> str:
        """Deliver a request that must be answered with TwiML."""
        status, body = self.deliver(request)
        assert status == 200, (status, body)
        return body

    def page(self, request: WebhookRequest) -> TwimlPage:
        return parse_twiml(self.send(request))

    def callback(self, request: WebhookRequest) -> None:
        """Deliver a status or AMD callback: 204, no body."""
        assert self.deliver(request) == (204, "")


def in_process(client: AppClient) -> Twilio:
    def deliver(request: WebhookRequest) -> tuple[int, str]:
        response = client.post(request.path, content=request.body, headers=request.headers)
        return response.status_code, response.text

    return Twilio(deliver)


@pytest.fixture
def fake_api() -> Iterator[FakeTwilioAPI]:
    """Twilio's REST API, where the app's dialer sends what it asks of calls (hang-ups)."""
    with FakeTwilioAPI() as api:
        yield api


@pytest.fixture(params=["inline", "threads"])
def app_client(
    request: pytest.FixtureRequest, database_url: str, engine: Engine, fake_api: FakeTwilioAPI
) -> Iterator[AppClient]:
    settings = twilio_settings(database_url, api_base_url=fake_api.base_url)
    app = create_app(settings, engine=engine, db_mode=request.param, clock=lambda: NOW)
    with client_for(app) as client:
        yield client


@pytest.fixture
def twilio(app_client: AppClient) -> Twilio:
    return in_process(app_client)


def state(engine: Engine, attempt: int) -> Any:
    """The attempt's row, its session's row and the case's response (or None)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(CallAttempt.__table__).where(CallAttempt.__table__.c.id == attempt)
        ).one()
        session = conn.execute(
            sa.select(SurveySession.__table__).where(
                SurveySession.__table__.c.attempt_id == attempt
            )
        ).first()
    return row, session


def assert_satisfied_interview(engine: Engine, attempt: int) -> None:
    row, session = state(engine, attempt)
    assert (row.state, row.outcome, row.disposition) == ("ended", "completed", "1.1")
    assert row.answered_at is not None
    assert session.status == "finished"
    (item,) = rows(engine, QueueItem)
    assert (item.state, item.final_disposition) == ("finished", "1.1")
    (response,) = rows(engine, Response)
    assert response.complete and response.realised is True and response.satisfied is True
    assert response.attempt_id == attempt
    assert response.answers["trips"] == 1 and response.answers["satisfaction"] == "satisfied"


def run_call(twilio: Twilio, phone: TwilioPhone, keys: list[str]) -> list[TwimlPage]:
    twilio.callback(phone.status("initiated"))
    twilio.callback(phone.status("ringing"))
    pages = walk_survey(twilio.send, phone, keys)
    twilio.callback(phone.amd("human"))
    twilio.callback(phone.status("completed", duration=95))
    return pages


# -- a whole survey ---------------------------------------------------------------------------


def test_a_whole_survey_in_process_records_outcome_response_and_disposition(
    twilio: Twilio, engine: Engine
) -> None:
    attempt = dial(engine, world(engine))
    pages = run_call(twilio, phone_for(attempt), SATISFIED)
    assert len(pages) == len(SATISFIED) + 1
    assert pages[-1].hangup and "感谢" in pages[-1].says[0]
    assert all(page.gather is not None for page in pages[:-1])
    assert_satisfied_interview(engine, attempt)


def test_every_listening_turn_names_its_position_in_the_gather_url(
    twilio: Twilio, engine: Engine
) -> None:
    attempt = dial(engine, world(engine))
    pages = walk_survey(twilio.send, phone_for(attempt), SATISFIED[:3])
    base = f"{DEFAULT_PUBLIC_BASE_URL}/twilio/gather/{attempt}"
    assert [page.gather["action"] for page in pages if page.gather] == [
        f"{base}?at=identity.0", f"{base}?at=case.0", f"{base}?at=trips.0",
        f"{base}?at=satisfaction.0",
    ]  # fmt: skip
    assert all(page.redirect == page.gather["action"] for page in pages if page.gather)


def test_a_whole_survey_over_http_under_uvicorn(database_url: str, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    app = create_app(twilio_settings(database_url), engine=engine, clock=lambda: NOW)
    with served(app) as base:
        twilio = Twilio(lambda request: request.send_to(base))
        pages = run_call(twilio, phone_for(attempt), SATISFIED)
    assert pages[-1].hangup
    assert_satisfied_interview(engine, attempt)


def test_callback_serve_answers_a_signed_call_over_http(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The real command in a subprocess: options, config file, workers from the factory."""
    attempt = dial(engine, world(engine))
    config = tmp_path / "callback.toml"
    config.write_text(
        f'[dialers.twilio]\naccount_sid = "{DEFAULT_ACCOUNT_SID}"\n'
        f'auth_token = "{DEFAULT_AUTH_TOKEN}"\nfrom_number = "{DEFAULT_FROM}"\n'
        f'public_base_url = "{DEFAULT_PUBLIC_BASE_URL}"\n'
        f'[web]\npublic_base_url = "{DEFAULT_PUBLIC_BASE_URL}"\n'
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from callback.cli import cli\nfrom callback.cli.serve import serve\n"
        "cli.add_command(serve)\ncli(prog_name='callback')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBACK_")}
    server = subprocess.Popen(
        [sys.executable, "-c", code, "--database", database_url, "--config", str(config),
         "serve", "--port", str(port), "--workers", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("callback serve did not come up")
        twilio = Twilio(lambda request: request.send_to(base))
        pages = run_call(twilio, phone_for(attempt), SATISFIED)
        forged = phone_for(attempt)
        forged.auth_token = "guessed"
        assert forged.voice().send_to(base)[0] == 403
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert pages[-1].hangup, output
    assert_satisfied_interview(engine, attempt)


# -- signatures ---------------------------------------------------------------------------------


def test_a_forged_signature_is_refused_and_changes_nothing(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    forged = TwilioPhone.for_attempt(
        DEFAULT_PUBLIC_BASE_URL, attempt, "a-guessed-token", call_sid=f"call-{attempt}"
    )
    for request in (forged.voice(), forged.status("completed", duration=3), forged.amd("fax")):
        status, body = twilio.deliver(request)
        assert status == 403 and "X-Twilio-Signature" in body
    row, session = state(engine, attempt)
    assert (row.state, row.answered_at, session) == ("placed", None, None)


def test_a_request_without_a_signature_is_refused(twilio: Twilio, engine: Engine) -> None:
    request = phone_for(1).voice()
    unsigned = WebhookRequest(
        request.url, request.params, {"Content-Type": request.headers["Content-Type"]}
    )
    assert twilio.deliver(unsigned) == (403, "the request has no X-Twilio-Signature header")


def test_an_altered_parameter_is_refused(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    first = twilio.page(phone.voice())
    signed = phone.gather(first.next_url("1"), digits="1")
    altered = WebhookRequest(signed.url, {**signed.params, "Digits": "4"}, signed.headers)
    assert twilio.deliver(altered)[0] == 403
    # Nor may the position in the URL be changed: it is signed like the rest of the URL.
    moved = WebhookRequest(signed.url.replace("identity.0", "identity.1"), signed.params,
                           signed.headers)  # fmt: skip
    assert twilio.deliver(moved)[0] == 403
    _, session = state(engine, attempt)
    assert '"answers":[]' in session.state
    assert twilio.page(signed).gather["action"].endswith("at=case.0")  # the real one works


def test_behind_a_proxy_the_public_base_url_decides(database_url: str, engine: Engine) -> None:
    """Twilio signs https://gw…/callback/…; the proxy strips /callback and we see /twilio/…"""
    attempt = dial(engine, world(engine))
    public = "https://gw.example.gov.cn/callback"
    phone = phone_for(attempt, public)
    right = create_app(twilio_settings(database_url, public), engine=engine, clock=lambda: NOW)
    wrong = create_app(
        twilio_settings(database_url, public, {"public_base_url": "http://127.0.0.1:8000"}),
        engine=engine, clock=lambda: NOW,
    )  # fmt: skip
    request = phone.voice()
    assert request.path == f"/callback/twilio/voice/{attempt}"
    stripped = lambda c: c.post(  # noqa: E731
        request.path.removeprefix("/callback"), content=request.body, headers=request.headers
    )
    with client_for(wrong) as c:
        response = stripped(c)
        assert response.status_code == 403 and "public_base_url" in response.text
    with client_for(right) as c:
        response = stripped(c)
    assert response.status_code == 200
    assert parse_twiml(response.text).gather["action"].startswith(f"{public}/twilio/gather/")


def _count_routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the webhook requests that Starlette's router delivers from now on."""
    routed: list[str] = []
    through_router = Webhook.__call__

    async def counted(self: Webhook, scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await through_router(self, scope, receive, send)

    monkeypatch.setattr(Webhook, "__call__", counted)
    return routed


def test_under_a_root_path_the_webhooks_answer_through_starlette_s_router(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn --root-path /callback: requests reach the webhooks through the router, which
    strips the prefix, and a whole survey runs as when WebApp answers them first."""
    routed = _count_routed(monkeypatch)
    public = "https://gw.example.gov.cn/callback"
    attempt = dial(engine, world(engine))
    app = create_app(twilio_settings(database_url, public), engine=engine, clock=lambda: NOW)
    with client_for(app, root_path="/callback") as client:
        run_call(in_process(client), phone_for(attempt, public), SATISFIED)
    assert len(routed) == len(SATISFIED) + 5
    assert routed[0] == f"/callback/twilio/status/{attempt}"
    assert_satisfied_interview(engine, attempt)


def test_without_a_root_path_the_router_never_sees_a_webhook(
    twilio: Twilio, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed = _count_routed(monkeypatch)
    attempt = dial(engine, world(engine))
    run_call(twilio, phone_for(attempt), SATISFIED)
    assert routed == []
    assert_satisfied_interview(engine, attempt)


def test_a_webhook_rule_s_shared_key_signs_without_the_auth_token(
    database_url: str, engine: Engine
) -> None:
    # The office keeps the account's master credential off the web server: REST calls use
    # an API key, and a Webhook Rule signs our URLs with shared keys (two while rotating).
    old, new = SharedKey("KSold", "old-secret", "HMAC_SHA1"), SharedKey("KSnew", "new-secret")
    settings = twilio_settings(database_url)
    twilio_table = settings.sections["dialers"]["twilio"]
    del twilio_table["auth_token"]
    twilio_table |= {
        "api_key": "SK" + "0" * 32,
        "api_secret": "api-secret",
        "webhook_keys": {old.key_id: old.secret, new.key_id: new.secret},
    }
    attempt = dial(engine, world(engine))
    with client_for(create_app(settings, engine=engine, clock=lambda: NOW)) as client:
        twilio = in_process(client)
        twilio.callback(phone_for(attempt, shared_key=old).status("ringing"))
        # Rotated meanwhile: the rest of the call comes signed with the new key.
        rest = phone_for(attempt, shared_key=new)
        pages = walk_survey(twilio.send, rest, SATISFIED)
        twilio.callback(rest.status("completed", duration=95))
        # Signed with the auth token, with a key it does not hold, or a forged SHA-256.
        token = phone_for(attempt).status("completed", duration=95)
        assert twilio.deliver(token) == (
            403,
            "the request is signed with the account's auth token, which this server does not "
            "hold: a Webhook Rule must sign our URLs with a key of webhook_keys",
        )
        unknown = phone_for(attempt, shared_key=SharedKey("KSgone", "new-secret"))
        status, body = twilio.deliver(unknown.status("completed", duration=95))
        assert status == 403 and "KSgone" in body and "webhook_keys" in body
        forged = phone_for(attempt, shared_key=SharedKey("KSnew", "guessed"))
        status, body = twilio.deliver(forged.status("completed", duration=95))
        assert status == 403 and "does not match" in body
    assert pages[-1].hangup
    assert_satisfied_interview(engine, attempt)


# -- retries, order, unknown and finished calls ---------------------------------------------------


def test_a_replayed_gather_gets_the_same_twiml_and_answers_nothing_twice(
    twilio: Twilio, engine: Engine
) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    first = twilio.page(phone.voice())
    identity = phone.gather(first.next_url("1"), digits="1")
    case_page = twilio.send(identity)
    _, before = state(engine, attempt)
    assert twilio.send(identity) == case_page  # Twilio's retry of the same request
    _, after = state(engine, attempt)
    assert after.state == before.state
    # "1" again answers the case question only through its own URL, once.
    case = phone.gather(parse_twiml(case_page).next_url("1"), digits="1")
    trips_page = twilio.send(case)
    assert twilio.send(identity) == trips_page == twilio.send(case)
    _, session = state(engine, attempt)
    assert '["identity","applicant"],["case",true]]' in session.state
    assert "trips.0" in parse_twiml(trips_page).gather["action"]
    # The call goes on as if nothing had been replayed.
    pages = walk_survey(twilio.send, phone, SATISFIED[2:])  # the voice webhook again: a retry
    assert pages[0].gather["action"].endswith("at=trips.0")
    twilio.callback(phone.status("completed", duration=80))
    assert_satisfied_interview(engine, attempt)


def test_a_replayed_refusal_does_not_spend_a_second_retry(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    first = twilio.page(phone.voice())
    wrong_key = phone.gather(first.next_url("9"), digits="9")
    again = twilio.page(wrong_key)
    assert again.gather["action"].endswith("at=identity.1") and "对不起" in again.says[0]
    assert twilio.page(wrong_key).xml == again.xml
    _, session = state(engine, attempt)
    assert '"attempts":1' in session.state


def test_a_retried_voice_webhook_opens_one_session(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    assert twilio.send(phone.voice()) == twilio.send(phone.voice())
    assert len(rows(engine, SurveySession)) == 1


def test_completed_before_answered_ends_the_attempt_once(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    twilio.callback(phone.status("ringing"))
    completed = phone.status("completed", duration=4, timestamp=NOW + timedelta(seconds=9))
    answered = phone.status("in-progress", timestamp=NOW + timedelta(seconds=5))
    twilio.callback(completed)
    after_end = rows(engine, CallAttempt), rows(engine, QueueItem)
    twilio.callback(answered)  # late: Twilio's callbacks may arrive out of order
    twilio.callback(completed)  # and twice
    assert (rows(engine, CallAttempt), rows(engine, QueueItem)) == after_end
    (row,) = after_end[0]
    assert row.state == "ended" and row.outcome == "completed" and row.answered_at is None


def test_a_late_answered_after_a_survey_changes_nothing(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    run_call(twilio, phone, SATISFIED)
    before = rows(engine, CallAttempt), rows(engine, Response)
    twilio.callback(phone.status("in-progress"))
    twilio.callback(phone.amd("machine_start"))
    twilio.callback(phone.status("completed", duration=95))
    assert (rows(engine, CallAttempt), rows(engine, Response)) == before


def test_an_unknown_attempt_gets_a_polite_goodbye(twilio: Twilio, engine: Engine) -> None:
    phone = phone_for(987654)
    for request in (phone.voice(), phone.gather(phone.voice_url.replace("voice", "gather"), "1")):
        page = twilio.page(request)
        assert page.hangup and page.gather is None and "再见" in page.says[0]
    twilio.callback(phone.status("completed", duration=1))
    twilio.callback(phone.amd("human"))


def test_a_finished_attempt_gets_a_polite_goodbye(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    pages = run_call(twilio, phone, SATISFIED)
    before = rows(engine, SurveySession), rows(engine, Response)
    for request in (phone.voice(), phone.gather(pages[1].next_url("1"), digits="1")):
        page = twilio.page(request)
        assert page.hangup and "再见" in page.says[0]
    assert (rows(engine, SurveySession), rows(engine, Response)) == before


def test_a_machine_verdict_ends_the_attempt(twilio: Twilio, engine: Engine) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    twilio.page(phone.voice())
    twilio.callback(phone.amd("machine_start"))
    page = twilio.page(phone.gather(phone.voice_url.replace("voice", "gather") + "?at=identity.0"))
    assert page.hangup  # the machine's call is over for the survey
    twilio.callback(phone.status("completed", duration=30))
    row, _ = state(engine, attempt)
    assert (row.outcome, row.disposition) == ("machine", "3.14")


def answered_call(engine: Engine, api: FakeTwilioAPI) -> TwilioPhone:
    """An attempt whose call Twilio (the fake API) has placed and the callee answered."""
    campaign = world(engine)
    claim = claim_next(engine, "dispatcher:test", Scope(campaigns=frozenset({campaign})), NOW)
    assert claim is not None
    attempt = begin_attempt(engine, claim, A, "twilio", NOW)
    phone = phone_for(attempt, to=A)
    sid = api.client().calls.create(to=A, from_=DEFAULT_FROM, url=phone.voice_url).sid
    attempt_placed(engine, attempt, sid, NOW)
    api.set_call(sid, "in-progress")
    phone.call_sid = sid
    return phone


def hangups(api: FakeTwilioAPI, sid: str) -> list[str | None]:
    """The Status of every update of call ``sid`` the fake API was asked for."""
    return [
        r.param("Status")
        for r in api.requests
        if r.method == "POST" and r.path.endswith(f"/Calls/{sid}.json")
    ]


@pytest.mark.parametrize(
    "answered_by",
    ["machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"],
)
def test_a_machine_verdict_hangs_the_call_up_once(
    twilio: Twilio, engine: Engine, fake_api: FakeTwilioAPI, answered_by: str
) -> None:
    phone = answered_call(engine, fake_api)
    twilio.page(phone.voice())
    twilio.callback(phone.amd(answered_by))
    twilio.callback(phone.amd(answered_by))  # Twilio retries a callback it thinks was lost
    assert hangups(fake_api, phone.call_sid) == ["completed"]
    assert fake_api.calls[phone.call_sid]["status"] == "completed"
    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.outcome, row.provider_call_id) == ("ended", "machine", phone.call_sid)


def test_a_machine_in_a_status_callback_hangs_up_once_too(
    twilio: Twilio, engine: Engine, fake_api: FakeTwilioAPI
) -> None:
    phone = answered_call(engine, fake_api)
    twilio.callback(phone.status("in-progress", answered_by="machine_start"))
    twilio.callback(phone.amd("machine_end_beep"))
    twilio.callback(phone.status("completed", duration=20, answered_by="machine_start"))
    assert hangups(fake_api, phone.call_sid) == ["completed"]


def test_a_person_is_not_hung_up_on(
    twilio: Twilio, engine: Engine, fake_api: FakeTwilioAPI
) -> None:
    phone = answered_call(engine, fake_api)
    twilio.page(phone.voice())
    twilio.callback(phone.amd("human"))
    twilio.callback(phone.amd("unknown"))
    assert hangups(fake_api, phone.call_sid) == []
    assert rows(engine, CallAttempt)[0].state == "placed"


def test_a_failed_hang_up_is_logged_with_the_number_masked_not_a_500(
    twilio: Twilio,
    engine: Engine,
    fake_api: FakeTwilioAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = answered_call(engine, fake_api)
    fake_api.fail_next(1, status=503, message=f"cannot end the call to {A}")
    with caplog.at_level("WARNING", logger="callback.web.twilio_hooks"):
        twilio.callback(phone.amd("machine_start"))
    assert fake_api.calls[phone.call_sid]["status"] == "in-progress"
    (record,) = [r for r in caplog.records if "was not hung up" in r.getMessage()]
    assert phone.call_sid in record.getMessage() and "139****5671" in record.getMessage()
    assert A not in caplog.text and A[3:] not in caplog.text
    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.outcome) == ("ended", "machine")


def test_a_broken_dialer_at_hang_up_is_logged_masked_not_a_500(
    twilio: Twilio,
    app_client: AppClient,
    engine: Engine,
    fake_api: FakeTwilioAPI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = answered_call(engine, fake_api)
    twilio.page(phone.voice())  # builds the webhooks and their dialer

    def broken(sid: str) -> None:
        raise RuntimeError(f"no route to {A}")

    monkeypatch.setattr(app_client.app.state.services.twilio().dialer, "hangup", broken)
    with caplog.at_level("WARNING", logger="callback.web.twilio_hooks"):
        twilio.callback(phone.amd("machine_start"))
    assert "was not hung up" in caplog.text and "RuntimeError" in caplog.text
    assert A not in caplog.text and A[3:] not in caplog.text


# -- the gather's connection ------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "checkouts"), [("inline", 1), ("threads", 4)])
def test_inline_gathers_keep_one_connection_and_give_it_back_at_shutdown(
    database_url: str, engine: Engine, mode: str, checkouts: int
) -> None:
    """Inline, every gather runs on the event loop's thread and keeps its connection; on
    threads each takes one from the pool. Either way none is left out once the app stops."""
    attempt = dial(engine, world(engine))
    app = create_app(twilio_settings(database_url), engine=engine, db_mode=mode,
                     clock=lambda: NOW)  # fmt: skip
    taken: list[object] = []

    def count(*_: object) -> None:
        taken.append(_)

    phone = phone_for(attempt)
    with served(app) as base:
        page = parse_twiml(phone.voice().send_to(base)[1])
        sa.event.listen(engine, "checkout", count)
        try:
            for key in SATISFIED[:4]:
                status, body = phone.gather(page.next_url(key), digits=key).send_to(base)
                assert status == 200
                page = parse_twiml(body)
        finally:
            sa.event.remove(engine, "checkout", count)
    assert len(taken) == checkouts
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    _, session = state(engine, attempt)
    assert '"satisfaction"' in session.state


def test_a_gather_that_fails_leaves_the_kept_connection_usable(
    twilio: Twilio, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    first = twilio.page(phone.voice())
    real = ivr.answer

    def broken_once(*args: Any) -> Any:
        monkeypatch.setattr(ivr, "answer", real)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ivr, "answer", broken_once)
    apology = twilio.page(phone.gather(first.next_url("1"), digits="1"))
    assert apology.hangup and "对不起" in apology.says[0]
    _, session = state(engine, attempt)
    assert '"answers":[]' in session.state  # rolled back, nothing half-written
    # The caller's next call resumes; here the same request, retried, is applied once.
    page = twilio.page(phone.gather(first.next_url("1"), digits="1"))
    assert page.gather is not None and page.gather["action"].endswith("at=case.0")


# -- malformed requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "drop", "field"),
    [("voice", "CallSid", "CallSid"), ("gather", "CallSid", "CallSid"),
     ("status", "CallStatus", "CallStatus"), ("amd", "AnsweredBy", "AnsweredBy")],
)  # fmt: skip
def test_a_signed_request_missing_a_field_is_a_400_naming_it(
    twilio: Twilio, kind: str, drop: str, field: str
) -> None:
    phone = phone_for(5)
    url = {"voice": phone.voice_url, "gather": phone.voice_url.replace("voice", "gather"),
           "status": phone.status_url, "amd": phone.amd_url}[kind]  # fmt: skip
    template = phone.amd("human") if kind == "amd" else phone.status("ringing")
    params = {k: v for k, v in template.params.items() if k != drop}
    signature = sign(url or "", params, DEFAULT_AUTH_TOKEN)
    request = WebhookRequest(url or "", params, {**template.headers, SIGNATURE: signature})
    status, body = twilio.deliver(request)
    assert (status, body) == (400, f"the form field {field} is missing")


def test_a_body_that_is_not_a_form_is_a_415(app_client: AppClient) -> None:
    response = app_client.post(
        "/twilio/voice/1", json={"CallSid": "CA1"}, headers={"X-Twilio-Signature": "x"}
    )
    assert response.status_code == 415 and "application/x-www-form-urlencoded" in response.text


def test_a_huge_body_is_a_413(app_client: AppClient) -> None:
    response = app_client.post(
        "/twilio/gather/1",
        content=b"Digits=" + b"1" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_a_failure_inside_a_call_is_an_apology_not_a_500(
    twilio: Twilio, app_client: AppClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt = dial(engine, world(engine))
    phone = phone_for(attempt)
    first = twilio.page(phone.voice())
    services = app_client.app.state.services

    def broken(*args: Any) -> Any:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(services.sessions, "reply", broken)
    page = twilio.page(phone.gather(first.next_url("1"), digits="1"))
    assert page.hangup and "对不起" in page.says[0]


def test_a_misconfigured_dialer_is_a_503_naming_the_setting(
    database_url: str, engine: Engine
) -> None:
    settings = twilio_settings(database_url)
    del settings.sections["dialers"]["twilio"]["auth_token"]  # type: ignore[attr-defined]
    env = os.environ.pop("TWILIO_AUTH_TOKEN", None)
    try:
        with client_for(create_app(settings, engine=engine)) as c:
            response = c.post("/twilio/voice/1", content=b"CallSid=CA1")
    finally:
        if env is not None:
            os.environ["TWILIO_AUTH_TOKEN"] = env
    assert response.status_code == 503 and "auth_token" in response.text
