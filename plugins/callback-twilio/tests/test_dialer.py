"""TwilioDialer against the fake REST API: what it sends, what it returns, how it fails."""

from __future__ import annotations

import base64
import socket
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from callback.dialing import CallEvent, CallRequest, EventKind, Pacing
from callback.errors import ConfigError
from callback_twilio import (
    DialRejected,
    RetryableDialError,
    TwilioConfigError,
    TwilioDialer,
)
from callback_twilio.dialer import (
    DEFAULT_RETRY_AFTER_5XX,
    DEFAULT_RETRY_AFTER_429,
    parse_retry_after,
)
from callback_twilio.testing import DEFAULT_FROM, DEFAULT_PUBLIC_BASE_URL, FakeTwilioAPI

NOW = datetime(2025, 3, 6, 2, 30, tzinfo=UTC)  # the clock of conftest's dialer
PUBLIC = DEFAULT_PUBLIC_BASE_URL

CITIZEN = "+8613800000001"


def call(attempt_id: int = 7, to: str = CITIZEN, **kwargs: object) -> CallRequest:
    return CallRequest(attempt_id, to, **kwargs)


# -- start ---------------------------------------------------------------------------------


def test_start_returns_the_call_sid_twilio_created(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call())
    assert sid.startswith("CA") and len(sid) == 34
    assert list(api.calls) == [sid]
    assert api.calls[sid]["status"] == "queued"


def test_start_sends_the_webhooks_and_call_parameters(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call(ring_timeout=25))
    request = api.created_params(sid)
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{api.account_sid}/Calls.json"
    assert request.form == {
        "To": [CITIZEN],
        "From": [DEFAULT_FROM],
        "Url": [f"{PUBLIC}/twilio/voice/7"],
        "Method": ["POST"],
        "StatusCallback": [f"{PUBLIC}/twilio/status/7"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
        "MachineDetection": ["Enable"],
        "AsyncAmd": ["true"],
        "AsyncAmdStatusCallback": [f"{PUBLIC}/twilio/amd/7"],
        "AsyncAmdStatusCallbackMethod": ["POST"],
    }


def test_start_authenticates_with_the_account_sid_and_token(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    dialer.start(call())
    [request] = api.requests
    expected = base64.b64encode(f"{api.account_sid}:{api.auth_token}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.username == api.account_sid


def test_start_reports_queued_to_the_sink(dialer: TwilioDialer, events: list[CallEvent]) -> None:
    sid = dialer.start(call())
    assert events == [CallEvent(7, sid, EventKind.QUEUED, NOW, {"CallStatus": "queued"})]


def test_an_extension_is_keyed_after_a_pause_and_skips_machine_detection(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call(extension="8001"))
    request = api.created_params(sid)
    assert request.param("SendDigits") == "ww8001"
    assert request.param("MachineDetection") is None
    assert request.param("AsyncAmd") is None
    # No verdict will come, and the webhooks' URLs say so (see test_webhooks).
    assert request.param("Url") == f"{PUBLIC}/twilio/voice/7?machine_detection=off"
    assert request.param("StatusCallback") == f"{PUBLIC}/twilio/status/7?machine_detection=off"


def test_the_call_requests_caller_id_wins_over_the_settings(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call(caller_id="+8657187654321"))
    assert api.created_params(sid).param("From") == "+8657187654321"


def test_the_ring_timeout_is_capped_by_the_settings(api: FakeTwilioAPI) -> None:
    settings = api.settings(ring_timeout=20)
    with closing(TwilioDialer(settings, lambda e: None)) as dialer:
        sid = dialer.start(call(ring_timeout=45))
    assert api.created_params(sid).param("Timeout") == "20"


def test_machine_detection_can_be_turned_off(api: FakeTwilioAPI) -> None:
    with closing(TwilioDialer(api.settings(machine_detection="off"), lambda e: None)) as dialer:
        sid = dialer.start(call())
    request = api.created_params(sid)
    assert request.param("MachineDetection") is None
    assert request.param("AsyncAmdStatusCallback") is None
    assert request.param("Url") == f"{PUBLIC}/twilio/voice/7?machine_detection=off"


def test_detect_message_end_and_its_timeout_are_passed_on(api: FakeTwilioAPI) -> None:
    settings = api.settings(machine_detection="DetectMessageEnd", machine_detection_timeout=10)
    with closing(TwilioDialer(settings, lambda e: None)) as dialer:
        sid = dialer.start(call())
    request = api.created_params(sid)
    assert request.param("MachineDetection") == "DetectMessageEnd"
    assert request.param("MachineDetectionTimeout") == "10"


def test_an_api_key_authenticates_instead_of_the_auth_token() -> None:
    with FakeTwilioAPI(api_keys={"SK" + "1" * 32: "key-secret"}) as api:
        settings = api.settings(api_key="SK" + "1" * 32, api_secret="key-secret")
        with closing(TwilioDialer(settings, lambda e: None)) as dialer:
            dialer.start(call())
        [request] = api.requests
        assert request.username == "SK" + "1" * 32
        # Still the account's calls: the key authenticates, the path names the account.
        assert request.path.startswith(f"/2010-04-01/Accounts/{api.account_sid}/")


def test_the_client_is_built_lazily(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    assert dialer._client is None
    dialer.start(call())
    assert dialer._client is not None


def test_an_injected_client_is_used(api: FakeTwilioAPI, events: list[CallEvent]) -> None:
    # Settings point nowhere; only the injected client knows the fake.
    settings = api.settings(api_base_url="http://127.0.0.1:9")
    with closing(TwilioDialer(settings, events.append, client=api.client())) as dialer:
        sid = dialer.start(call())
    assert sid in api.calls


# -- failures ------------------------------------------------------------------------------


def test_429_is_retryable_after_twilios_retry_after(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    api.fail_next(1, 429, retry_after=7)
    with pytest.raises(RetryableDialError) as caught:
        dialer.start(call())
    assert caught.value.retry_after == 7.0
    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert caught.value.maybe_placed is False
    assert events == []
    assert api.calls == {}


def test_429_without_retry_after_waits_one_call_slot(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    api.fail_next(1, 429)
    with pytest.raises(RetryableDialError) as caught:
        dialer.start(call())
    assert caught.value.retry_after == DEFAULT_RETRY_AFTER_429


def test_retry_after_as_an_http_date_counts_from_the_clock(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    api.fail_next(1, 429, retry_after=format_datetime(NOW + timedelta(seconds=30), usegmt=True))
    with pytest.raises(RetryableDialError) as caught:
        dialer.start(call())
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(api: FakeTwilioAPI, dialer: TwilioDialer, status: int) -> None:
    api.fail_next(1, status)
    with pytest.raises(RetryableDialError) as caught:
        dialer.start(call())
    assert caught.value.status == status
    assert caught.value.retry_after == DEFAULT_RETRY_AFTER_5XX


def test_503_honours_retry_after_too(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    api.fail_next(1, 503, retry_after="120")
    with pytest.raises(RetryableDialError) as caught:
        dialer.start(call())
    assert caught.value.retry_after == 120.0


def test_the_call_goes_through_once_the_failures_are_over(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    api.fail_next(2, 429, retry_after=1)
    for _ in range(2):
        with pytest.raises(RetryableDialError):
            dialer.start(call())
    sid = dialer.start(call())
    assert [r.status for r in api.requests] == [429, 429, 201]
    assert list(api.calls) == [sid]


def test_an_invalid_number_is_rejected_as_wrong_number(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    with pytest.raises(DialRejected) as caught:
        dialer.start(call(to="+86138"))
    [event] = events
    assert caught.value.event == event
    assert (event.attempt_id, event.provider_call_id, event.kind) == (7, "", EventKind.WRONG_NUMBER)
    assert event.detail["ErrorCode"] == 21211
    assert event.detail["HttpStatus"] == 400


def test_other_refusals_are_reported_as_failed(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    api.reject_number(CITIZEN, code=13227, message="Geo restrictions on the carrier")
    with pytest.raises(DialRejected):
        dialer.start(call())
    [event] = events
    assert event.kind is EventKind.FAILED
    assert event.detail["ErrorCode"] == 13227


def test_a_refusal_message_never_carries_the_full_number(
    api: FakeTwilioAPI, dialer: TwilioDialer, events: list[CallEvent]
) -> None:
    api.reject_number(CITIZEN)  # Twilio quotes the number in its message
    with pytest.raises(DialRejected) as caught:
        dialer.start(call())
    assert CITIZEN not in str(caught.value)
    assert CITIZEN[1:] not in str(caught.value)
    assert CITIZEN not in events[0].detail["ErrorMessage"]


def test_a_wrong_auth_token_is_a_configuration_error_not_a_failed_call(
    api: FakeTwilioAPI, events: list[CallEvent]
) -> None:
    settings = api.settings(auth_token="not-the-token")
    with closing(TwilioDialer(settings, events.append)) as dialer:
        with pytest.raises(TwilioConfigError, match="HTTP 401"):
            dialer.start(call())
    assert events == []


def test_an_unverified_caller_id_is_a_configuration_error(events: list[CallEvent]) -> None:
    with FakeTwilioAPI(caller_ids=["+8657100000000"]) as api:
        with closing(TwilioDialer(api.settings(), events.append)) as dialer:
            with pytest.raises(TwilioConfigError, match="21210"):
                dialer.start(call())
    assert events == []


def test_an_unreachable_api_is_retryable_and_the_call_was_not_placed(
    events: list[CallEvent],
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    # Nothing listens on the port now: the connection is refused at once.
    with FakeTwilioAPI() as api:
        settings = api.settings(api_base_url=f"http://127.0.0.1:{port}")
    with closing(TwilioDialer(settings, events.append)) as dialer:
        with pytest.raises(RetryableDialError) as caught:
            dialer.start(call())
    assert caught.value.maybe_placed is False
    assert caught.value.retry_after == DEFAULT_RETRY_AFTER_5XX
    assert events == []


def test_an_answer_that_never_comes_may_mean_the_call_was_placed(
    api: FakeTwilioAPI, events: list[CallEvent]
) -> None:
    # Twilio created the call and its answer was lost (held back here past the timeout).
    api.stall_next(1.0)
    with closing(TwilioDialer(api.settings(http_timeout=0.2), events.append)) as dialer:
        with pytest.raises(RetryableDialError) as caught:
            dialer.start(call())
    assert caught.value.maybe_placed is True
    assert len(api.calls) == 1 and events == []  # no SID came back, so no event either


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("Thu, 06 Mar 2025 02:31:00 GMT", 60.0),
        ("Thu, 06 Mar 2025 02:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# -- status, hangup, pacing ------------------------------------------------------------------


def test_status_reconciles_a_call_that_was_queued(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    sid = dialer.start(call())
    event = dialer.status(sid)
    assert event is not None
    assert (event.attempt_id, event.provider_call_id, event.kind) == (7, sid, EventKind.QUEUED)


def test_status_reconciles_a_completed_call_with_its_duration(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call())
    api.set_call(sid, "completed", answered_by="human", duration="93")
    event = dialer.status(sid)
    assert event is not None
    assert event.kind is EventKind.COMPLETED
    assert event.detail == {
        "CallStatus": "completed",
        "Source": "rest",
        "AnsweredBy": "human",
        "CallDuration": 93,
    }
    assert event.at == NOW  # the fake's end_time


@pytest.mark.parametrize(
    ("status", "answered_by", "kind"),
    [
        ("ringing", None, EventKind.RINGING),
        ("in-progress", None, EventKind.ANSWERED),
        ("in-progress", "machine_start", EventKind.MACHINE),
        ("busy", None, EventKind.BUSY),
        ("no-answer", None, EventKind.NO_ANSWER),
        ("failed", None, EventKind.FAILED),
    ],
)
def test_status_maps_every_state(
    api: FakeTwilioAPI, dialer: TwilioDialer, status: str, answered_by: str | None, kind: EventKind
) -> None:
    sid = dialer.start(call())
    api.set_call(sid, status, answered_by=answered_by)
    event = dialer.status(sid)
    assert event is not None and event.kind is kind


def test_status_after_a_restart_takes_the_attempt_from_the_caller(api: FakeTwilioAPI) -> None:
    with closing(TwilioDialer(api.settings(), lambda e: None)) as before_crash:
        sid = before_crash.start(call(attempt_id=41))
    with closing(TwilioDialer(api.settings(), lambda e: None)) as after_crash:
        event = after_crash.status(sid, attempt_id=41)
        unknown_attempt = after_crash.status(sid)
    assert event is not None and event.attempt_id == 41
    assert unknown_attempt is not None and unknown_attempt.attempt_id == 0


def test_status_of_a_call_twilio_does_not_know_is_none(dialer: TwilioDialer) -> None:
    assert dialer.status("CA" + "f" * 32) is None


def test_status_when_twilio_is_overloaded_is_retryable(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call())
    api.fail_next(1, 503)
    with pytest.raises(RetryableDialError):
        dialer.status(sid)


def test_hangup_ends_a_call_and_a_second_hangup_is_harmless(
    api: FakeTwilioAPI, dialer: TwilioDialer
) -> None:
    sid = dialer.start(call())
    api.set_call(sid, "in-progress")
    dialer.hangup(sid)
    assert api.calls[sid]["status"] == "completed"
    assert api.requests[-1].param("Status") == "completed"
    dialer.hangup(sid)
    assert api.requests[-1].status == 400  # Twilio said 21220; the dialer let it be


def test_hangup_of_a_ringing_call_cancels_it(api: FakeTwilioAPI, dialer: TwilioDialer) -> None:
    sid = dialer.start(call())
    api.set_call(sid, "ringing")
    dialer.hangup(sid)
    assert api.calls[sid]["status"] == "canceled"


def test_pacing_defaults_to_twilios_one_call_per_second(dialer: TwilioDialer) -> None:
    assert dialer.pacing == Pacing(calls_per_second=1.0, max_concurrent=10)


def test_pacing_is_configurable(api: FakeTwilioAPI) -> None:
    settings = api.settings(calls_per_second=5, max_concurrent=40)
    assert TwilioDialer(settings, lambda e: None).pacing == Pacing(5.0, 40)


def test_the_dialer_is_interactive() -> None:
    assert TwilioDialer.interactive is True


# -- settings ------------------------------------------------------------------------------


def test_missing_settings_are_named(api: FakeTwilioAPI) -> None:
    settings = api.settings()
    del settings["from_number"]
    with pytest.raises(ConfigError, match=r"\[dialers.twilio\] from_number is required"):
        TwilioDialer(settings, lambda e: None, environ={})


def test_an_unknown_setting_is_an_error(api: FakeTwilioAPI) -> None:
    with pytest.raises(ConfigError, match="unknown setting.*ring_timout"):
        TwilioDialer(api.settings(ring_timout=30), lambda e: None)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("machine_detection", "Sometimes", "machine_detection"),
        ("ring_timeout", 900, "ring_timeout"),
        ("calls_per_second", "fast", "calls_per_second"),
        ("account_sid", "XX123", "starts with AC"),
        ("public_base_url", "callback.example.gov.cn", "http"),
        ("api_key", "SK1", "go together"),
        ("audio_root", "/srv/audio", "go together"),
        ("extension_pause", "p", "extension_pause"),
        ("webhook_keys", "KS1=secret", "webhook_keys: expected a table"),
        ("webhook_keys", {"KS1": ""}, "'KS1': expected a key id with its secret"),
    ],
)
def test_bad_settings_are_errors(
    api: FakeTwilioAPI, name: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TwilioDialer(api.settings(**{name: value}), lambda e: None, environ={})


def test_secrets_may_come_from_twilios_environment_variables(api: FakeTwilioAPI) -> None:
    settings = api.settings()
    del settings["account_sid"], settings["auth_token"]
    environ = {"TWILIO_ACCOUNT_SID": api.account_sid, "TWILIO_AUTH_TOKEN": api.auth_token}
    with closing(TwilioDialer(settings, lambda e: None, environ=environ)) as dialer:
        sid = dialer.start(call())
    assert sid in api.calls


def test_the_auth_token_may_stay_off_a_server_with_an_api_key_and_shared_keys(
    api: FakeTwilioAPI,
) -> None:
    settings = api.settings()
    del settings["auth_token"]
    with pytest.raises(ConfigError, match="auth_token is required"):
        TwilioDialer(settings, lambda e: None, environ={})
    keys = '{"KSnew": "new-secret"}'
    with pytest.raises(ConfigError, match="only when api_key signs the REST calls"):
        TwilioDialer(settings, lambda e: None, environ={"TWILIO_WEBHOOK_KEYS": keys})
    environ = {"TWILIO_WEBHOOK_KEYS": keys, "TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "s"}
    dialer = TwilioDialer(settings, lambda e: None, environ=environ)
    assert dialer.config.auth_token is None
    assert dialer.config.webhook_keys == {"KSnew": "new-secret"}
    with pytest.raises(ConfigError, match="TWILIO_WEBHOOK_KEYS: not a JSON object"):
        TwilioDialer(settings, lambda e: None, environ={**environ, "TWILIO_WEBHOOK_KEYS": "KS="})


def test_hangup_of_a_call_twilio_does_not_know_is_harmless(dialer: TwilioDialer) -> None:
    dialer.hangup("CA" + "f" * 32)


def test_an_unexpected_error_from_the_client_is_not_disguised(events: list[CallEvent]) -> None:
    class Broken:
        @property
        def calls(self) -> object:
            raise KeyError("bug")

    settings = {
        "account_sid": "AC1",
        "auth_token": "t",
        "from_number": DEFAULT_FROM,
        "public_base_url": PUBLIC,
    }
    dialer = TwilioDialer(settings, events.append, client=Broken())
    with pytest.raises(KeyError, match="bug"):
        dialer.start(call())
    assert events == []
