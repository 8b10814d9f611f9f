"""Twilio's CallStatus, AnsweredBy and SIP codes as CallEvents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callback.dialing import EventKind
from callback_twilio.mapping import (
    event_detail,
    event_from_call,
    events_from_webhook,
    kind_for_answered_by,
    kinds_for_status,
    parse_timestamp,
)

NOW = datetime(2025, 3, 6, 2, 30, tzinfo=UTC)
K = EventKind


@pytest.mark.parametrize(
    ("call_status", "expected"),
    [
        ("queued", [K.QUEUED]),
        ("initiated", [K.QUEUED]),
        ("ringing", [K.RINGING]),
        ("in-progress", [K.ANSWERED]),
        ("completed", [K.COMPLETED]),
        ("busy", [K.BUSY]),
        ("no-answer", [K.NO_ANSWER]),
        ("failed", [K.FAILED]),
        ("canceled", [K.FAILED]),
        ("something-new", []),
        ("", []),
    ],
)
def test_call_status_table(call_status: str, expected: list[EventKind]) -> None:
    assert kinds_for_status(call_status) == expected


@pytest.mark.parametrize(
    ("answered_by", "expected"),
    [
        ("human", K.ANSWERED),
        ("machine_start", K.MACHINE),
        ("machine_end_beep", K.MACHINE),
        ("machine_end_silence", K.MACHINE),
        ("machine_end_other", K.MACHINE),
        ("fax", K.MACHINE),
        ("unknown", K.ANSWERED),
        ("a_value_twilio_adds_later", K.ANSWERED),
    ],
)
def test_answered_by_table(answered_by: str, expected: EventKind) -> None:
    assert kind_for_answered_by(answered_by) is expected


@pytest.mark.parametrize(
    ("answered_by", "expected"),
    [
        (None, [K.ANSWERED]),
        ("human", [K.ANSWERED]),
        ("unknown", [K.ANSWERED]),
        ("machine_start", [K.MACHINE]),
        ("fax", [K.MACHINE]),
    ],
)
def test_in_progress_is_refined_by_answered_by(
    answered_by: str | None, expected: list[EventKind]
) -> None:
    assert kinds_for_status("in-progress", answered_by) == expected


def test_completed_by_a_machine_reports_machine_then_completed() -> None:
    assert kinds_for_status("completed", "machine_end_beep") == [K.MACHINE, K.COMPLETED]
    assert kinds_for_status("completed", "human") == [K.COMPLETED]


@pytest.mark.parametrize("sip", ["404", "410", "484", "604", 404])
def test_failed_with_a_nonexistent_number_sip_code_is_wrong_number(sip: object) -> None:
    assert kinds_for_status("failed", sip_response_code=sip) == [K.WRONG_NUMBER]


@pytest.mark.parametrize("code", ["13224", "21211", "21214", "21217", "13223", "21401"])
def test_failed_with_an_invalid_number_error_code_is_wrong_number(code: str) -> None:
    assert kinds_for_status("failed", error_code=code) == [K.WRONG_NUMBER]


@pytest.mark.parametrize(("sip", "code"), [("500", None), ("503", "32009"), (None, None)])
def test_failed_for_other_reasons_stays_failed(sip: str | None, code: str | None) -> None:
    assert kinds_for_status("failed", sip_response_code=sip, error_code=code) == [K.FAILED]


def test_a_sip_404_does_not_turn_busy_into_wrong_number() -> None:
    assert kinds_for_status("busy", sip_response_code="404") == [K.BUSY]


def test_detail_keeps_twilio_names_and_turns_codes_into_ints() -> None:
    detail = event_detail(
        {
            "CallStatus": "failed",
            "AnsweredBy": "human",
            "CallDuration": "42",
            "SipResponseCode": "404",
            "ErrorCode": "13224",
            "From": "+8657188880000",
            "To": "+8613800000001",
            "Empty": "",
        }
    )
    assert detail == {
        "CallStatus": "failed",
        "AnsweredBy": "human",
        "CallDuration": 42,
        "SipResponseCode": 404,
        "ErrorCode": 13224,
    }


def test_detail_accepts_parse_qs_lists() -> None:
    assert event_detail({"CallStatus": ["busy"], "SipResponseCode": ["486"]}) == {
        "CallStatus": "busy",
        "SipResponseCode": 486,
    }


def test_status_callback_becomes_an_event_with_its_attempt_and_sid() -> None:
    params = {"CallSid": "CA1", "CallStatus": "ringing", "SequenceNumber": "1"}
    [event] = events_from_webhook("status", params, attempt_id=7, received_at=NOW)
    assert (event.attempt_id, event.provider_call_id, event.kind) == (7, "CA1", K.RINGING)
    assert event.at == NOW
    assert event.detail == {"CallStatus": "ringing", "SequenceNumber": 1}


def test_status_callback_timestamp_wins_over_arrival_time() -> None:
    params = {
        "CallSid": "CA1",
        "CallStatus": "busy",
        "Timestamp": "Thu, 06 Mar 2025 02:29:50 +0000",
    }
    [event] = events_from_webhook("status", params, 7, NOW)
    assert event.at == datetime(2025, 3, 6, 2, 29, 50, tzinfo=UTC)


def test_an_unreadable_timestamp_falls_back_to_arrival_time() -> None:
    params = {"CallSid": "CA1", "CallStatus": "busy", "Timestamp": "yesterday-ish"}
    [event] = events_from_webhook("status", params, 7, NOW)
    assert event.at == NOW


def test_completed_status_with_machine_yields_two_events_in_order() -> None:
    params = {"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "machine_start"}
    kinds = [e.kind for e in events_from_webhook("status", params, 7, NOW)]
    assert kinds == [K.MACHINE, K.COMPLETED]


def test_failed_status_callback_with_sip_404_is_wrong_number() -> None:
    params = {"CallSid": "CA1", "CallStatus": "failed", "SipResponseCode": "404"}
    [event] = events_from_webhook("status", params, 7, NOW)
    assert event.kind is K.WRONG_NUMBER
    assert event.detail["SipResponseCode"] == 404


def test_amd_callback_reports_machine() -> None:
    params = {"CallSid": "CA1", "AnsweredBy": "machine_start", "MachineDetectionDuration": "2400"}
    [event] = events_from_webhook("amd", params, 7, NOW)
    assert event.kind is K.MACHINE
    assert event.detail == {"AnsweredBy": "machine_start", "MachineDetectionDuration": 2400}


def test_amd_callback_for_a_human_reports_answered() -> None:
    [event] = events_from_webhook("amd", {"CallSid": "CA1", "AnsweredBy": "human"}, 7, NOW)
    assert event.kind is K.ANSWERED


def test_voice_webhook_reports_answered() -> None:
    params = {"CallSid": "CA1", "CallStatus": "in-progress"}
    assert [e.kind for e in events_from_webhook("voice", params, 7, NOW)] == [K.ANSWERED]
    assert [e.kind for e in events_from_webhook("voice", {"CallSid": "CA1"}, 7, NOW)] == [
        K.ANSWERED
    ]


def test_gather_webhook_reports_no_event() -> None:
    params = {"CallSid": "CA1", "CallStatus": "in-progress", "Digits": "1"}
    assert events_from_webhook("gather", params, 7, NOW) == []


def test_unknown_webhook_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown Twilio webhook 'recording'"):
        events_from_webhook("recording", {}, 7, NOW)


def test_parse_timestamp_rejects_naive_and_empty() -> None:
    assert parse_timestamp("Thu, 06 Mar 2025 02:29:50 -0000") is None  # RFC 2822: unknown zone
    assert parse_timestamp("") is None
    assert parse_timestamp(None) is None


def test_event_from_a_fetched_call_carries_status_answered_by_and_duration() -> None:
    call = {
        "sid": "CA1",
        "status": "completed",
        "answered_by": "human",
        "duration": "93",
        "end_time": "Thu, 06 Mar 2025 02:25:00 +0000",
    }
    event = event_from_call(call, 7, NOW)
    assert event is not None
    assert event.kind is K.COMPLETED
    assert event.at == datetime(2025, 3, 6, 2, 25, tzinfo=UTC)
    assert event.detail == {
        "CallStatus": "completed",
        "Source": "rest",
        "AnsweredBy": "human",
        "CallDuration": 93,
    }


def test_a_fetched_call_answered_by_a_machine_and_completed_stays_final() -> None:
    call = {"sid": "CA1", "status": "completed", "answered_by": "machine_start"}
    event = event_from_call(call, 7, NOW)
    assert event is not None and event.kind is K.COMPLETED
    assert event.at == NOW


def test_a_fetched_call_in_an_unknown_state_says_nothing() -> None:
    assert event_from_call({"sid": "CA1", "status": "teleported"}, 7, NOW) is None
