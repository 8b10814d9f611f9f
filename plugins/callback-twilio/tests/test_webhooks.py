"""A whole IVR survey through signed webhooks and TwiML, as Twilio would drive it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from callback.dialing import (
    ANSWERED_BY_UNKNOWN,
    CallEvent,
    CallRequest,
    Conversation,
    EventKind,
    Turn,
)
from callback_twilio import TwilioDialer
from callback_twilio.signatures import SIGNATURE_HEADER, public_url
from callback_twilio.testing import (
    DEFAULT_PUBLIC_BASE_URL,
    FakeTwilioAPI,
    TwilioPhone,
    WebhookRequest,
    parse_twiml,
    walk_survey,
)

Q1 = "您办理的事项是否只跑了一次？是请按1，否请按2。"
Q2 = "您对办理结果是否满意？满意请按1，不满意请按2。"
REPEAT = "对不起，没有听清。"
THANKS = "感谢您的配合，再见。"


class TwoQuestions(Conversation):
    """A stand-in for the core's survey session: two menu questions, one repeat on silence."""

    def __init__(self) -> None:
        self.answers: dict[int, list[str]] = {}
        self.replies: list[tuple[int, str, str | None]] = []

    def begin(self, attempt_id: int) -> Turn:
        self.answers[attempt_id] = []
        return Turn("您好，这里是政务服务回访。", expect="")

    def reply(self, attempt_id: int, digits: str, speech: str | None = None) -> Turn:
        self.replies.append((attempt_id, digits, speech))
        answers = self.answers.get(attempt_id)
        if answers is None:
            return Turn(THANKS, expect="", hangup=True)
        if digits in ("1", "2"):
            answers.append(digits)
        elif digits == "" and len(self.replies) > 1:
            return Turn(REPEAT + (Q1 if not answers else Q2))
        if len(answers) == 0:
            return Turn(Q1)
        if len(answers) == 1:
            return Turn(Q2)
        return Turn(THANKS, expect="", hangup=True)


class App:
    """What the core's web app does for /twilio/<kind>/<attempt_id>, minus the framework."""

    def __init__(self, dialer: TwilioDialer, conversation: Conversation | None) -> None:
        self.dialer = dialer
        self.conversation = conversation

    def handle(self, path: str, params: dict[str, str], signature: str | None) -> tuple[int, str]:
        parts = urlsplit(path)
        url = public_url(self.dialer.config.public_base_url, parts.path, parts.query)
        if not self.dialer.verify(url, params, signature):
            return 403, "bad signature"
        _, _, kind, attempt = parts.path.split("/")
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        twiml = self.dialer.handle_webhook(kind, int(attempt), params, self.conversation, query)
        return (204, "") if twiml is None else (200, twiml)

    def send(self, request: WebhookRequest) -> str:
        status, body = self.handle(request.path, request.params, request.signature)
        assert status == 200, body
        return body


def phone_for(
    api: FakeTwilioAPI, dialer: TwilioDialer, attempt_id: int = 7, **call: Any
) -> TwilioPhone:
    """Start a call through the dialer and return Twilio's side of it."""
    sid = dialer.start(CallRequest(attempt_id, "+8613800000001", **call))
    return api.phone(sid)


def test_a_survey_runs_from_answer_to_goodbye(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    conversation = TwoQuestions()
    app = App(dialer, conversation)
    pages = walk_survey(app.send, phone_for(api, dialer), ["1", "2"])
    assert [page.says for page in pages] == [
        ["您好，这里是政务服务回访。"],
        [Q1],
        [Q2],
        [THANKS],
    ]
    assert pages[-1].hangup
    assert conversation.answers[7] == ["1", "2"]
    assert conversation.replies == [(7, "", None), (7, "1", None), (7, "2", None)]


def test_every_gather_posts_back_to_the_attempts_gather_url(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    pages = walk_survey(App(dialer, TwoQuestions()).send, phone_for(api, dialer, 12), ["1", "1"])
    url = f"{DEFAULT_PUBLIC_BASE_URL}/twilio/gather/12"
    for page in pages[1:3]:
        assert page.gather is not None and page.gather["action"] == url
        assert page.redirect == url


def test_silence_reaches_the_gather_url_without_digits(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    conversation = TwoQuestions()
    pages = walk_survey(App(dialer, conversation).send, phone_for(api, dialer), [None, "1", "2"])
    assert pages[2].says == [REPEAT + Q1]
    assert conversation.replies[1] == (7, "", None)
    assert conversation.answers[7] == ["1", "2"]


def test_keys_beyond_num_digits_are_not_sent(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    conversation = TwoQuestions()
    walk_survey(App(dialer, conversation).send, phone_for(api, dialer), ["19", "2#"])
    assert conversation.answers[7] == ["1", "2"]


def test_an_unknown_attempt_gets_the_goodbye(dialer: TwilioDialer) -> None:
    phone = TwilioPhone.for_attempt(DEFAULT_PUBLIC_BASE_URL, 99, dialer.config.auth_token)
    [page] = walk_survey(App(dialer, None).send, phone, ["1"])
    assert page.hangup
    assert "再见" in page.says[0]


def test_a_forged_request_is_refused(dialer: TwilioDialer) -> None:
    phone = TwilioPhone.for_attempt(DEFAULT_PUBLIC_BASE_URL, 7, "a-guessed-token")
    request = phone.voice()
    assert (
        App(dialer, TwoQuestions()).handle(request.path, request.params, request.signature)[0]
        == 403
    )


def test_status_and_amd_callbacks_report_events_and_return_no_twiml(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    phone = phone_for(api, dialer)
    app = App(dialer, TwoQuestions())
    events.clear()
    for request in (
        phone.status("initiated"),
        phone.status("ringing"),
        phone.status("in-progress"),
        phone.amd("machine_start"),
        phone.status("completed", duration=31, answered_by="machine_start"),
    ):
        assert app.handle(request.path, request.params, request.signature) == (204, "")
    assert [e.kind for e in events] == [
        EventKind.QUEUED,
        EventKind.RINGING,
        EventKind.ANSWERED,
        EventKind.MACHINE,
        EventKind.MACHINE,
        EventKind.COMPLETED,
    ]
    assert {e.provider_call_id for e in events} == {phone.call_sid}
    assert {e.attempt_id for e in events} == {7}
    assert events[-1].detail["CallDuration"] == 31
    # Status callbacks are numbered in the order Twilio sent them; AMD callbacks are not.
    sequence = [e.detail.get("SequenceNumber") for e in events]
    assert sequence == [0, 1, 2, None, 3, 3]


def test_the_voice_webhook_reports_the_answer(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    phone = phone_for(api, dialer)
    events.clear()
    App(dialer, TwoQuestions()).send(phone.voice())
    assert [(e.kind, e.provider_call_id) for e in events] == [(EventKind.ANSWERED, phone.call_sid)]


def test_an_answer_waits_for_detection_only_when_detection_was_asked_for(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    phone = phone_for(api, dialer)
    events.clear()
    App(dialer, TwoQuestions()).send(phone.voice())
    assert [e.answered_by for e in events] == [None]  # the AMD callback will say
    off: list[CallEvent] = []
    with closing(TwilioDialer(api.settings(machine_detection="off"), off.append)) as quiet:
        phone = phone_for(api, quiet)
        app = App(quiet, TwoQuestions())
        app.send(phone.voice())
        request = phone.status("in-progress")
        assert app.handle(request.path, request.params, request.signature) == (204, "")
    answers = [e for e in off if e.kind is EventKind.ANSWERED]
    assert [e.answered_by for e in answers] == [ANSWERED_BY_UNKNOWN] * 2


def test_an_answer_after_keying_an_extension_is_one_nobody_can_tell(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    # Detection is on, but not for a call that keys an extension; the web app may be another
    # process than the one that placed the call, so the call's URLs must say so.
    phone = phone_for(api, dialer, extension="8001")
    assert phone.voice_url.endswith("/twilio/voice/7?machine_detection=off")
    assert phone.amd_url is None
    events.clear()
    app = App(dialer, TwoQuestions())
    app.send(phone.voice())
    request = phone.status("in-progress")
    assert app.handle(request.path, request.params, request.signature) == (204, "")
    answers = [e for e in events if e.kind is EventKind.ANSWERED]
    assert [e.answered_by for e in answers] == [ANSWERED_BY_UNKNOWN] * 2
    # Only what the URL says counts: another value, or none, waits for a verdict as before.
    params = phone.voice().params
    for query in ({"machine_detection": "on"}, None):
        assert [e.answered_by for e in dialer.webhook_events("voice", 7, params, query)] == [None]


def test_the_no_detection_query_is_signed_with_the_url(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    # Anyone who could add "?machine_detection=off" to a signed request could have a check
    # handed off; Twilio signs the whole URL, so a request with it added is refused.
    phone = phone_for(api, dialer)
    request = phone.voice()
    forged = request.path + "?machine_detection=off"
    assert App(dialer, TwoQuestions()).handle(forged, request.params, request.signature)[0] == 403


def test_a_failed_call_to_a_nonexistent_number_is_a_wrong_number(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    phone = phone_for(api, dialer)
    events.clear()
    request = phone.status("failed", sip_response_code=404)
    App(dialer, None).handle(request.path, request.params, request.signature)
    assert [e.kind for e in events] == [EventKind.WRONG_NUMBER]


# -- over real HTTP, behind a (pretend) proxy --------------------------------------------------


@pytest.fixture
def local_server(dialer: TwilioDialer) -> Iterator[tuple[str, TwoQuestions]]:
    """Serve the App on 127.0.0.1: Twilio signed the public https URL, we see http://127…"""
    conversation = TwoQuestions()
    app = App(dialer, conversation)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, body = app.handle(self.path, form, self.headers.get(SIGNATURE_HEADER))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", conversation
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_survey_over_http_behind_a_proxy(
    api: FakeTwilioAPI, dialer: TwilioDialer, local_server: tuple[str, TwoQuestions]
) -> None:
    base, conversation = local_server
    send: Callable[[WebhookRequest], str] = lambda request: request.send_to(base)[1]  # noqa: E731
    pages = walk_survey(send, phone_for(api, dialer), ["2", "1"])
    assert pages[-1].says == [THANKS]
    assert conversation.answers[7] == ["2", "1"]


def test_a_tampered_request_over_http_is_refused(
    api: FakeTwilioAPI, dialer: TwilioDialer, local_server: tuple[str, TwoQuestions]
) -> None:
    base, _ = local_server
    request = phone_for(api, dialer).voice()
    tampered = WebhookRequest(
        request.url, {**request.params, "To": "+8613999999999"}, request.headers
    )
    assert tampered.send_to(base) == (403, "bad signature")
    assert request.send_to(base)[0] == 200


def test_parse_twiml_rejects_what_is_not_twiml() -> None:
    with pytest.raises(ValueError, match="not XML"):
        parse_twiml("<Response>")
    with pytest.raises(ValueError, match="<Response>"):
        parse_twiml("<html/>")


def test_speech_reaches_the_conversation(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    conversation = TwoQuestions()
    app = App(dialer, conversation)
    phone = phone_for(api, dialer)
    app.send(phone.voice())
    app.send(phone.gather(f"{DEFAULT_PUBLIC_BASE_URL}/twilio/gather/7", speech="满意"))
    assert conversation.replies == [(7, "", "满意")]
