"""Reading TwiML the way Twilio executes it (the walker must not flatter our TwiML)."""

from __future__ import annotations

from callback_twilio.testing import parse_twiml

PAGE = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="https://cb.example/input" numDigits="2"><Say>请输入</Say></Gather>'
    "<Redirect>https://cb.example/silence</Redirect></Response>"
)


def test_input_goes_to_the_gathers_action() -> None:
    assert parse_twiml(PAGE).next_url("12") == "https://cb.example/input"


def test_silence_falls_through_to_the_redirect() -> None:
    assert parse_twiml(PAGE).next_url("") == "https://cb.example/silence"


def test_a_document_that_ends_without_redirect_ends_the_call() -> None:
    page = parse_twiml('<Response><Gather action="/a"/></Response>')
    assert page.next_url("") is None
    assert not page.hangup


def test_hangup_ends_the_call_before_any_later_redirect() -> None:
    page = parse_twiml("<Response><Say>再见</Say><Hangup/><Redirect>/x</Redirect></Response>")
    assert page.next_url("") is None
    assert page.hangup
    assert page.verbs == ["Say", "Hangup", "Redirect"]


def test_collect_stops_at_num_digits() -> None:
    assert parse_twiml(PAGE).collect("1234") == "12"


def test_collect_stops_at_twilios_default_finish_key_when_none_is_given() -> None:
    assert parse_twiml(PAGE).collect("#12") == ""
    assert parse_twiml(PAGE).collect("1#2") == "1"


def test_an_empty_finish_key_sends_the_hash_as_a_digit() -> None:
    page = parse_twiml('<Response><Gather finishOnKey="" numDigits="1" action="/a"/></Response>')
    assert page.collect("#") == "#"


def test_prompts_are_read_inside_and_outside_the_gather() -> None:
    page = parse_twiml(
        "<Response><Say>一</Say><Gather><Play>https://cdn/q.wav</Play></Gather></Response>"
    )
    assert [(p.verb, p.text) for p in page.prompts] == [
        ("Say", "一"),
        ("Play", "https://cdn/q.wav"),
    ]
    assert page.says == ["一"]
