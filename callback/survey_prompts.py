"""Render a survey session's current question as a Prompt for a channel, or a Turn for a dialer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from callback.dialing import Turn
from callback.frozen import quick_init
from callback.survey_format import PLACEHOLDERS, Kind, Question, Script, Text
from callback.survey_input import InputError
from callback.surveys import Event, SessionState, current_question, finished

__all__ = ["Choice", "Expect", "Prompt", "prompt", "to_turn"]


@dataclass(frozen=True)
class Choice:
    key: str
    label: str


@dataclass(frozen=True)
class Expect:
    """The input an IVR should collect for a prompt."""

    digits: bool = False  # collect keypad digits
    max_digits: int = 1
    finish_key: str = ""  # "#" ends a number early
    speech: bool = False  # speech may be captured
    timeout: int = 8  # seconds of silence before the dialer answers with no input


@quick_init
@dataclass(frozen=True)
class Prompt:
    """What to say (or show) next, rendered for one channel and language."""

    question: str  # "" for the goodbye after a survey that ended on a question
    kind: Kind
    text: str
    language: str
    channel: str
    audio: str | None = None
    options: tuple[Choice, ...] = ()
    expect: Expect = field(default_factory=Expect)
    #: The question is asked again after a refused input; on the IVR the text then begins
    #: with an apology (an agent sees ``error`` instead and needs no apology to read out).
    reprompt: bool = False
    error: InputError | None = None
    #: Nothing follows: speak this and hang up.
    final: bool = False
    note: str | None = None  # for the agent's eyes only
    min: int | None = None
    max: int | None = None


_SORRY = {
    InputError.NO_INPUT: Text.of(
        zh="对不起，没有听到您的回答。", en="Sorry, I did not hear an answer."
    ),
    None: Text.of(zh="对不起，您的输入无效。", en="Sorry, that is not a valid answer."),
}
_GOODBYE = Text.of(zh="感谢您的配合，再见！", en="Thank you for your time. Goodbye.")
_BLANKS = dict.fromkeys(PLACEHOLDERS, "")
_SEPARATOR = {"zh": ""}  # Chinese sentences run on without a space
_BCP47 = {"zh": "cmn-CN", "en": "en-US"}
#: ``Turn.expect`` for (digits, speech).
_EXPECTING = {
    (False, False): "",
    (True, False): "digits",
    (False, True): "speech",
    (True, True): "digits speech",
}


def prompt(
    script: Script, state: SessionState, channel: str | None = None, language: str | None = None
) -> Prompt:
    """Render the current question (or the goodbye, once finished) for a channel and language.

    ``channel`` and ``language`` default to the session's; a language the script lacks falls
    back to its first, and ``Prompt.language`` says which was used.
    """
    channel = channel or state.channel
    language = language or state.language
    if language not in script.languages:
        language = script.languages[0]
    values = _placeholder_values(state.fields, language)
    question = current_question(script, state)
    if question is None:
        closing = script.question(state.current) if state.current else None
        if closing is None or closing.kind is not Kind.SAY:
            text = (script.goodbye or _GOODBYE).get(language)
            return Prompt("", Kind.SAY, text.format_map(values), language, channel, final=True)
        question = closing
    plan = _plan(script, question, language, channel == "ivr")
    reprompt = state.event is Event.REPROMPT
    text = plan.text.format_map(values)
    if reprompt and channel == "ivr":
        sorry = question.retry or script.retry or _SORRY.get(state.error, _SORRY[None])
        text = sorry.get(language).format_map(values) + _SEPARATOR.get(language, " ") + text
    if plan.choices is not None:
        options = plan.choices
    else:
        options = tuple([Choice(key, label.format_map(values)) for key, label in plan.labels])
    return Prompt(
        question=question.id,
        kind=question.kind,
        text=text,
        language=language,
        channel=channel,
        # A recording has no apology in it, so a re-prompt is spoken from the text instead.
        audio=None if reprompt else plan.audio,
        options=options,
        expect=plan.expect,
        reprompt=reprompt,
        error=state.error if reprompt else None,
        final=finished(state),
        note=None if plan.note is None else plan.note.format_map(values),
        min=question.min,
        max=question.max,
    )


@dataclass(frozen=True)
class _Plan:
    """What a question says in one language on one channel, before the case's values fill it.

    Worked out once per script (``Script.derived``), not on every prompt: looking up the
    texts, writing the menu and the choices and joining the audio path were over half of a
    prompt's 10 µs.
    """

    text: str
    audio: str | None  # the recording, IVR only
    #: The options ready made when no label has a placeholder, else None and ``labels``.
    choices: tuple[Choice, ...] | None
    labels: tuple[tuple[str, str], ...]
    note: str | None
    expect: Expect


def _plan(script: Script, question: Question, language: str, ivr: bool) -> _Plan:
    key = ("prompt", question.id, language, ivr)
    plan = script.derived.get(key)
    if plan is None:
        plan = script.derived[key] = _make_plan(script, question, language, ivr)
    return plan


def _make_plan(script: Script, question: Question, language: str, ivr: bool) -> _Plan:
    text = question.agent.get(language)
    audio = None
    if ivr:
        text = question.ivr.get(language) if question.ivr else text + _menu(question, language)
        name = question.audio.lookup(language) if question.audio else None
        if name is not None:
            audio = str(Path(script.audio_dir) / name) if script.audio_dir else name
    labels = tuple((o.key, o.label.get(language)) for o in question.options)
    # A label without braces is what format_map makes of it, for any values.
    fixed = not any("{" in label or "}" in label for _, label in labels)
    return _Plan(
        text=text,
        audio=audio,
        choices=tuple(Choice(key, label) for key, label in labels) if fixed else None,
        labels=labels,
        note=question.note.get(language) if question.note else None,
        expect=_expect(question),
    )


@lru_cache(maxsize=1024)
def _placeholder_values(fields: tuple[tuple[str, str], ...], language: str) -> Mapping[str, str]:
    """The placeholders' values for a session's fields, read-only: worked out once for a
    session, not on every prompt of it (1.5 µs)."""
    values = _BLANKS.copy()  # 50 ns; dict.fromkeys(PLACEHOLDERS, "") took 180
    for name, value in fields:
        if name in PLACEHOLDERS:
            values[name] = value
    if values["date"]:
        day = date.fromisoformat(values["date"])
        if language == "zh":
            values["date"] = f"{day.year}年{day.month}月{day.day}日"
        elif language == "en":
            values["date"] = f"{day.day} {day:%B} {day.year}"
    return MappingProxyType(values)


def _menu(question: Question, language: str) -> str:
    """Keypad instructions for an IVR question that has no IVR text of its own."""
    zh = language == "zh"
    if question.kind is Kind.RATING:
        low, high = question.min, question.max
        return f"请按{low}到{high}。" if zh else f" Press a key from {low} to {high}."
    if question.options:
        if zh:
            return "；".join(f"{o.label.get(language)}请按{o.key}" for o in question.options) + "。"
        return "".join(f" For {o.label.get(language)}, press {o.key}." for o in question.options)
    if question.kind in (Kind.NUMBER, Kind.PHONE):
        return "输入后请按井号键。" if zh else " Then press the hash key."
    return ""


def _expect(question: Question) -> Expect:
    timeout = question.timeout
    if question.kind in (Kind.NUMBER, Kind.PHONE):
        return Expect(True, question.digits, "#", False, timeout)
    if question.options:
        return Expect(True, 1, "", False, timeout)
    if question.kind is Kind.TEXT:
        return Expect(False, 1, "", question.speech, timeout)
    return Expect(False, 1, "", False, timeout)


def to_turn(prompt: Prompt) -> Turn:
    """The IVR dialer's view of a prompt (TwiML ``<Gather>``, SIP playback and digits).

    A turn that expects nothing and does not hang up is a "say" step: the dialer speaks it
    and answers straight away with no input, which moves the session on.
    """
    e = prompt.expect
    expect = _EXPECTING[bool(e.digits), bool(e.speech)]
    return Turn(
        text=prompt.text,
        audio=prompt.audio,
        language=_BCP47.get(prompt.language, prompt.language),
        expect="" if prompt.final else expect,
        max_digits=e.max_digits,
        finish_on_key=e.finish_key,
        timeout_seconds=e.timeout,
        hangup=prompt.final,
        question=prompt.question,
        kind=str(prompt.kind),
        choices=tuple([choice.key for choice in prompt.options]),
    )
