"""TwiML for each kind of Turn, parsed back and checked element by element."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.dialing import Turn
from callback_twilio.twiml import (
    GOODBYE_TEXT,
    TurnRenderer,
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


# -- TurnRenderer: render_turn's documents, each turn built once ------------------------------

turns = st.builds(
    Turn,
    text=st.one_of(st.sampled_from([QUESTION, "", "  ", "请按1 <Hangup/> & 结束"]), st.text()),
    audio=st.sampled_from([None, "/srv/audio/q1.wav", "q2.wav", "/etc/passwd"]),
    language=st.sampled_from(["cmn-CN", "en-US", "cmn-TW"]),
    expect=st.sampled_from(["digits", "speech", "digits speech", ""]),
    max_digits=st.integers(1, 20),
    finish_on_key=st.sampled_from(["", "#", "*"]),
    timeout_seconds=st.integers(1, 30),
    hangup=st.booleans(),
)
urls = st.one_of(
    st.sampled_from([GATHER_URL, GATHER_URL + "?at=trips.0", GATHER_URL + "?at=q1.2"]),
    # Anything the builder escapes (or might): such URLs take the builder itself.
    st.builds(lambda tail: GATHER_URL + "?" + tail, st.text()),
)


@settings(max_examples=300, deadline=None)
@given(turn=turns, url=urls, voice=st.sampled_from(["Polly.Zhiyu", None]))
def test_the_renderer_writes_render_turns_document(turn: Turn, url: str, voice: str | None) -> None:
    audio = audio_url_mapper("/srv/audio", "https://cdn.example.gov.cn/prompts")
    languages = {"cmn-TW": "cmn-Hant-TW"}
    renderer = TurnRenderer(voice=voice, audio_url=audio, speech_languages=languages)
    expected = render_turn(turn, url, voice=voice, audio_url=audio, speech_languages=languages)
    assert renderer(turn, url) == expected
    assert renderer(turn, url) == expected  # and again, from what it kept


def test_the_renderer_builds_a_turn_once_for_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import callback_twilio.twiml as twiml

    built: list[str] = []
    real = twiml.render_turn

    def counting(turn: Turn, url: str, **options: object) -> str:
        built.append(url)
        return real(turn, url, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(twiml, "render_turn", counting)
    renderer = TurnRenderer()
    first = renderer(Turn(QUESTION), GATHER_URL.replace("/7", "/8") + "?at=q1.0")
    second = renderer(Turn(QUESTION), GATHER_URL + "?at=q1.0")
    assert len(built) == 1 and built[0].startswith("https://gather.invalid/")
    assert second == real(Turn(QUESTION), GATHER_URL + "?at=q1.0")
    assert first.count("/gather/8?at=q1.0") == 2  # the Gather's action and the Redirect
    # A URL with & is the builder's to escape; a text that holds the placeholder too.
    renderer(Turn(QUESTION), GATHER_URL + "?at=q1.0&x=1")
    assert built[-1].endswith("&x=1")
    placeholder = built[0]
    assert renderer(Turn(placeholder), GATHER_URL) == real(Turn(placeholder), GATHER_URL)


def test_the_renderer_keeps_only_its_last_turns() -> None:
    renderer = TurnRenderer(size=2)
    for n in range(5):
        renderer(Turn(f"问题{n}"), GATHER_URL)
    assert renderer._pieces.cache_info().currsize == 2
