"""Tests for callback.prompt_audio: offline Mandarin prompts as 8 kHz mono 16-bit WAV files."""

from __future__ import annotations

import shutil
import struct
import wave
from pathlib import Path

import pytest

from callback.errors import CallbackError
from callback.prompt_audio import (
    PromptAudioError,
    conform_wav,
    describe_wav,
    prompt_audio,
    prompt_filename,
    prompt_key,
    render_prompt,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (Debian packages espeak-ng, sox)",
)
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")

PROMPT = "您好，这里是政务服务回访中心。"


def write_wav(path: Path, *, rate: int, channels: int, seconds: float) -> Path:
    """Write a quiet sawtooth so that the file has real, non-silent samples."""
    frames = int(rate * seconds)
    samples = [((i % 80) - 40) * 200 for i in range(frames) for _ in range(channels)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


@needs_espeak
def test_render_prompt_writes_8khz_mono_16bit_speech(tmp_path: Path) -> None:
    path = render_prompt(PROMPT, tmp_path)

    with path.open("rb") as raw:
        header = raw.read(44)
    assert header[:4] == b"RIFF" and header[8:12] == b"WAVE"
    audio_format, channels, rate = struct.unpack("<HHI", header[20:28])
    bits = struct.unpack("<H", header[34:36])[0]
    assert (audio_format, channels, rate, bits) == (1, 1, 8000, 16)
    # Fifteen syllables of speech last well over a second; silence or a stub would not.
    assert describe_wav(path).seconds > 1.0


@needs_espeak
def test_rendering_the_same_prompt_again_is_a_no_op(tmp_path: Path) -> None:
    first = render_prompt(PROMPT, tmp_path)
    written = first.stat().st_mtime_ns

    second = render_prompt(PROMPT, tmp_path)

    assert second == first
    assert second.stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_prompt_names_are_deterministic_and_depend_on_voice_and_text() -> None:
    assert prompt_filename(PROMPT) == prompt_filename(f"  {PROMPT}\n")
    assert prompt_key(PROMPT) != prompt_key(PROMPT, voice="cmn-latn-pinyin")
    assert prompt_key(PROMPT) != prompt_key("请按1。")
    assert prompt_filename(PROMPT).startswith("cmn-") and prompt_filename(PROMPT).endswith(".wav")


def test_a_recorded_file_of_the_same_key_is_preferred(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    recording = write_wav(recorded / prompt_filename(PROMPT), rate=8000, channels=1, seconds=0.5)

    chosen = prompt_audio(PROMPT, tmp_path / "cache", recorded_dir=recorded)

    assert chosen == recording


@needs_sox
def test_a_recording_in_another_format_is_converted(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    write_wav(recorded / prompt_filename(PROMPT), rate=16000, channels=2, seconds=0.5)

    chosen = prompt_audio(PROMPT, tmp_path / "cache", recorded_dir=recorded)

    info = describe_wav(chosen)
    assert info.is_telephony
    assert info.seconds == pytest.approx(0.5, abs=0.01)
    assert conform_wav(recorded / prompt_filename(PROMPT), tmp_path / "cache") == chosen


def test_missing_synthesiser_is_a_clean_callback_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(CallbackError, match="espeak-ng and sox not found"):
        render_prompt(PROMPT, tmp_path)
    assert not any(tmp_path.glob("*.wav"))


def test_a_file_that_is_not_wav_is_a_clean_error(tmp_path: Path) -> None:
    bogus = tmp_path / "prompt.wav"
    bogus.write_bytes(b"ID3 not a wave file")

    with pytest.raises(PromptAudioError, match="not a readable PCM WAV file"):
        describe_wav(bogus)


def test_an_empty_prompt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PromptAudioError, match="empty prompt"):
        render_prompt("  ", tmp_path)
