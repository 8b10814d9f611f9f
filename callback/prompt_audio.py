"""Prompt audio for IVR calls: Mandarin text rendered to 8 kHz mono 16-bit PCM WAV files.

SIP dialers play WAV files, not text, so every prompt of a survey script needs a file. This
module renders them offline with ``espeak-ng`` (voice ``cmn``) and converts the result with
``sox`` to what a telephone channel carries (8 kHz, mono, 16-bit signed PCM; PJSIP's file
player accepts only 16-bit PCM mono). File names are a hash of (voice, text), so rendering the
same prompt twice is a no-op and a cache directory can be shared by several processes.

Synthetic speech is a stand-in: a recorded file saved under the same name in a "recorded"
directory (see ``prompt_filename``) is preferred by ``prompt_audio``, so a campaign can replace
prompts one by one with a professional recording without touching the survey script.

Nothing here imports a telephony library; the tools are looked up when first needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from callback.errors import CallbackError

#: espeak-ng's Mandarin voice (``espeak-ng --voices=cmn``).
DEFAULT_VOICE = "cmn"
#: Narrowband telephony (G.711) samples at 8 kHz; anything richer is resampled on the way out.
SAMPLE_RATE = 8000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM

#: Seconds a synthesiser or converter may take for one prompt before we call it stuck.
_TOOL_TIMEOUT = 60

_INSTALL_HINT = "install the Debian packages espeak-ng and sox (apt-get install espeak-ng sox)"


class PromptAudioError(CallbackError):
    """A prompt could not be rendered or read: a missing tool, a failed run, a bad WAV file."""


@dataclass(frozen=True)
class WavInfo:
    """The header facts of a PCM WAV file."""

    rate: int
    channels: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def seconds(self) -> float:
        """Playing time of the file."""
        return self.frames / self.rate if self.rate else 0.0

    @property
    def is_telephony(self) -> bool:
        """True for 8 kHz mono 16-bit PCM, what SIP prompts are rendered to."""
        return (self.rate, self.channels, self.sample_width) == (
            SAMPLE_RATE,
            CHANNELS,
            SAMPLE_WIDTH,
        )


def prompt_key(text: str, voice: str = DEFAULT_VOICE) -> str:
    """Return the stable key of a prompt: a hash of the voice and the exact text.

    Surrounding whitespace is ignored (script files indent and wrap text); anything else,
    punctuation included, changes how the prompt sounds and so changes the key.
    """
    digest = hashlib.sha256(f"{voice}\n{text.strip()}".encode()).hexdigest()
    return digest[:24]


def prompt_filename(text: str, voice: str = DEFAULT_VOICE) -> str:
    """Return the file name (no directory) a prompt is rendered to or recorded under."""
    return f"{voice}-{prompt_key(text, voice)}.wav"


def check_tools() -> tuple[str, str]:
    """Return the paths of espeak-ng and sox, or raise PromptAudioError naming what is missing."""
    espeak = shutil.which("espeak-ng")
    sox = shutil.which("sox")
    missing = [name for name, path in (("espeak-ng", espeak), ("sox", sox)) if path is None]
    if missing:
        raise PromptAudioError(
            f"cannot synthesise prompt audio: {' and '.join(missing)} not found on PATH; "
            f"{_INSTALL_HINT}, or record the prompts as WAV files"
        )
    assert espeak is not None and sox is not None
    return espeak, sox


def describe_wav(path: str | os.PathLike[str]) -> WavInfo:
    """Read the header of a PCM WAV file; raise PromptAudioError if it is not one."""
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            return WavInfo(
                rate=wav.getframerate(),
                channels=wav.getnchannels(),
                sample_width=wav.getsampwidth(),
                frames=wav.getnframes(),
            )
    except (OSError, EOFError, wave.Error) as exc:
        raise PromptAudioError(f"{os.fspath(path)}: not a readable PCM WAV file ({exc})") from exc


def render_prompt(
    text: str,
    cache_dir: str | os.PathLike[str],
    *,
    voice: str = DEFAULT_VOICE,
    words_per_minute: int | None = None,
) -> Path:
    """Synthesise ``text`` into ``cache_dir`` unless it is there already; return the file.

    The file is written under a temporary name and renamed into place, so concurrent renderers
    (several dialer processes sharing a cache) never see half a file.
    """
    if not text.strip():
        raise PromptAudioError("cannot synthesise an empty prompt")
    directory = Path(cache_dir)
    target = directory / prompt_filename(text, voice)
    if target.exists():
        return target
    espeak, sox = check_tools()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".render-") as work:
        raw = Path(work) / "espeak.wav"
        converted = Path(work) / "8k.wav"
        speak = [espeak, "-v", voice, "-w", os.fspath(raw)]
        if words_per_minute is not None:
            speak += ["-s", str(words_per_minute)]
        # The text goes through stdin, not argv: it may start with "-" and may be long.
        _run(speak + ["--stdin"], stdin=text.strip())
        _run(
            [sox, os.fspath(raw), "-r", str(SAMPLE_RATE), "-c", str(CHANNELS),
             "-b", str(SAMPLE_WIDTH * 8), "-e", "signed-integer", os.fspath(converted)]
        )  # fmt: skip
        info = describe_wav(converted)
        if not info.is_telephony or info.frames == 0:
            raise PromptAudioError(f"synthesis of a prompt produced unusable audio: {info}")
        os.replace(converted, target)
    return target


def prompt_audio(
    text: str,
    cache_dir: str | os.PathLike[str],
    *,
    recorded_dir: str | os.PathLike[str] | None = None,
    voice: str = DEFAULT_VOICE,
    words_per_minute: int | None = None,
) -> Path:
    """Return the audio file for a prompt: a recording if one exists, else synthesised speech.

    A recording is ``recorded_dir / prompt_filename(text, voice)``; it is converted to 8 kHz
    mono 16-bit (into ``cache_dir``) when it was saved in another format.
    """
    if recorded_dir is not None:
        recorded = Path(recorded_dir) / prompt_filename(text, voice)
        if recorded.exists():
            return conform_wav(recorded, cache_dir)
    return render_prompt(text, cache_dir, voice=voice, words_per_minute=words_per_minute)


def render_prompts(
    texts: Iterable[str],
    cache_dir: str | os.PathLike[str],
    *,
    voice: str = DEFAULT_VOICE,
) -> dict[str, Path]:
    """Render many prompts ahead of a campaign; return each distinct text's file."""
    return {text: render_prompt(text, cache_dir, voice=voice) for text in dict.fromkeys(texts)}


def conform_wav(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it is 8 kHz mono 16-bit PCM, else a converted copy in ``cache_dir``.

    The copy's name hashes the source path, size and modification time, so an edited recording
    is converted again and an unchanged one is not.
    """
    source = Path(path)
    try:
        if describe_wav(source).is_telephony:
            return source
    except PromptAudioError:
        pass  # not PCM WAV (e.g. A-law or MP3): sox may still read it
    stat = source.stat()
    tag = hashlib.sha256(
        f"{source.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}".encode()
    ).hexdigest()[:24]
    directory = Path(cache_dir)
    target = directory / f"conformed-{tag}.wav"
    if target.exists():
        return target
    _, sox = check_tools()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".conform-") as work:
        converted = Path(work) / "8k.wav"
        _run(
            [sox, os.fspath(source), "-r", str(SAMPLE_RATE), "-c", str(CHANNELS),
             "-b", str(SAMPLE_WIDTH * 8), "-e", "signed-integer", os.fspath(converted)]
        )  # fmt: skip
        os.replace(converted, target)
    return target


def _run(argv: list[str], stdin: str | None = None) -> None:
    """Run a tool; turn a failure into a PromptAudioError that shows its complaint."""
    try:
        subprocess.run(
            argv,
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=True,
            timeout=_TOOL_TIMEOUT,
        )
    except FileNotFoundError as exc:
        raise PromptAudioError(f"{argv[0]} not found; {_INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PromptAudioError(f"{Path(argv[0]).name} took over {_TOOL_TIMEOUT}s") from exc
    except subprocess.CalledProcessError as exc:
        complaint = exc.stderr.decode(errors="replace").strip() or f"exit status {exc.returncode}"
        raise PromptAudioError(f"{Path(argv[0]).name} failed: {complaint}") from exc
