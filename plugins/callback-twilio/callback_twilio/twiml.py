"""TwiML for IVR turns, built with Twilio's own builder (never by pasting strings together).

``TurnRenderer`` builds each distinct turn once and then only puts each request's gather URL
into the document the builder wrote (a URL the builder would escape takes the builder).

A turn that listens renders as::

    <Response>
      <Gather input="dtmf" numDigits="1" finishOnKey="" timeout="8" action="…/gather/7"
              method="POST" language="cmn-Hans-CN">
        <Say language="cmn-CN" voice="Polly.Zhiyu">…</Say>      (or <Play>…</Play>)
      </Gather>
      <Redirect method="POST">…/gather/7</Redirect>
    </Response>

When the caller keys nothing before ``timeout``, Twilio does not call the Gather's action but
goes on to the next verb (https://www.twilio.com/docs/voice/twiml/gather, ``action``), so the
``<Redirect>`` brings silence to the same URL, without ``Digits``: the core hears "no input".
"""

from __future__ import annotations

import posixpath
import re
import secrets
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from pathlib import PurePosixPath
from urllib.parse import quote

from twilio.twiml.voice_response import Gather, VoiceResponse

from callback.dialing import Turn
from callback_twilio.settings import DEFAULT_VOICE

#: Spoken to calls the core no longer knows or has finished: "This callback has ended; thank you
#: for taking our call. Goodbye."
GOODBYE_TEXT = "本次回访已经结束，感谢您的接听，再见。"

#: Turn language (BCP 47, as <Say> takes it) -> language of Gather's speech recognition.
#: Twilio's recogniser uses Google's codes, which spell Mandarin by script and region.
SPEECH_LANGUAGES: Mapping[str, str] = {
    "cmn-CN": "cmn-Hans-CN",
    "zh-CN": "cmn-Hans-CN",
    "cmn-TW": "cmn-Hant-TW",
}

#: Turn.expect words -> Gather's input words.
_INPUTS = {"digits": "dtmf", "speech": "speech"}

AudioUrl = Callable[[str], str | None]


def gather_input(expect: str) -> str:
    """Translate ``Turn.expect`` ("digits", "speech", "digits speech") to Gather's ``input``."""
    words = expect.split()
    unknown = [w for w in words if w not in _INPUTS]
    if unknown:
        raise ValueError(f"Turn.expect has unknown input {unknown[0]!r}")
    return " ".join(_INPUTS[w] for w in words)


def audio_url_mapper(audio_root: str, audio_base_url: str) -> AudioUrl:
    """Return a function that maps a prompt file under ``audio_root`` to its public URL.

    Paths outside ``audio_root`` (or relative ones that climb out of it) map to None, so the
    turn falls back to ``<Say>`` instead of publishing a path we never meant to serve.
    """
    root = PurePosixPath(posixpath.normpath(audio_root))
    base = audio_base_url.rstrip("/")

    def to_url(path: str) -> str | None:
        candidate = PurePosixPath(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        candidate = PurePosixPath(posixpath.normpath(str(candidate)))
        if candidate == root or root not in candidate.parents:
            return None
        relative = candidate.relative_to(root).as_posix()
        return f"{base}/{quote(relative)}"

    return to_url


def _prompt(
    parent: VoiceResponse | Gather, turn: Turn, voice: str | None, audio_url: AudioUrl | None
) -> None:
    url = audio_url(turn.audio) if (audio_url is not None and turn.audio) else None
    if url:
        parent.play(url)
    elif not turn.text.strip():
        # A turn with nothing to say (a machine listening, a silent hang-up): Twilio refuses
        # an empty <Say>, and a second of silence is what the turn means.
        parent.pause(length=1)
    else:
        parent.say(turn.text, voice=voice or None, language=turn.language)


def render_turn(
    turn: Turn,
    gather_url: str,
    *,
    voice: str | None = DEFAULT_VOICE,
    audio_url: AudioUrl | None = None,
    speech_languages: Mapping[str, str] | None = None,
) -> str:
    """Render one Turn as a TwiML document.

    - A listening turn: ``<Gather>`` around ``<Say>`` (or ``<Play>`` when ``audio_url`` maps
      ``turn.audio`` to a URL), then a ``<Redirect>`` to ``gather_url`` for silence.
    - A hangup turn: the prompt, then ``<Hangup/>``.
    - A turn that only speaks (``expect == ""``): the prompt, then the ``<Redirect>``, so the
      core is asked for the next turn with no input.

    ``voice`` is the ``<Say>`` voice (None for the account's default); ``speech_languages``
    overrides ``SPEECH_LANGUAGES``.
    """
    response = VoiceResponse()
    if turn.hangup:
        _prompt(response, turn, voice, audio_url)
        response.hangup()
        return str(response)
    if not turn.expect:
        _prompt(response, turn, voice, audio_url)
        response.redirect(gather_url, method="POST")
        return str(response)

    input_ = gather_input(turn.expect)
    languages = {**SPEECH_LANGUAGES, **(speech_languages or {})}
    gather = Gather(
        input=input_,
        action=gather_url,
        method="POST",
        timeout=turn.timeout_seconds,
        # Always written out: Twilio's default finishOnKey is "#", which would swallow a "#"
        # the script means as an answer and end input early when the script said nothing.
        finish_on_key=turn.finish_on_key,
        num_digits=turn.max_digits if "dtmf" in input_ else None,
        language=languages.get(turn.language, turn.language),
        # Without it Twilio waits the full timeout after the caller stops speaking.
        speech_timeout="auto" if "speech" in input_ else None,
    )
    _prompt(gather, turn, voice, audio_url)
    response.append(gather)
    response.redirect(gather_url, method="POST")
    return str(response)


#: A character the builder would escape, in an attribute or in text, or that is not plainly
#: part of a URL: a gather URL holding one is rendered by the builder itself.
_ESCAPED = re.compile(r"[&<>\"'\s]")


class TurnRenderer:
    """``render_turn`` with one dialer's settings, each distinct turn built only once.

    The IVR renders a document on every webhook, and the builder (Twilio's, through
    ElementTree) takes about 100 µs for one: as long as the rest of the webhook's own work.
    A survey has a few dozen distinct turns, and between calls only the gather URL changes.
    So each turn is built once, by ``render_turn``, around a placeholder URL, and kept as the
    text between the placeholders (the last ``size`` turns); a request puts its URL between
    them. A URL with anything the builder would escape is rendered by the builder, so every
    document is byte for byte ``render_turn``'s (the tests compare them).
    """

    def __init__(
        self,
        *,
        voice: str | None = DEFAULT_VOICE,
        audio_url: AudioUrl | None = None,
        speech_languages: Mapping[str, str] | None = None,
        size: int = 1024,
    ) -> None:
        self._render = partial(
            render_turn, voice=voice, audio_url=audio_url, speech_languages=speech_languages
        )
        # Random, so that no prompt's text can hold it by accident (or by design).
        self._placeholder = f"https://gather.invalid/{secrets.token_hex(12)}"
        self._pieces = lru_cache(maxsize=size)(self._split)

    def __call__(self, turn: Turn, gather_url: str) -> str:
        if _ESCAPED.search(gather_url) is None:
            pieces = self._pieces(turn)
            if pieces is not None:
                return gather_url.join(pieces)
        return self._render(turn, gather_url)

    def _split(self, turn: Turn) -> tuple[str, ...] | None:
        if self._placeholder in turn.text or self._placeholder in (turn.audio or ""):
            return None
        return tuple(self._render(turn, self._placeholder).split(self._placeholder))


def render_goodbye(language: str = "cmn-CN", voice: str | None = DEFAULT_VOICE) -> str:
    """Render a polite Mandarin goodbye and hang up, for unknown or finished calls."""
    response = VoiceResponse()
    response.say(GOODBYE_TEXT, voice=voice or None, language=language)
    response.hangup()
    return str(response)
