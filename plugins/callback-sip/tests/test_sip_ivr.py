"""Tests for one IVR turn's bookkeeping: keys, finish key, timeouts, goodbyes."""

from __future__ import annotations

from pathlib import Path

from callback.dialing import Turn
from callback_sip.ivr import HANGUP_TAIL_SECONDS, PreparedTurn, TurnProgress, voice_for


def progress(turn: Turn, seconds: float = 2.0) -> TurnProgress:
    return TurnProgress(PreparedTurn(turn, Path("prompt.wav"), seconds), started_at=100.0)


def test_a_menu_choice_is_complete_after_one_key() -> None:
    turn = progress(Turn("满意请按1"))

    assert turn.feed("1", 100.5) is True
    assert turn.digits == "1"


def test_the_finish_key_ends_input_and_is_not_part_of_it() -> None:
    turn = progress(Turn("请输入次数，按井号结束", max_digits=3, finish_on_key="#"))

    assert turn.feed("2", 103.0) is False
    assert turn.feed("#", 103.5) is True
    assert turn.digits == "2"


def test_input_stops_at_max_digits() -> None:
    turn = progress(Turn("请输入", max_digits=2, finish_on_key="#"))

    turn.feed("1", 101.0)
    assert turn.feed("2", 101.2) is True
    assert turn.feed("3", 101.4) is True
    assert turn.digits == "12"


def test_silence_times_out_after_the_prompt_and_after_each_key() -> None:
    turn = progress(Turn("请输入", max_digits=4, timeout_seconds=5), seconds=2.0)

    assert turn.deadline() == 107.0  # prompt ends at 102, then 5 s of silence
    turn.feed("1", 104.0)
    assert turn.deadline() == 109.0
    assert not turn.is_due(108.9)
    assert turn.is_due(109.0)


def test_a_goodbye_ends_after_its_prompt_and_ignores_keys() -> None:
    turn = progress(Turn("再见", expect="", hangup=True), seconds=1.5)

    assert turn.feed("1", 100.2) is False
    assert turn.digits == ""
    assert turn.deadline() == 101.5 + HANGUP_TAIL_SECONDS


def test_a_speech_only_turn_just_plays_its_prompt() -> None:
    turn = progress(Turn("请说出您的意见", expect="speech"), seconds=3.0)

    assert not turn.collects_digits
    assert turn.deadline() == 103.0


def test_mandarin_turns_use_the_configured_voice_and_english_turns_english() -> None:
    assert voice_for("cmn-CN", "cmn") == "cmn"
    assert voice_for("zh-CN", "cmn") == "cmn"
    assert voice_for("en-US", "cmn") == "en-us"
