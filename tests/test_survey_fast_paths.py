"""The survey engine's fast paths against the plain code they replaced.

``to_json``, ``from_json``, ``prompt``, ``to_turn``, ``ending`` and the option and condition
lookups were rewritten for the IVR webhook's speed. Each is held here to a straightforward
reference (the earlier code) over every script's sessions: a stored session must read and
write the same text, refuse the same text, and a caller must hear the same prompt.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.dialing import Turn
from callback.survey_format import Condition, Option, Question, Text, same_value
from callback.survey_input import InputError
from callback.survey_prompts import (
    _GOODBYE,
    _SEPARATOR,
    _SORRY,
    Choice,
    Expect,
    Prompt,
    _expect,
    _menu,
    prompt,
    to_turn,
)
from callback.surveys import (
    BUILTIN_SCRIPT_DIR,
    CHANNELS,
    PLACEHOLDERS,
    SCREEN_OUTS,
    Context,
    Event,
    Kind,
    Script,
    SessionError,
    SessionState,
    Status,
    answer,
    answers_given,
    current_question,
    decline,
    ending,
    load_script,
    parse_script,
    resume,
    start,
    took_part,
)

FIXTURES = Path(__file__).parent / "survey_scripts"

# Labels, notes, menus and apologies with placeholders and escaped braces, and audio in a
# folder: what the shipped scripts do not have, and the prompt templates must still get right.
PLACEHOLDERS_SCRIPT = parse_script(
    {
        "name": "placeholders",
        "title": {"zh": "占位", "en": "Placeholders"},
        "version": "1",
        "frame": "cases",
        "languages": ["zh", "en"],
        "retry": {"zh": "{applicant}，请再说一次。", "en": "{applicant}, once more."},
        "audio_dir": "audio",
        "questions": [
            {
                "id": "where",
                "kind": "choice",
                "agent": {"zh": "您去了哪里？", "en": "Where did you go?"},
                "note": {"zh": "{item}的办理单位", "en": "The unit for {item}"},
                "audio": {"zh": "where.wav"},
                "options": [
                    {"key": "1", "value": "unit", "label": {"zh": "{unit}", "en": "{unit}"}},
                    {"key": "2", "value": 2, "label": {"zh": "别处{{}}", "en": "Elsewhere {{}}"}},
                ],
            },
            {
                "id": "sure",
                "kind": "yesno",
                "agent": {"zh": "确定吗？", "en": "Sure?"},
                "retry": {"zh": "请按1或2。", "en": "Press 1 or 2."},
            },
            {"id": "stars", "kind": "rating", "agent": {"zh": "打分", "en": "Score"}},
            {"id": "count", "kind": "number", "agent": {"zh": "几次？", "en": "How many?"}},
            {"id": "phone", "kind": "phone", "agent": {"zh": "电话？", "en": "Phone?"}},
            {
                "id": "why",
                "kind": "text",
                "agent": {"zh": "不是这件事？", "en": "Not this case?"},
                "correction": "case",  # any answer proposes it: a screen-out by the question
            },
        ],
    },
    source="placeholders.toml",
)


def _scripts() -> list[Script]:
    scripts = [
        load_script(BUILTIN_SCRIPT_DIR / f"{n}.toml") for n in ("service-callback", "hotline-check")
    ]
    scripts += [
        load_script(FIXTURES / f) for f in ("all-kinds.toml", "consent.toml", "yes-no.toml")
    ]
    return [*scripts, PLACEHOLDERS_SCRIPT]


SCRIPTS = _scripts()

_INPUTS = st.one_of(
    st.sampled_from(["", "0", "1", "2", "3", "4", "5", "9", "#", "12#", "13812345678", "是", "x"]),
    st.text(max_size=8),
)
# Strings that JSON escapes (quotes, backslashes, controls, line separators) and ones it does not.
_STRINGS = st.one_of(
    st.sampled_from(["", '"', "\\", "\n", "\x00", "\u2028", "😀", "{}"]), st.text()
)
_CONTEXTS = st.builds(
    Context,
    item=_STRINGS,
    unit=_STRINGS,
    applicant=_STRINGS,
    handled_at=st.one_of(
        st.none(),
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
            lambda d: d.replace(tzinfo=UTC)
        ),
    ),
    timezone=st.sampled_from(["Asia/Shanghai", "America/New_York"]),
    area_code=st.sampled_from(["0571", "010"]),
)
_STEPS = st.lists(
    st.one_of(_INPUTS, st.sampled_from([None, None, "<resume>"])), max_size=14
)  # None declines


def _walk(
    script: Script, context: Context, channel: str, steps: list[str | None]
) -> list[SessionState]:
    """Every state of a session that takes ``steps`` (None declines, "<resume>" resumes)."""
    state = start(script, context, channel=channel)
    states = [state]
    for step in steps:
        if step is None:
            state = decline(script, state)
        elif step == "<resume>":
            state = resume(script, state)
        else:
            state = answer(script, state, step)
        states.append(state)
    return states


# --- the references: the code as it was ---------------------------------------------------


def reference_to_json(state: SessionState) -> str:
    data = {
        "format": 1,
        "script": state.script,
        "version": state.version,
        "current": state.current,
        "status": state.status.value,
        "answers": [list(pair) for pair in state.answers],
        "attempts": state.attempts,
        "event": state.event.value,
        "error": None if state.error is None else state.error.value,
        "channel": state.channel,
        "language": state.language,
        "fields": [list(pair) for pair in state.fields],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _value(value: Any) -> Any:
    if value is not None and not isinstance(value, str | int):
        raise TypeError(value)
    return value


def reference_from_json(text: Any) -> SessionState:
    try:
        data = json.loads(text)
        if data.pop("format") != 1:
            raise ValueError("unknown format")
        answers = tuple((_str(q), _value(v)) for q, v in data.pop("answers"))
        fields = tuple((_str(k), _str(v)) for k, v in data.pop("fields"))
        error, current = data.pop("error"), data.pop("current")
        state = SessionState(
            script=_str(data.pop("script")),
            version=_str(data.pop("version")),
            current=None if current is None else _str(current),
            status=Status(data.pop("status")),
            answers=answers,
            attempts=_int(data.pop("attempts")),
            event=Event(data.pop("event")),
            error=None if error is None else InputError(error),
            channel=_str(data.pop("channel")),
            language=_str(data.pop("language")),
            fields=fields,
        )
        if data:
            raise ValueError("unknown fields")
        if state.channel not in CHANNELS or state.attempts < 0:
            raise ValueError("bad channel or attempts")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SessionError(str(exc)) from None
    return state


def _text(text: Text, language: str) -> str:
    found = dict(text.entries).get(language)
    return text.entries[0][1] if found is None else found


def reference_prompt(
    script: Script, state: SessionState, channel: str | None = None, language: str | None = None
) -> Prompt:
    channel = channel or state.channel
    language = language or state.language
    if language not in script.languages:
        language = script.languages[0]
    found = {k: v for k, v in state.fields if k in PLACEHOLDERS}
    if found.get("date"):
        day = date.fromisoformat(found["date"])
        if language == "zh":
            found["date"] = f"{day.year}年{day.month}月{day.day}日"
        elif language == "en":
            found["date"] = f"{day.day} {day:%B} {day.year}"
    values = {name: found.get(name, "") for name in PLACEHOLDERS}
    question = current_question(script, state)
    if question is None:
        closing = script.question(state.current) if state.current else None
        if closing is None or closing.kind is not Kind.SAY:
            text = _text(script.goodbye or _GOODBYE, language)
            return Prompt("", Kind.SAY, text.format_map(values), language, channel, final=True)
        question = closing
    reprompt = state.event is Event.REPROMPT
    text = _text(question.agent, language)
    if channel == "ivr":
        text = _text(question.ivr, language) if question.ivr else text + _menu(question, language)
    text = text.format_map(values)
    if reprompt and channel == "ivr":
        sorry = question.retry or script.retry or _SORRY.get(state.error, _SORRY[None])
        text = _text(sorry, language).format_map(values) + _SEPARATOR.get(language, " ") + text
    audio = None
    if channel == "ivr" and question.audio and not reprompt:
        name = dict(question.audio.entries).get(language)
        if name is not None:
            audio = str(Path(script.audio_dir) / name) if script.audio_dir else name
    return Prompt(
        question=question.id,
        kind=question.kind,
        text=text,
        language=language,
        channel=channel,
        audio=audio,
        options=tuple(
            Choice(o.key, _text(o.label, language).format_map(values)) for o in question.options
        ),
        expect=_expect(question),
        reprompt=reprompt,
        error=state.error if reprompt else None,
        final=state.status is not Status.ACTIVE,
        note=_text(question.note, language).format_map(values) if question.note else None,
        min=question.min,
        max=question.max,
    )


def reference_to_turn(prompt: Prompt) -> Turn:
    e = prompt.expect
    expect = " ".join(word for word, on in (("digits", e.digits), ("speech", e.speech)) if on)
    return Turn(
        text=prompt.text,
        audio=prompt.audio,
        language={"zh": "cmn-CN", "en": "en-US"}.get(prompt.language, prompt.language),
        expect="" if prompt.final else expect,
        max_digits=e.max_digits,
        finish_on_key=e.finish_key,
        timeout_seconds=e.timeout,
        hangup=prompt.final,
        question=prompt.question,
        kind=str(prompt.kind),
        choices=tuple(choice.key for choice in prompt.options),
    )


def reference_ending(script: Script, answers: dict[str, Any]) -> Status:
    chosen = list(answers_given(script, answers))
    if any(kind in SCREEN_OUTS for _, _, _, kind in chosen):
        return Status.SCREENED_OUT
    if any(option is not None and option.refusal for _, _, option, _ in chosen):
        return Status.REFUSED
    if not took_part(script, answers):
        return Status.REFUSED
    return Status.COMPLETE


# --- sessions: every state of every script ------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
@settings(max_examples=60, deadline=None)
@given(context=_CONTEXTS, channel=st.sampled_from(CHANNELS), steps=_STEPS)
def test_sessions_write_read_and_prompt_as_the_plain_code_does(
    script: Script, context: Context, channel: str, steps: list[str | None]
) -> None:
    for state in _walk(script, context, channel, steps):
        text = state.to_json()
        assert text == reference_to_json(state)
        assert SessionState.from_json(text) == state == reference_from_json(text)
        # Each channel and language in turn: the templates are kept per both.
        for on in (None, "agent", "ivr"):
            for language in (None, "zh", "en", "fr"):
                shown = prompt(script, state, on, language)
                assert shown == reference_prompt(script, state, on, language)
                assert to_turn(shown) == reference_to_turn(shown)
        given_answers = state.answer_map()
        assert ending(script, given_answers) is reference_ending(script, given_answers)


def test_a_reprompt_apologises_with_the_case_filled_in() -> None:
    script = PLACEHOLDERS_SCRIPT
    case = Context(item="结婚登记", unit="区民政局", applicant="张三")
    for channel in CHANNELS:
        state = start(script, case, channel=channel)
        for key in ("9", "", "1", "x"):
            state = answer(script, state, key)
            for language in ("zh", "en"):
                shown = prompt(script, state, language=language)
                assert shown == reference_prompt(script, state, language=language)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_every_question_of_a_state_made_by_hand_prompts_as_before(script: Script) -> None:
    case = Context(
        item="事项", unit="单位", applicant="申请人", handled_at=datetime(2024, 3, 4, tzinfo=UTC)
    )
    fields = start(script, case).fields
    for question in script.questions:
        for status in Status:
            for event, error in [
                (Event.ACCEPTED, None),
                (Event.REPROMPT, InputError.NO_INPUT),
                (Event.REPROMPT, InputError.NOT_AN_OPTION),
            ]:
                state = SessionState(
                    script.name, script.version, question.id, status, event=event, error=error,
                    channel="ivr", fields=fields,
                )  # fmt: skip
                for on in CHANNELS:
                    assert prompt(script, state, on) == reference_prompt(script, state, on)


# --- to_json: the same text for any state, even one typed otherwise -----------------------


@pytest.mark.parametrize(
    "change",
    [
        {"answers": (("q", 1.5),)},  # a float: written by json.dumps, not by hand
        {"answers": (("q", [1, "2"]),)},
        {"answers": (("q", 2**70), ("r", -1), ("s", False), ("t", None))},
        # Equal values of other types, one after another: each is written as its own type.
        {"answers": (("q", 1),)},
        {"answers": (("q", True),)},
        {"answers": (("q", 1.0),)},
        {"fields": (("date", 1),)},
        {"fields": (("date", True),)},
        {"answers": (("q", "v", "extra"),)},
        {"fields": (("date", 20240304),)},
        {"attempts": True},
        {"current": ""},
        {"channel": "\u2028\ud800"},  # a lone surrogate, as json.dumps writes it
    ],
)
def test_a_state_typed_otherwise_writes_as_json_dumps_would(change: dict[str, Any]) -> None:
    state = dataclasses.replace(start(SCRIPTS[0], Context(applicant='"张三"\\')), **change)
    assert state.to_json() == reference_to_json(state)


def test_a_state_json_cannot_write_is_refused_as_before() -> None:
    unwritable: Any = (("q", object()),)
    state = dataclasses.replace(start(SCRIPTS[0], Context()), answers=unwritable)
    with pytest.raises(TypeError, match="not JSON serializable"):
        reference_to_json(state)
    with pytest.raises(TypeError, match="not JSON serializable"):
        state.to_json()


# --- from_json: refuses what it refused, reads what it read -------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
    max_leaves=6,
)
_KEYS = ["format", "script", "version", "current", "status", "answers", "attempts", "event",
         "error", "channel", "language", "fields", "colour"]  # fmt: skip
_MEMBERS = st.sampled_from(
    [*(s.value for s in Status), *(e.value for e in Event), *(e.value for e in InputError)]
)


def _same_reading(text: Any) -> None:
    try:
        expected = reference_from_json(text)
    except SessionError:
        with pytest.raises(SessionError, match="not a saved survey session"):
            SessionState.from_json(text)
    else:
        assert SessionState.from_json(text) == expected


@settings(max_examples=400, deadline=None)
@given(
    key=st.sampled_from(_KEYS),
    value=st.one_of(
        _JSON,
        _MEMBERS,
        st.lists(st.lists(_JSON, max_size=3), max_size=3),
        st.lists(st.tuples(_STRINGS, _JSON).map(list), max_size=3),  # (almost) pairs
    ),
    drop=st.booleans(),
    spaced=st.booleans(),
)
def test_a_changed_saved_state_is_refused_or_read_as_before(
    key: str, value: Any, drop: bool, spaced: bool
) -> None:
    state = _walk(SCRIPTS[0], Context(applicant="张三"), "ivr", ["1", "1", "x"])[-1]
    data = json.loads(state.to_json())
    changed = copy.deepcopy(data)
    if drop:
        changed.pop(key, None)
    else:
        changed[key] = value
    _same_reading(json.dumps(changed, ensure_ascii=spaced))
    if spaced:
        _same_reading(f" {json.dumps(changed, indent=1)}\n")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("answers", [["q", 1.5]]),
        ("answers", [["q", [1]]]),
        ("answers", [["q", {}]]),
        ("answers", [[1, "a"]]),
        ("answers", [["q"]]),
        ("answers", [["q", "a", "b"]]),
        ("answers", ["ab"]),  # a string of two is a pair to unpack: read, as ever
        ("answers", {"ab": 1}),  # and so is each key of an object
        ("answers", "ab"),
        ("answers", [["q", None], ["q", True], ["r", -1]]),
        ("fields", [["k", 1]]),
        ("fields", [[None, "v"]]),
        ("fields", [["k", "v", "w"]]),
        ("current", None),
        ("current", 1),
        ("error", "no-input"),
        ("error", "no input"),
        ("status", "ACTIVE"),
        ("status", ["active"]),
        ("event", {"x": 1}),
        ("attempts", -1),
        ("attempts", 1.0),
        ("attempts", False),
        ("channel", "web"),
    ],
)
def test_a_saved_state_with_a_value_of_another_kind_is_read_as_before(key: str, value: Any) -> None:
    data = json.loads(start(SCRIPTS[0], Context(applicant="张三")).to_json())
    data[key] = value
    _same_reading(json.dumps(data, ensure_ascii=False))


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(_JSON.map(json.dumps), st.text(max_size=40), st.binary(max_size=20)))
def test_any_text_is_refused_or_read_as_before(text: Any) -> None:
    _same_reading(text)


def test_texts_the_fast_reader_passes_to_json_loads_read_as_before() -> None:
    state = start(SCRIPTS[0], Context(applicant="张三"))
    text = state.to_json()
    for variant in [text + " ", " " + text, text + "x", text.encode(), "\ufeff" + text,
                    bytearray(text.encode()), text.replace('"format":1', '"format":1.0'),
                    text.replace('"format":1', '"format":true'), text[:-1], 5, None]:  # fmt: skip
        _same_reading(variant)


# --- the lookups behind answer, ending and skip logic -------------------------------------

_ANSWER_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(["", "1", "a"]), st.floats(0, 2)
)


@settings(max_examples=300, deadline=None)
@given(
    options=st.lists(
        st.tuples(st.sampled_from("0123"), _ANSWER_VALUES.filter(lambda v: v is not None)),
        max_size=5,
    ),
    key=st.sampled_from("01234"),
    value=_ANSWER_VALUES,
)
def test_options_are_found_by_key_and_value_as_a_scan_finds_them(
    options: list[tuple[str, Any]], key: str, value: Any
) -> None:
    question = Question(
        id="q",
        kind=Kind.CHOICE,
        agent=Text.of(zh="?"),
        options=tuple(Option(k, v, Text.of(zh=str(n))) for n, (k, v) in enumerate(options)),
    )
    assert question.option(key) is next((o for o in question.options if o.key == key), None)
    assert question.chosen(value) is next(
        (o for o in question.options if same_value(o.value, value)), None
    )


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_ANSWER_VALUES.filter(lambda v: v is not None), max_size=4),
    negate=st.booleans(),
    answer_value=_ANSWER_VALUES,
)
def test_a_condition_holds_as_a_scan_of_its_values_says(
    values: list[Any], negate: bool, answer_value: Any
) -> None:
    condition = Condition("q", tuple(values), negate)
    expected = answer_value is not None and (
        any(same_value(answer_value, v) for v in values) != negate
    )
    assert condition.holds({"q": answer_value}) is expected


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_ending_says_what_answers_given_says(script: Script, data: st.DataObject) -> None:
    answers: dict[str, Any] = {}
    for question in script.questions:
        choices = [o.value for o in question.options] or [1, "text", True]
        value = data.draw(st.one_of(st.none(), st.sampled_from(choices), _ANSWER_VALUES))
        if data.draw(st.booleans()):
            answers[question.id] = value
    assert ending(script, answers) is reference_ending(script, answers)


def test_the_last_area_code_of_a_saved_state_reads_a_landline() -> None:
    script = PLACEHOLDERS_SCRIPT
    state = dataclasses.replace(
        start(script, Context()),
        current="phone",
        fields=(("area_code", "010"), ("area_code", "0571")),  # as dict(fields) has it: 0571
    )
    assert answer(script, state, "87654321#").answers == (("phone", "+8657187654321"),)


def test_a_text_is_looked_up_as_its_entries_say() -> None:
    text = Text((("zh", "甲"), ("en", "a"), ("zh", "乙")))  # a repeated language: the last
    assert [text.lookup(x) for x in ("zh", "en", "fr")] == ["乙", "a", None]
    assert text.get("fr") == "甲"


def test_a_replaced_script_keeps_no_templates_of_the_original() -> None:
    script = PLACEHOLDERS_SCRIPT
    state = start(script, Context(unit="区民政局"), channel="ivr")
    prompt(script, state)
    assert script.derived
    other = dataclasses.replace(script, audio_dir="elsewhere")
    assert other.derived == {}
    assert prompt(other, state).audio == str(Path("elsewhere") / "where.wav")
    assert prompt(script, state).audio == str(Path("audio") / "where.wav")


def test_time_zones_other_than_utc_fill_the_date_as_before() -> None:
    script = SCRIPTS[0]
    handled = datetime(2024, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    state = start(script, Context(handled_at=handled, timezone="America/New_York"), channel="ivr")
    state = answer(script, state, "1")
    for language in ("zh", "en"):
        assert prompt(script, state, language=language) == reference_prompt(
            script, state, language=language
        )


def test_expect_words_are_as_before() -> None:
    base = prompt(SCRIPTS[0], start(SCRIPTS[0], Context(), channel="ivr"))
    for digits in (False, True):
        for speech in (False, True):
            for final in (False, True):
                shown = dataclasses.replace(base, expect=Expect(digits, 1, "", speech), final=final)
                assert to_turn(shown) == reference_to_turn(shown)
