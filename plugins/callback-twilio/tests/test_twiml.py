"""TwiML for each kind of Turn, parsed back and checked element by element."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from callback.dialing import Turn
from callback_twilio.twiml import (
    GOODBYE_TEXT,
    audio_url_mapper,
    gather_input,
    render_goodbye,
    render_turn,
)

GATHER_URL = "https://callback.example.gov.cn/twilio/gather/7"
QUESTION = "您对本次办事的结果是否满意？满意请按1，不满意请按2。"


def parse(xml: str) -> ET.Element:
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml.encode())
    assert root.tag == "Response"
    return root


def test_a_digit_question_gathers_one_key_and_redirects_on_silence() -> None:
    root = parse(render_turn(Turn(QUESTION), GATHER_URL))
    assert [el.tag for el in root] == ["Gather", "Redirect"]
    gather, redirect = root
    assert gather.attrib == {
        "input": "dtmf",
        "numDigits": "1",
        # Explicitly empty: Twilio's default "#" would end input on a "#" key.
        "finishOnKey": "",
        "timeout": "8",
        "action": GATHER_URL,
        "method": "POST",
        "language": "cmn-Hans-CN",
    }
    [say] = gather
    assert say.tag == "Say"
    assert say.text == QUESTION
    assert say.attrib == {"language": "cmn-CN", "voice": "Polly.Zhiyu"}
    assert redirect.text == GATHER_URL
    assert redirect.attrib == {"method": "POST"}


def test_a_phone_number_question_takes_many_digits_ended_by_hash() -> None:
    turn = Turn(
        "请输入您的手机号码，以井号键结束。", max_digits=12, finish_on_key="#", timeout_seconds=15
    )
    gather = parse(render_turn(turn, GATHER_URL)).find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "12"
    assert gather.get("finishOnKey") == "#"
    assert gather.get("timeout") == "15"


def test_a_speech_or_digits_question_listens_for_mandarin_speech() -> None:
    turn = Turn("请说出或按键选择。", expect="digits speech")
    gather = parse(render_turn(turn, GATHER_URL)).find("Gather")
    assert gather is not None
    assert gather.get("input") == "dtmf speech"
    assert gather.get("speechTimeout") == "auto"
    assert gather.get("language") == "cmn-Hans-CN"
    assert gather.get("numDigits") == "1"


def test_a_speech_only_question_has_no_digit_limit() -> None:
    gather = parse(render_turn(Turn("请讲。", expect="speech"), GATHER_URL)).find("Gather")
    assert gather is not None
    assert gather.get("input") == "speech"
    assert gather.get("numDigits") is None


def test_speech_language_can_be_overridden() -> None:
    xml = render_turn(
        Turn("请讲。", expect="speech"), GATHER_URL, speech_languages={"cmn-CN": "zh"}
    )
    gather = parse(xml).find("Gather")
    assert gather is not None and gather.get("language") == "zh"


def test_an_english_turn_keeps_its_language() -> None:
    root = parse(render_turn(Turn("Press 1.", language="en-US"), GATHER_URL, voice=None))
    gather = root.find("Gather")
    assert gather is not None and gather.get("language") == "en-US"
    say = root.find("Gather/Say")
    assert say is not None
    assert say.attrib == {"language": "en-US"}  # no voice: the account's default


def test_the_voice_is_configurable() -> None:
    say = parse(render_turn(Turn(QUESTION), GATHER_URL, voice="Google.cmn-CN-Standard-A")).find(
        "Gather/Say"
    )
    assert say is not None and say.get("voice") == "Google.cmn-CN-Standard-A"


def test_a_hangup_turn_says_goodbye_then_hangs_up() -> None:
    root = parse(render_turn(Turn("感谢您的配合，再见。", expect="", hangup=True), GATHER_URL))
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert root[0].text == "感谢您的配合，再见。"
    assert root[0].get("language") == "cmn-CN"


def test_a_hangup_turn_never_gathers_even_if_it_expects_input() -> None:
    root = parse(render_turn(Turn("再见。", hangup=True), GATHER_URL))
    assert root.find("Gather") is None
    assert root.find("Redirect") is None


def test_a_turn_that_only_speaks_redirects_for_the_next_turn() -> None:
    root = parse(render_turn(Turn("您好，这里是政务服务回访。", expect=""), GATHER_URL))
    assert [el.tag for el in root] == ["Say", "Redirect"]
    assert root[1].text == GATHER_URL


def test_a_recorded_prompt_plays_from_its_public_url() -> None:
    audio = audio_url_mapper("/srv/callback/audio", "https://cdn.example.gov.cn/audio/")
    turn = Turn(QUESTION, audio="/srv/callback/audio/满意度/q1.wav")
    root = parse(render_turn(turn, GATHER_URL, audio_url=audio))
    assert root.find("Gather/Say") is None
    play = root.find("Gather/Play")
    assert play is not None
    assert play.text == ("https://cdn.example.gov.cn/audio/%E6%BB%A1%E6%84%8F%E5%BA%A6/q1.wav")


def test_a_relative_audio_path_is_under_the_audio_root() -> None:
    audio = audio_url_mapper("/srv/audio", "https://cdn.example/a")
    assert audio("q1.wav") == "https://cdn.example/a/q1.wav"


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../secret.wav", "/srv/audio", "/srv/audio2/x.wav"]
)
def test_audio_outside_the_root_is_not_published(path: str) -> None:
    assert audio_url_mapper("/srv/audio", "https://cdn.example/a")(path) is None


def test_audio_that_cannot_be_published_falls_back_to_say() -> None:
    audio = audio_url_mapper("/srv/audio", "https://cdn.example/a")
    root = parse(render_turn(Turn(QUESTION, audio="/tmp/q1.wav"), GATHER_URL, audio_url=audio))
    assert root.find("Gather/Play") is None
    say = root.find("Gather/Say")
    assert say is not None and say.text == QUESTION


def test_audio_without_a_mapping_falls_back_to_say() -> None:
    root = parse(render_turn(Turn(QUESTION, audio="/srv/audio/q1.wav"), GATHER_URL))
    assert root.find("Gather/Say") is not None


def test_markup_in_prompt_text_stays_text() -> None:
    text = "请按1 <Hangup/> & 结束"
    root = parse(render_turn(Turn(text), GATHER_URL))
    assert root.find("Hangup") is None
    say = root.find("Gather/Say")
    assert say is not None and say.text == text


def test_unknown_expect_is_an_error() -> None:
    with pytest.raises(ValueError, match="'keypad'"):
        render_turn(Turn(QUESTION, expect="keypad"), GATHER_URL)


@pytest.mark.parametrize(
    ("expect", "input_"),
    [("digits", "dtmf"), ("speech", "speech"), ("digits speech", "dtmf speech")],
)
def test_gather_input_words(expect: str, input_: str) -> None:
    assert gather_input(expect) == input_


def test_goodbye_is_polite_mandarin_then_hangup() -> None:
    root = parse(render_goodbye())
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert root[0].text == GOODBYE_TEXT
    assert "再见" in GOODBYE_TEXT
    assert root[0].get("language") == "cmn-CN"
