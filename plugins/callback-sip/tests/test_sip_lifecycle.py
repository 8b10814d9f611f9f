"""Tests for starting and stopping the SIP stack: clean errors, one endpoint per process."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from callback.dialing import CallRequest, DialRejected, EventKind, RetryableDialError
from callback.errors import CallbackError, ConfigError

from sipp_support import LOOPBACK, EventLog, free_udp_ports, needs_pjsua2

pytestmark = needs_pjsua2

REQUEST = CallRequest(attempt_id=1, to="+8613812345678", ring_timeout=5)


def test_a_sip_port_in_use_is_a_clean_error_naming_it(make_dialer: Any, events: EventLog) -> None:
    port = free_udp_ports(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOOPBACK, port))
        dialer = make_dialer(events, sip_port=port)

        with pytest.raises(ConfigError, match=f"cannot open SIP UDP port 127.0.0.1:{port}"):
            dialer.start(REQUEST)


def test_open_starts_the_stack_early_and_once(make_dialer: Any, events: EventLog) -> None:
    port = free_udp_ports(1)
    dialer = make_dialer(events, server=f"{LOOPBACK}:{free_udp_ports(1)}", sip_port=port)

    dialer.open()
    dialer.open()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError):
            probe.bind((LOOPBACK, port))  # PJSIP holds the SIP port already
    dialer.close()


def test_an_unknown_codec_is_a_clean_error_listing_the_known_ones(
    make_dialer: Any, events: EventLog
) -> None:
    dialer = make_dialer(events, codecs=["AMR-WB"])

    with pytest.raises(ConfigError, match="PCMA/8000/1"):
        dialer.start(REQUEST)


def test_only_one_sip_dialer_runs_in_a_process(make_dialer: Any, events: EventLog) -> None:
    first = make_dialer(events, server=f"{LOOPBACK}:{free_udp_ports(1)}")
    first.start(REQUEST)
    second = make_dialer(events)

    with pytest.raises(ConfigError, match="only one SIP dialer"):
        second.start(REQUEST)

    first.close()
    second.start(REQUEST)  # the endpoint is free again once the first one closed


def test_closing_reports_the_end_of_a_call_still_waiting_for_a_response(
    make_dialer: Any, events: EventLog
) -> None:
    dialer = make_dialer(events, server=f"{LOOPBACK}:{free_udp_ports(1)}")
    call_id = dialer.start(REQUEST)
    events.wait_kind(call_id, EventKind.QUEUED)

    dialer.close()

    final = events.of(call_id)[-1]
    assert final.kind == EventKind.FAILED  # nothing ever answered the INVITE
    assert final.detail["cancel_reason"] == "dialer-closing"
    with pytest.raises(CallbackError, match="closed"):
        dialer.start(REQUEST)


def test_a_number_that_cannot_be_dialled_is_rejected_as_a_wrong_number(
    make_dialer: Any, events: EventLog
) -> None:
    noon = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # 12:00 in Hangzhou
    dialer = make_dialer(events, clock=lambda: noon, server=f"{LOOPBACK}:{free_udp_ports(1)}")

    with pytest.raises(DialRejected) as rejected:
        dialer.start(CallRequest(attempt_id=2, to="12345"))

    assert events.events == [rejected.value.event]
    event = rejected.value.event
    assert (event.kind, event.provider_call_id, event.attempt_id) == (EventKind.WRONG_NUMBER, "", 2)
    assert "E.164" in event.detail["error"]
    assert event.at == noon


def test_starting_beyond_the_call_slots_asks_the_dispatcher_to_retry(
    make_dialer: Any, events: EventLog
) -> None:
    dialer = make_dialer(
        events, server=f"{LOOPBACK}:{free_udp_ports(1)}", max_concurrent=1, response_timeout=30
    )
    slots = dialer.config.pjsua_max_calls
    call_ids = [dialer.start(CallRequest(attempt_id=n, to="+8613812345678")) for n in range(slots)]

    with pytest.raises(RetryableDialError, match="call slots") as busy:
        dialer.start(CallRequest(attempt_id=99, to="+8613812345678"))

    assert busy.value.retry_after > 0 and not busy.value.maybe_placed
    dialer.close()
    assert all(events.of(call_id)[-1].kind == EventKind.FAILED for call_id in call_ids)
