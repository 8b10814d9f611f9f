"""Real calls from SipDialer to sipp on the loopback interface: every outcome a survey meets."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callback.dialing import CallRequest, EventKind, Turn

from sipp_support import (
    KEYPAD_PCAP_MAX_SECONDS,
    LOOPBACK,
    AudioTap,
    EventLog,
    ScriptedConversation,
    free_tcp_port,
    free_udp_ports,
    kinds,
    needs_sipp,
    write_keypad_pcap,
    write_tone_wav,
)

pytestmark = [needs_sipp, pytest.mark.sipp]

QUEUED, RINGING, ANSWERED = EventKind.QUEUED, EventKind.RINGING, EventKind.ANSWERED
NUMBER = "+8613812345678"


def survey(
    prompt: Path, goodbye_audio: str | None, goodbye: str = "感谢您的配合，再见。"
) -> ScriptedConversation:
    """Three questions as a service-callback survey asks them, then goodbye."""
    return ScriptedConversation(
        [
            Turn("您对办理结果满意吗？满意请按1，不满意请按2。", str(prompt), timeout_seconds=3),
            Turn(
                "为办这件事您跑了几次？请输入次数，按井号键结束。",
                audio=str(prompt),
                max_digits=3,
                finish_on_key="#",
                timeout_seconds=3,
            ),
            Turn("确认请按5。", audio=str(prompt), timeout_seconds=3),
            Turn(goodbye, audio=goodbye_audio, expect="", hangup=True),
        ]
    )


def test_an_answered_call_runs_the_survey_on_the_keypad_and_ends_with_bye(
    tmp_path: Path, sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    prompt = write_tone_wav(tmp_path / "prompt.wav", seconds=0.4)
    assert write_keypad_pcap(tmp_path / "keypad.pcap", "1 23#") < KEYPAD_PCAP_MAX_SECONDS
    peer = sipp("answer_keypad.xml", keys={"info_key": "5"})
    conversation = survey(prompt, goodbye_audio=str(prompt))
    dialer = make_dialer(events, conversation, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=7, to=NUMBER, ring_timeout=10))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert kinds(got) == [QUEUED, RINGING, ANSWERED, EventKind.COMPLETED]
    assert conversation.begun == [7]
    # "1" and "23#" as RFC 2833 events, "5" as SIP INFO; the finish key is not an answer.
    assert conversation.digits == ["1", "23", "5"], peer.messages()
    ringing, answered, completed = got[1], got[2], got[3]
    assert ringing.detail["sip_status"] == 180
    assert answered.detail["sip_status"] == 200
    assert answered.detail["ring_seconds"] >= 0.2  # the scenario rings for 200 ms
    detail = completed.detail
    assert detail["hangup_by"] == "dialer"
    assert detail["hangup_reason"] == "survey-finished"
    assert detail["survey_finished"] is True
    assert detail["turns"] == 4
    assert detail["dtmf"] == ["rfc2833", "sip-info"]
    assert detail["ring_seconds"] == answered.detail["ring_seconds"]
    assert detail["talk_seconds"] > 1.5  # four prompts and the keys in between
    assert detail["sip_call_id"] and all(e.detail.get("sip_call_id") for e in got[1:])
    assert all(e.attempt_id == 7 for e in got)
    assert all(e.at.utcoffset() == timedelta(0) for e in got)
    assert [e.at for e in got] == sorted(e.at for e in got)
    # The sink runs on the dialer's core threads, never on the PJSIP thread.
    assert "callback-sip" not in events.threads


def test_prompt_audio_reaches_the_called_party(
    tmp_path: Path, sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    prompt = write_tone_wav(tmp_path / "prompt.wav", seconds=0.4)
    write_keypad_pcap(tmp_path / "keypad.pcap", "1 23#")
    peer = sipp("answer_keypad.xml", keys={"info_key": "5"})
    try:
        tap = AudioTap(peer.media_port)
    except PermissionError:
        pytest.skip("reading the loopback interface needs root or CAP_NET_RAW")
    dialer = make_dialer(events, survey(prompt, goodbye_audio=str(prompt)), server=peer.address)

    try:
        call_id = dialer.start(CallRequest(attempt_id=8, to=NUMBER))
        events.wait_final(call_id)
        assert peer.wait() == 0, peer.messages()
    finally:
        tap.close()

    # Each prompt is 0.4 s of tone, 20 packets; barge-in cuts some short, the goodbye is whole.
    assert tap.packets > 50
    assert tap.loud_packets >= 20


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_turn_without_audio_is_spoken_with_synthesised_mandarin(
    tmp_path: Path, sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    prompt = write_tone_wav(tmp_path / "prompt.wav", seconds=0.4)
    write_keypad_pcap(tmp_path / "keypad.pcap", "1 23#")
    peer = sipp("answer_keypad.xml", keys={"info_key": "5"})
    conversation = survey(prompt, goodbye_audio=None, goodbye="再见。")
    dialer = make_dialer(events, conversation, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=9, to=NUMBER))
    completed = events.wait_final(call_id)[-1]

    assert peer.wait() == 0, peer.messages()
    assert completed.detail["survey_finished"] is True
    cached = list((tmp_path / "prompts").glob("cmn-*.wav"))
    assert len(cached) == 1  # the goodbye, rendered once into the prompt cache


def test_the_called_party_hanging_up_midway_completes_the_call_as_their_hang_up(
    tmp_path: Path, sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    prompt = write_tone_wav(tmp_path / "prompt.wav", seconds=0.4)
    write_keypad_pcap(tmp_path / "keypad.pcap", "1")
    peer = sipp("hang_up_midway.xml")
    conversation = survey(prompt, goodbye_audio=str(prompt))
    dialer = make_dialer(events, conversation, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=10, to=NUMBER))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert kinds(got) == [QUEUED, ANSWERED, EventKind.COMPLETED]
    assert conversation.digits == ["1"]
    detail = got[-1].detail
    assert detail["hangup_by"] == "callee"
    assert detail["survey_finished"] is False
    assert detail["turns"] == 2
    assert 0.5 < detail["talk_seconds"] < 5


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("486", "Busy Here", EventKind.BUSY),
        ("600", "Busy Everywhere", EventKind.BUSY),
        ("404", "Not Found", EventKind.WRONG_NUMBER),
        ("484", "Address Incomplete", EventKind.WRONG_NUMBER),
        ("604", "Does Not Exist Anywhere", EventKind.WRONG_NUMBER),
        ("480", "Temporarily Unavailable", EventKind.NO_ANSWER),
        ("408", "Request Timeout", EventKind.NO_ANSWER),
        ("503", "Service Unavailable", EventKind.FAILED),
    ],
)
def test_a_final_response_maps_to_its_outcome(
    status: str,
    reason: str,
    expected: EventKind,
    sipp: Any,
    make_dialer: Any,
    events: EventLog,
) -> None:
    peer = sipp("reject.xml", fill={"STATUS": status, "REASON": reason})
    dialer = make_dialer(events, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=11, to=NUMBER))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert kinds(got) == [QUEUED, expected]
    detail = got[-1].detail
    assert detail["sip_status"] == int(status)
    assert detail["sip_reason"] == reason
    assert detail["ending"] == "peer"
    assert 0 <= detail["ring_seconds"] < 2
    assert "talk_seconds" not in detail


def test_ringing_until_the_ring_timeout_cancels_and_is_no_answer(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    peer = sipp("ring_no_answer.xml")
    dialer = make_dialer(events, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=12, to=NUMBER, ring_timeout=1))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()  # sipp saw our CANCEL and the ACK of its 487
    assert kinds(got) == [QUEUED, RINGING, EventKind.NO_ANSWER]
    detail = got[-1].detail
    assert detail["sip_status"] == 487
    assert detail["ring_timeout"] is True
    assert detail["ending"] == "ring-timeout"
    assert 1.0 <= detail["ring_seconds"] < 2.0


def test_an_unreachable_peer_over_udp_fails_after_the_response_timeout(
    make_dialer: Any, events: EventLog
) -> None:
    silent = free_udp_ports(1)  # nothing listens; UDP hears no ICMP error, only silence
    dialer = make_dialer(events, server=f"{LOOPBACK}:{silent}", response_timeout=0.5)

    call_id = dialer.start(CallRequest(attempt_id=13, to=NUMBER))
    got = events.wait_final(call_id, timeout=5)

    assert kinds(got) == [QUEUED, EventKind.FAILED]
    detail = got[-1].detail
    assert detail["ending"] == "no-response"
    assert 0.5 <= detail["ring_seconds"] < 1.5


def test_an_unreachable_peer_over_tcp_fails_at_once(make_dialer: Any, events: EventLog) -> None:
    closed = free_tcp_port()
    dialer = make_dialer(events, server=f"{LOOPBACK}:{closed}", transport="tcp")

    call_id = dialer.start(CallRequest(attempt_id=14, to=NUMBER))
    got = events.wait_final(call_id, timeout=5)

    assert kinds(got)[-1] == EventKind.FAILED
    detail = got[-1].detail
    assert detail["ending"] == "transport"
    assert detail["sip_status"] == 503
    assert "refused" in detail["sip_reason"].lower()
    assert detail["ring_seconds"] < 1


def test_a_peer_that_never_rings_is_no_answer_at_the_ring_timeout(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    peer = sipp("trying_then_silence.xml")
    # 100 Trying proves the peer alive: the short response timeout must not call it unreachable.
    dialer = make_dialer(events, server=peer.address, response_timeout=0.3)

    call_id = dialer.start(CallRequest(attempt_id=18, to=NUMBER, ring_timeout=1))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert kinds(got) == [QUEUED, EventKind.NO_ANSWER]
    assert got[-1].detail["ending"] == "ring-timeout"
    assert got[-1].detail["ring_seconds"] >= 1.0


@pytest.mark.parametrize(
    ("password", "expected", "status"),
    [("s3cret", EventKind.BUSY, 486), ("wrong", EventKind.FAILED, 403)],
)
def test_digest_credentials_answer_the_trunks_challenge(
    password: str,
    expected: EventKind,
    status: int,
    sipp: Any,
    make_dialer: Any,
    events: EventLog,
) -> None:
    peer = sipp("auth_challenge.xml", keys={"username": "hz-callback", "password": "s3cret"})
    dialer = make_dialer(events, server=peer.address, username="hz-callback", password=password)

    call_id = dialer.start(CallRequest(attempt_id=19, to=NUMBER))
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert got[-1].kind == expected
    assert got[-1].detail["sip_status"] == status


def test_the_dialer_registers_with_credentials_and_unregisters_on_close(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    registrar = sipp("register.xml", keys={"username": "8001", "password": "s3cret"})
    silent = free_udp_ports(1)  # calls go to a trunk elsewhere; here nothing answers them
    dialer = make_dialer(
        events, server=f"{LOOPBACK}:{silent}", response_timeout=0.3, register=True,
        registrar=f"sip:{registrar.address}", username="8001", password="s3cret",
    )  # fmt: skip

    call_id = dialer.start(CallRequest(attempt_id=26, to=NUMBER))  # starts the stack
    events.wait_final(call_id)
    dialer.close()

    assert registrar.wait() == 0, registrar.messages()  # REGISTER, 401, REGISTER, un-REGISTER
    assert "Authorization: Digest" in registrar.messages()


def test_the_caller_id_and_number_format_shape_the_invite(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    peer = sipp("reject.xml", fill={"STATUS": "486", "REASON": "Busy Here"})
    dialer = make_dialer(
        events, server=peer.address, number_format="national", dial_prefix="9",
        display_name="Hangzhou 12345",
    )  # fmt: skip

    call_id = dialer.start(CallRequest(attempt_id=24, to=NUMBER, caller_id="+8657112345"))
    events.wait_final(call_id)

    assert peer.wait() == 0
    invite = peer.messages().split("INVITE sip:", 1)[1]
    assert invite.startswith(f"913812345678@{peer.address} SIP/2.0")
    assert 'From: "Hangzhou 12345" <sip:+8657112345@127.0.0.1>' in invite


def test_an_extension_is_keyed_after_answer_before_the_survey(
    tmp_path: Path, sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    prompt = write_tone_wav(tmp_path / "prompt.wav", seconds=0.4)
    write_keypad_pcap(tmp_path / "keypad.pcap", "1")
    peer = sipp("hang_up_midway.xml")
    try:
        tap = AudioTap(peer.media_port)
    except PermissionError:
        pytest.skip("reading the loopback interface needs root or CAP_NET_RAW")
    conversation = survey(prompt, goodbye_audio=str(prompt))
    dialer = make_dialer(events, conversation, server=peer.address)

    try:
        call_id = dialer.start(CallRequest(attempt_id=25, to=NUMBER, extension="8001"))
        events.wait_final(call_id)
        assert peer.wait() == 0, peer.messages()
    finally:
        tap.close()

    assert tap.keys == "8001"
    assert conversation.begun == [25]


def test_close_cancels_a_ringing_call_and_reports_its_end(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    peer = sipp("ring_no_answer.xml")
    dialer = make_dialer(events, server=peer.address)
    call_id = dialer.start(CallRequest(attempt_id=15, to=NUMBER, ring_timeout=30))
    events.wait_kind(call_id, RINGING)

    dialer.close()

    got = events.of(call_id)
    assert peer.wait() == 0, peer.messages()
    assert kinds(got) == [QUEUED, RINGING, EventKind.NO_ANSWER]
    assert got[-1].detail["cancel_reason"] == "dialer-closing"
    assert dialer.status(call_id) == got[-1]


def test_hangup_cancels_a_ringing_call(sipp: Any, make_dialer: Any, events: EventLog) -> None:
    peer = sipp("ring_no_answer.xml")
    dialer = make_dialer(events, server=peer.address)
    call_id = dialer.start(CallRequest(attempt_id=16, to=NUMBER, ring_timeout=30))
    events.wait_kind(call_id, RINGING)

    dialer.hangup(call_id)
    got = events.wait_final(call_id)

    assert peer.wait() == 0, peer.messages()
    assert got[-1].kind == EventKind.NO_ANSWER
    assert got[-1].detail["cancel_reason"] == "hangup-requested"


def test_status_tells_what_this_process_knows_of_a_call(
    sipp: Any, make_dialer: Any, events: EventLog
) -> None:
    peer = sipp("reject.xml", fill={"STATUS": "486", "REASON": "Busy Here"})
    dialer = make_dialer(events, server=peer.address)

    call_id = dialer.start(CallRequest(attempt_id=17, to=NUMBER))
    final = events.wait_final(call_id)[-1]

    assert dialer.status(call_id) == final
    assert dialer.status("not-a-call-of-ours") is None


def test_one_dialer_places_concurrent_calls(sipp: Any, make_dialer: Any, events: EventLog) -> None:
    peer = sipp("reject.xml", fill={"STATUS": "486", "REASON": "Busy Here"}, calls=3)
    dialer = make_dialer(events, server=peer.address, max_concurrent=3)

    call_ids = [dialer.start(CallRequest(attempt_id=20 + n, to=NUMBER)) for n in range(3)]
    finals = [events.wait_final(call_id)[-1] for call_id in call_ids]

    assert peer.wait() == 0, peer.messages()
    assert [final.kind for final in finals] == [EventKind.BUSY] * 3
    assert [final.attempt_id for final in finals] == [20, 21, 22]
    assert len({final.detail["sip_call_id"] for final in finals}) == 3
