"""Survey scripts and the survey engine: the format, its validator, the state machine, results."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callback.dialing import Turn
from callback.survey_input import InputError
from callback.survey_prompts import prompt, to_turn
from callback.survey_results import Correction, Problem, results
from callback.surveys import (
    BUILTIN_SCRIPT_DIR,
    SCREEN_OUTS,
    Context,
    CorrectionKind,
    Event,
    Fallback,
    Frame,
    Kind,
    Observation,
    Script,
    ScriptError,
    SessionError,
    SessionState,
    Status,
    answer,
    decline,
    finished,
    load_script,
    observe,
    parse_script,
    resume,
    start,
)

FIXTURES = Path(__file__).parent / "survey_scripts"
INVALID = FIXTURES / "invalid"

# 17:30 UTC on 4 March is 01:30 on 5 March in Hangzhou: {date} must say the 5th.
HANDLED = datetime(2024, 3, 4, 17, 30, tzinfo=UTC)
CASE = Context(
    item="个体工商户设立登记",
    unit="余杭区市场监管局",
    applicant="张三",
    handled_at=HANDLED,
)


@pytest.fixture(scope="module")
def service() -> Script:
    return load_script(BUILTIN_SCRIPT_DIR / "service-callback.toml")


@pytest.fixture(scope="module")
def hotline() -> Script:
    return load_script(BUILTIN_SCRIPT_DIR / "hotline-check.toml")


@pytest.fixture(scope="module")
def kinds() -> Script:
    return load_script(FIXTURES / "all-kinds.toml")


@pytest.fixture(scope="module")
def consent() -> Script:
    return load_script(FIXTURES / "consent.toml")


def walk(script: Script, state: SessionState, *inputs: str | None) -> SessionState:
    """Type each of ``inputs``; None declines the question (拒答)."""
    for text in inputs:
        state = decline(script, state) if text is None else answer(script, state, text)
    return state


def base() -> dict[str, Any]:
    """A small valid script as TOML would parse it; tests break one thing at a time."""
    return {
        "name": "base",
        "title": "测试",
        "version": "1",
        "frame": "cases",
        "questions": [
            {
                "id": "trips",
                "kind": "choice",
                "agent": "跑了几次？",
                "options": [
                    {"key": "1", "value": 1, "label": "1次"},
                    {"key": "2", "value": 2, "label": "2次"},
                ],
            },
            {"id": "score", "kind": "rating", "agent": "打分"},
            {"id": "note", "kind": "text", "agent": "备注"},
        ],
        "rates": {"realised": {"question": "trips", "values": [1]}},
    }


def only_error(data: dict[str, Any], source: str = "base.toml") -> str:
    with pytest.raises(ScriptError) as caught:
        parse_script(data, source=source)
    assert len(caught.value.errors) == 1, caught.value.errors
    return caught.value.errors[0]


# --- loading the format ------------------------------------------------------------------


def test_builtin_scripts_load_with_their_names_and_frames(service: Script, hotline: Script) -> None:
    assert (service.name, service.frame, service.languages) == (
        "service-callback",
        Frame.CASES,
        ("zh", "en"),
    )
    assert (hotline.name, hotline.frame) == ("hotline-check", Frame.HOTLINES)
    assert service.title.get("zh") == "办事服务回访"
    assert hotline.title.get("en") == "Hotline spot check"


def test_builtin_satisfaction_counts_the_first_three_levels(service: Script) -> None:
    rate = service.rate("satisfied")
    assert rate is not None
    labels = [o.label.get("zh") for o in service.question("satisfaction").options]
    assert labels == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    counted = [o.label.get("zh") for o in service.question("satisfaction").options
               if o.value in rate.condition.values]  # fmt: skip
    assert counted == ["非常满意", "满意", "基本满意"]


def test_hotline_marks_what_a_dialer_can_fill(hotline: Script) -> None:
    observed = {q.id: q.observe for q in hotline.questions if q.observe}
    assert observed == {
        "answered": Observation.ANSWERED,
        "answer_seconds": Observation.ANSWER_SECONDS,
        "answered_by": Observation.ANSWERED_BY,
    }
    assert hotline.question("on_the_spot").observe is None


def test_every_construct_of_the_fixture_is_read(kinds: Script) -> None:
    assert kinds.version == "2"
    assert kinds.audio_dir == str(FIXTURES / "audio")
    assert kinds.retry is not None and kinds.retry.get("en") == "Once more, please."
    who = kinds.question("who")
    assert [(o.key, o.value, o.next, o.correction) for o in who.options] == [
        ("1", "me", None, None),
        ("2", "other", "phone", CorrectionKind.CONTACT),
        ("9", "nobody", "bye", CorrectionKind.WRONG_NUMBER),
    ]
    assert who.note is not None and who.note.get("zh") == "只问一次。"
    # Script defaults apply where a question says nothing; a question's own value wins.
    assert (who.retries, who.on_fail, who.timeout) == (1, Fallback.SKIP, 6)
    known = kinds.question("known")
    assert (known.retries, known.on_fail, known.timeout) == (0, Fallback.END, 10)
    assert [(o.key, o.value, o.label.get("zh")) for o in known.options] == [
        ("1", True, "是"),
        ("2", False, "没有"),
    ]
    assert known.audio is not None and known.audio.lookup("en") == "known-en.wav"
    assert kinds.question("hello").audio.lookup("en") is None  # type: ignore[union-attr]
    trips = kinds.question("trips")
    assert (trips.kind, trips.min, trips.max, trips.digits) == (Kind.NUMBER, 0, 9, 1)
    assert kinds.question("amount").digits == 6  # no max: six digits by default
    stars = kinds.question("stars")
    assert [o.key for o in stars.options] == ["1", "2", "3", "4", "5"]
    more = kinds.question("more")
    assert [(c.question, c.values, c.negate) for c in more.when] == [
        ("stars", (1,), True),
        ("who", ("me",), False),
    ]
    assert more.problem is not None and more.problem.category_from == "who"
    assert kinds.question("phone").correction is CorrectionKind.PHONE
    rates = {r.name: (r.condition.question, r.if_skipped) for r in kinds.rates}
    assert rates == {
        "realised": ("trips", None),
        "satisfied": ("stars", None),
        "not_unhappy": ("stars", False),
    }


def test_yaml_script_equals_its_toml_twin() -> None:
    from_toml = load_script(FIXTURES / "yes-no.toml")
    from_yaml = load_script(FIXTURES / "yes-no.yaml")
    assert dataclasses.replace(from_yaml, source="") == dataclasses.replace(from_toml, source="")
    # YAML 1.1 would have read `yes:` as the boolean true and lost the label.
    assert from_yaml.question("ok").options[0].label.get("zh") == "接通"


def test_yaml_without_pyyaml_is_a_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ScriptError, match=r"yes-no\.yaml: YAML scripts need PyYAML"):
        load_script(FIXTURES / "yes-no.yaml")


def test_a_plain_string_is_the_text_of_the_first_language() -> None:
    script = load_script(FIXTURES / "yes-no.toml")
    assert script.languages == ("zh",)
    assert script.question("ok").agent.entries == (("zh", "接通了吗？"),)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("duplicate-key.toml", 'question "trips": option key "1" used twice'),
        (
            "unknown-placeholder.toml",
            "question \"identity\": field 'agent': zh text has an unknown placeholder {id_number}",
        ),
        ("cycle.toml", "question \"second\": field 'next': makes a loop: first → second → first"),
        (
            "missing-target.toml",
            "question \"first\": field 'options[1].next': no question 'thrid'",
        ),
        (
            "bad-rate.toml",
            "field 'rates.satisfied.values': 'happy' is not a value of question 'satisfaction'",
        ),
        ("missing-english.toml", "question \"trips\": field 'agent': no text in en"),
        ("not-toml.toml", "not valid TOML"),
        ("not-yaml.yaml", "not valid YAML"),
        ("wrong-suffix.json", "a script is a .toml, .yaml or .yml file"),
    ],
)
def test_invalid_fixture_names_file_question_and_field(file: str, expected: str) -> None:
    with pytest.raises(ScriptError) as caught:
        load_script(INVALID / file)
    assert str(caught.value).startswith(f"{INVALID / file}: ")
    assert expected in str(caught.value)


def test_every_error_of_a_file_is_reported_at_once() -> None:
    with pytest.raises(ScriptError) as caught:
        load_script(INVALID / "many-errors.toml")
    errors = caught.value.errors
    assert all(e.startswith(f"{INVALID / 'many-errors.toml'}: ") for e in errors)
    found = "\n".join(errors)
    for part in [
        "field 'name': 'Many Errors' does not match",
        "field 'frame': 'case' is not one of 'cases', 'hotlines'",
        "field 'version': required",
        "question \"trips\": field 'kind': 'choise' is not one of",
        "question \"stars\": field 'retries': must be from 0 to 9, not -1",
        "question \"stars\": field 'max': must be from 0 to 9, not 12",
    ]:
        assert part in found
    assert len(errors) == 6


def test_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="nothing.toml: cannot read"):
        load_script(tmp_path / "nothing.toml")


def test_a_file_that_is_not_utf8_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes('title = "回访"'.encode("gbk"))
    with pytest.raises(ScriptError, match="gbk.toml: not UTF-8 text"):
        load_script(path)


def test_the_base_script_is_valid() -> None:
    assert parse_script(base(), source="base.toml").name == "base"


def _set(path: str, value: Any) -> dict[str, Any]:
    """base() with one field changed: "questions.0.options.1.key" walks lists and tables."""
    data = base()
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("name", "Base!", "field 'name': 'Base!' does not match"),
        ("version", 1, "field 'version': must be a non-empty string, not 1"),
        ("frame", "people", "field 'frame': 'people' is not one of 'cases', 'hotlines'"),
        ("title", _DELETE, "field 'title': required"),
        ("title", "第{item}次", "field 'title': zh text must not have placeholders"),
        ("languages", ["zh", "zh"], "field 'languages': must list language codes once each"),
        ("retries", 10, "field 'retries': must be from 0 to 9, not 10"),
        ("on_fail", "hang-up", "field 'on_fail': 'hang-up' is not one of 'skip', 'end'"),
        ("timeout", 0, "field 'timeout': must be from 1 to 60, not 0"),
        ("colour", "red", "field 'colour': unknown field of a script"),
        ("questions", [], "field 'questions': a script needs at least one question"),
        ("questions.0.id", "Trips", "question #1: field 'id': must be a name like"),
        ("questions.0.id", "end", "question #1: field 'id': must be a name like"),
        ("questions.1.id", "trips", "question \"trips\": field 'id': used twice"),
        ("questions.0.kind", _DELETE, "question \"trips\": field 'kind': required"),
        ("questions.0.agent", _DELETE, "question \"trips\": field 'agent': required"),
        ("questions.0.agent", "", "question \"trips\": field 'agent': zh text must be a non-empty"),
        (
            "questions.0.agent",
            {"zh": "x", "fr": "y"},
            "question \"trips\": field 'agent': language 'fr'",
        ),
        ("questions.0.agent", "{item!r}", "field 'agent': zh text has a placeholder {item}"),
        ("questions.0.agent", "{item", "field 'agent': zh text has an unmatched { or }"),
        ("questions.0.agent", "{0}", "field 'agent': zh text has an unknown placeholder {0}"),
        ("questions.0.ivr", "按{key}", "field 'ivr': zh text has an unknown placeholder {key}"),
        ("questions.0.audio", "../x.wav", "field 'audio': zh text must be a file name relative"),
        ("questions.0.min", 1, "question \"trips\": field 'min': unknown field of a choice"),
        ("questions.0.options", [], "question \"trips\": field 'options': a choice needs"),
        ("questions.0.options.1.key", "12", "field 'options[2].key': must be one keypad digit"),
        ("questions.0.options.1.key", 2, "field 'options[2].key': must be one keypad digit"),
        ("questions.0.options.1.key", "#", "field 'options[2].key': must be one keypad digit"),
        ("questions.0.options.1.value", 1, 'question "trips": option value 1 used twice'),
        ("questions.0.options.1.value", 1.5, "field 'options[2].value': must be a string"),
        ("questions.0.options.1.label", _DELETE, "field 'options[2].label': required"),
        ("questions.0.options.1.next", "nowhere", "field 'options[2].next': no question"),
        ("questions.0.options.1.colour", 1, "field 'options[2].colour': unknown field"),
        ("questions.0.options.1.correction", "phone", "a phone correction belongs on a phone"),
        ("questions.0.options.1.correction", "name", "field 'options[2].correction': 'name'"),
        ("questions.0.options.1.refusal", "yes", "field 'options[2].refusal': must be true or"),
        ("questions.0.next", "nowhere", "question \"trips\": field 'next': no question"),
        ("questions.0.retries", "2", "question \"trips\": field 'retries': must be a whole"),
        ("questions.0.observe", "answered", "field 'observe': answered needs a yesno question"),
        ("questions.1.min", 5, "question \"score\": field 'max': must be more than min (5)"),
        ("questions.1.max", 10, "question \"score\": field 'max': must be from 0 to 9"),
        ("questions.2.speech", "yes", "question \"note\": field 'speech': must be true or false"),
        ("questions.2.correction", "phone", "a phone correction belongs on a phone question"),
        ("questions.2.problem", {}, "field 'problem.category': required"),
        ("questions.2.problem", {"category": "x", "category_from": "score"}, "not an earlier"),
        ("questions.2.when", {"question": "later"}, "field 'when.question': 'later' is not an"),
        ("questions.2.when", {"question": "trips"}, "field 'when': give exactly one of values"),
        ("questions.2.when", {"question": "trips", "values": []}, "must be a non-empty list"),
        ("questions.2.when", {"question": "trips", "values": [3]}, "3 is not a value of"),
        ("questions.2.when", {"question": "trips", "values": [True]}, "True is not a value"),
        ("questions.2.when", {"question": "score", "not_values": [6]}, "'when.not_values': 6"),
        ("questions.2.when", "trips == 1", "field 'when': must be a table such as"),
        ("questions.2.when", [{"question": "trips", "values": [1], "x": 1}], "'x': unknown"),
        ("rates.realised", {"question": "nope", "values": [1]}, "'rates.realised.question'"),
        ("rates.realised", {"question": "note", "values": [1]}, "1 is not text"),
        ("rates.realised.if_skipped", 0, "field 'if_skipped': must be true or false"),
        ("rates.Realised", {"question": "trips", "values": [1]}, "a rate is named like"),
        ("rates", [], "field 'rates': must be a table"),
    ],
)
def test_invalid_field_is_reported_with_its_question_and_field(
    path: str, value: Any, expected: str
) -> None:
    error = only_error(_set(path, value))
    assert error.startswith("base.toml: ")
    assert expected in error


def test_a_question_nothing_leads_to_is_an_error() -> None:
    data = base()
    data["questions"][0]["options"][0]["next"] = "note"
    data["questions"][0]["options"][1]["next"] = "note"
    data["questions"][0]["on_fail"] = "end"
    assert 'question "score": never asked: no question leads to it' in only_error(data)


def test_a_forward_jump_past_a_question_is_not_a_loop() -> None:
    data = base()
    data["questions"][0]["options"][0]["next"] = "note"
    assert parse_script(data).question("trips").options[0].next == "note"


def test_a_say_question_has_no_answer_to_test() -> None:
    data = base()
    data["questions"].insert(0, {"id": "hi", "kind": "say", "agent": "您好"})
    data["questions"][3]["when"] = {"question": "hi", "values": ["x"]}
    assert "'hi' is a say question" in only_error(data)


def test_answered_by_needs_person_and_machine_options() -> None:
    data = base()
    data["questions"][0]["observe"] = "answered_by"
    assert 'answered_by needs options with the values "person" and "machine"' in only_error(data)


def test_an_observation_belongs_to_one_question() -> None:
    data = base()
    data["questions"][1:1] = [
        {"id": "a", "kind": "yesno", "agent": "接通？", "observe": "answered"},
        {"id": "b", "kind": "yesno", "agent": "接通？", "observe": "answered"},
    ]
    assert "answered is observed by an earlier question" in only_error(data)


def test_number_digits_must_reach_max() -> None:
    data = base()
    data["questions"][1] = {"id": "n", "kind": "number", "agent": "几秒", "max": 600, "digits": 2}
    assert "field 'digits': 2 digits cannot reach max (600)" in only_error(data)


def test_a_yes_no_table_names_its_fields() -> None:
    data = base()
    data["questions"][1] = {"id": "ok", "kind": "yesno", "agent": "好？", "no": {"nxt": "end"}}
    assert "question \"ok\": field 'no.nxt': unknown field of no" in only_error(data)
    data["questions"][1]["no"] = {"next": "bye_cas"}
    assert "question \"ok\": field 'no.next': no question 'bye_cas'" in only_error(data)
    data["questions"][1]["no"] = {"refusal": 1}
    assert "question \"ok\": field 'no.refusal': must be true or false" in only_error(data)


def test_an_option_may_be_marked_as_a_refusal(consent: Script) -> None:
    yes, no = consent.question("consent").options
    assert (yes.refusal, no.refusal, no.next) == (False, True, "bye")
    assert not any(o.refusal for o in consent.question("identity").options)


# --- the engine: flow ----------------------------------------------------------------------


def test_start_asks_the_first_question(kinds: Script) -> None:
    state = start(kinds, CASE)
    assert (state.current, state.status, state.event) == ("hello", Status.ACTIVE, Event.STARTED)
    assert not finished(state)


def test_start_refuses_an_unknown_channel_or_language(kinds: Script) -> None:
    with pytest.raises(ValueError, match="channel"):
        start(kinds, CASE, channel="fax")
    with pytest.raises(ValueError, match="'fr'"):
        start(kinds, CASE, language="fr")


def test_a_naive_handled_at_is_refused(kinds: Script) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        start(kinds, dataclasses.replace(CASE, handled_at=datetime(2024, 3, 4, 9)))


def test_a_say_question_moves_on_with_any_input(kinds: Script) -> None:
    state = answer(kinds, start(kinds, CASE), "")
    assert (state.current, state.event, state.answers) == ("who", Event.ACCEPTED, ())


def test_an_option_next_jumps(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "2")
    assert state.current == "phone"


def test_without_a_next_the_following_question_comes(kinds: Script) -> None:
    assert walk(kinds, start(kinds, CASE), "", "1").current == "known"


def test_a_when_that_fails_passes_the_question_by(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "4")
    assert state.current == "more"  # "why" is only for scores 1 and 2
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "2")
    assert state.current == "why"


def test_every_condition_of_a_when_must_hold(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "1", "太慢")
    assert state.current == "amount"  # "more" needs a score other than 1


def test_a_final_say_question_finishes_the_session(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "9")
    assert (state.current, state.status) == ("bye", Status.SCREENED_OUT)  # wrong number
    assert finished(state)
    final = prompt(kinds, state)
    assert (final.question, final.text, final.final) == ("bye", "打扰了。", True)


def test_input_to_a_finished_session_changes_nothing(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "9")
    assert answer(kinds, state, "1") is state
    assert decline(kinds, state) is state


def test_running_past_the_last_question_completes_with_the_goodbye(hotline: Script) -> None:
    state = walk(hotline, start(hotline, Context(unit="某局")), "2", "")
    assert (state.status, state.current) == (Status.COMPLETE, None)
    goodbye = prompt(hotline, state, language="en")
    assert (goodbye.question, goodbye.text, goodbye.final) == (
        "",
        "Thank you for your time. Goodbye.",
        True,
    )


def test_decline_records_no_answer_and_moves_on(kinds: Script) -> None:
    state = decline(kinds, walk(kinds, start(kinds, CASE), "", "1", "1"))
    assert state.answer_map()["trips"] is None
    assert (state.current, state.event) == ("stars", Event.DECLINED)


# --- the engine: reading input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [("1", True), ("2", False), ("是", True), ("不是", False), ("Y", True), ("no", False),
     ("１", True)],
)  # fmt: skip
def test_yes_no_takes_keys_and_words(kinds: Script, typed: str, value: bool) -> None:
    state = answer(kinds, walk(kinds, start(kinds, CASE), "", "1"), typed)
    assert state.answer_map()["known"] is value


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("3", 3), ("3#", 3), ("０", 0), (" 9 ", 9), ("10", InputError.OUT_OF_RANGE),
     ("three", InputError.NOT_A_NUMBER), ("", InputError.NO_INPUT),
     ("-1", InputError.NOT_A_NUMBER)],
)  # fmt: skip
def test_a_number_is_read_and_range_checked(kinds: Script, typed: str, expected: Any) -> None:
    state = answer(kinds, walk(kinds, start(kinds, CASE), "", "1", "1"), typed)
    if isinstance(expected, InputError):
        assert (state.current, state.event, state.error) == ("trips", Event.REPROMPT, expected)
    else:
        assert state.answer_map()["trips"] == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("13857104321", "+8613857104321"),
        ("138 5710 4321#", "+8613857104321"),
        ("88776655", "+8657188776655"),  # a landline without its area code: the case's
        ("0571-88776655", "+8657188776655"),
        ("13800000000", None),  # a placeholder, not a number
        ("13812345678", None),
        ("12345", None),
    ],
)
def test_a_phone_answer_is_e164(kinds: Script, typed: str, expected: str | None) -> None:
    state = answer(kinds, walk(kinds, start(kinds, CASE), "", "2"), typed)
    if expected is None:
        assert (state.event, state.error) == (Event.REPROMPT, InputError.NOT_A_PHONE)
    else:
        assert state.answer_map()["phone"] == expected


def test_the_area_code_comes_from_the_context(kinds: Script) -> None:
    ningbo = dataclasses.replace(CASE, area_code="0574")
    state = walk(kinds, start(kinds, ningbo), "", "2", "88776655")
    assert state.answer_map()["phone"] == "+8657488776655"


def test_a_choice_takes_only_its_keys(kinds: Script) -> None:
    state = answer(kinds, start(kinds, CASE), "")
    refused = answer(kinds, state, "me")
    assert (refused.current, refused.error) == ("who", InputError.NOT_AN_OPTION)
    assert answer(kinds, state, "9").answer_map()["who"] == "nobody"


def test_a_rating_refuses_keys_off_the_scale(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3")
    assert answer(kinds, state, "6").error is InputError.NOT_AN_OPTION
    assert answer(kinds, state, "5").answer_map()["stars"] == 5


def test_free_text_is_kept_as_typed(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "1", "  窗口 太少，排队２小时 ")
    assert state.answer_map()["why"] == "窗口 太少，排队２小时"


def test_an_optional_text_takes_an_empty_answer_as_no_answer(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "4", "")
    assert state.answer_map()["more"] is None
    assert state.current == "amount"


def test_a_required_text_refuses_an_empty_answer(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "1", "   ")
    assert (state.current, state.error) == ("why", InputError.NO_INPUT)


# --- the engine: re-prompts and fallbacks --------------------------------------------------


def test_reprompts_are_limited_then_no_answer_is_recorded(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1")  # trips: retries 2, no-answer
    state = walk(kinds, state, "x", "x")
    assert (state.current, state.attempts, state.event) == ("trips", 2, Event.REPROMPT)
    state = answer(kinds, state, "x")
    assert (state.current, state.event, state.error) == (
        "stars",
        Event.GAVE_UP,
        InputError.NOT_A_NUMBER,
    )
    assert state.answer_map() == {"who": "me", "known": True, "trips": None}
    assert state.attempts == 0


def test_the_skip_fallback_leaves_no_answer_behind(kinds: Script) -> None:
    state = answer(kinds, start(kinds, CASE), "")  # who: script default, retries 1, skip
    state = walk(kinds, state, "7", "7")
    assert (state.current, state.event) == ("known", Event.GAVE_UP)
    assert "who" not in state.answer_map()


def test_the_end_fallback_ends_the_session(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "")  # known: retries 0, end
    assert (state.status, state.current, state.event) == (Status.ENDED, "known", Event.GAVE_UP)
    assert finished(state)
    goodbye = prompt(kinds, state)
    assert (goodbye.question, goodbye.text, goodbye.final) == ("", "再见。", True)
    assert results(kinds, state).partial


def test_a_correct_answer_resets_the_count(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "x", "x", "2", "x")
    assert (state.current, state.attempts) == ("stars", 1)


def test_an_ivr_reprompt_apologises_and_drops_the_recording(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE, channel="ivr"), "", "1")
    first = prompt(kinds, state)
    assert first.audio == str(FIXTURES / "audio" / "known.wav")
    again = prompt(kinds, answer(kinds, walk(kinds, state), "5"))  # retries 0 → ends
    assert again.final
    state = walk(kinds, start(kinds, CASE, channel="ivr"), "", "1", "1")
    sorry = prompt(kinds, answer(kinds, state, "x"))
    assert sorry.reprompt and sorry.error is InputError.NOT_A_NUMBER
    assert sorry.text == "请输入0到9。跑了几次？输入后请按井号键。"
    assert sorry.audio is None


def test_an_agent_reprompt_flags_the_error_without_an_apology(kinds: Script) -> None:
    state = answer(kinds, walk(kinds, start(kinds, CASE), "", "1", "1"), "12")
    shown = prompt(kinds, state)
    assert (shown.reprompt, shown.error, shown.text) == (
        True,
        InputError.OUT_OF_RANGE,
        "跑了几次？",
    )


def test_the_default_apology_says_whether_nothing_was_heard(service: Script) -> None:
    state = start(service, CASE, channel="ivr")
    silent = prompt(service, answer(service, state, ""))
    wrong = prompt(service, answer(service, state, "8"))
    assert silent.text.startswith("对不起，没有听到您的回答。您好！")
    assert wrong.text.startswith("对不起，您的输入无效。您好！")
    english = prompt(service, answer(service, state, "8"), language="en")
    assert english.text.startswith("Sorry, that is not a valid answer. Hello,")


# --- the engine: prompts -------------------------------------------------------------------


def test_placeholders_are_filled_from_the_case(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1")
    assert (
        prompt(kinds, state).text
        == "您在2024年3月5日于余杭区市场监管局办理了个体工商户设立登记吗？"
    )
    assert prompt(kinds, state, language="en").text == (
        "Did you apply to 余杭区市场监管局 for 个体工商户设立登记 on 5 March 2024?"
    )


def test_the_date_is_local_to_the_context_time_zone(kinds: Script) -> None:
    london = dataclasses.replace(CASE, timezone="Europe/London")
    state = walk(kinds, start(kinds, london), "", "1")
    assert "2024年3月4日" in prompt(kinds, state).text


def test_doubled_braces_are_literal(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "4")
    assert prompt(kinds, state).text == "还有建议吗？{可不填}"


def test_english_prompts_use_english_text_and_labels(service: Script) -> None:
    shown = prompt(service, walk(service, start(service, CASE), "1", "1"), language="en")
    assert shown.text.startswith("For this application, how many times")
    assert [(c.key, c.label) for c in shown.options] == [
        ("0", "None"),
        ("1", "Once"),
        ("2", "Twice"),
        ("3", "Three times or more"),
    ]
    assert shown.language == "en"


def test_a_session_started_in_english_prompts_in_english(service: Script) -> None:
    state = start(service, CASE, language="en", channel="ivr")
    shown = prompt(service, state)
    assert shown.text.startswith("Hello, this is the Zhejiang")
    assert to_turn(shown).language == "en-US"


def test_a_language_the_script_lacks_falls_back_to_its_first() -> None:
    script = load_script(FIXTURES / "yes-no.toml")
    shown = prompt(script, start(script, Context()), language="en")
    assert (shown.language, shown.text) == ("zh", "接通了吗？")


def test_an_agent_prompt_carries_options_note_and_no_audio(kinds: Script) -> None:
    shown = prompt(kinds, answer(kinds, start(kinds, CASE), ""))
    assert shown.kind is Kind.CHOICE
    assert [(c.key, c.label) for c in shown.options] == [
        ("1", "是"),
        ("2", "不是"),
        ("9", "打错了"),
    ]
    assert (shown.note, shown.audio, shown.channel) == ("只问一次。", None, "agent")


def test_an_ivr_prompt_without_ivr_text_gets_a_keypad_menu(kinds: Script) -> None:
    state = answer(kinds, start(kinds, CASE, channel="ivr"), "")
    assert prompt(kinds, state).text == "请问您是张三吗？是请按1；不是请按2；打错了请按9。"
    assert prompt(kinds, state, language="en").text == (
        "Are you 张三? For Yes, press 1. For No, press 2. For Wrong number, press 9."
    )
    rating = prompt(kinds, walk(kinds, state, "1", "1", "3"))
    assert rating.text == "请打分，1到5分。请按1到5。"


def test_audio_is_looked_up_per_language(kinds: Script) -> None:
    state = start(kinds, CASE, channel="ivr")
    assert prompt(kinds, state).audio == str(FIXTURES / "audio" / "hello.wav")
    assert prompt(kinds, state, language="en").audio is None  # no English recording


def test_the_ivr_passes_by_text_it_cannot_capture(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE, channel="ivr"), "", "1", "1", "3", "4")
    assert state.current == "amount"  # "more" has no speech: an agent only
    agent = walk(kinds, start(kinds, CASE), "", "1", "1", "3", "4")
    assert agent.current == "more"


# --- to_turn -------------------------------------------------------------------------------


def test_a_choice_turn_collects_one_digit(service: Script) -> None:
    turn = to_turn(prompt(service, start(service, CASE, channel="ivr")))
    assert turn == Turn(
        text=turn.text,
        audio=None,
        language="cmn-CN",
        expect="digits",
        max_digits=1,
        finish_on_key="",
        timeout_seconds=8,
        hangup=False,
        question="identity",
        kind="choice",
        choices=("1", "2", "3", "4"),
    )
    assert "是本人请按1" in turn.text


def test_number_and_phone_turns_end_on_hash(kinds: Script) -> None:
    state = start(kinds, CASE, channel="ivr")
    trips = to_turn(prompt(kinds, walk(kinds, state, "", "1", "1")))
    assert (trips.expect, trips.max_digits, trips.finish_on_key, trips.timeout_seconds) == (
        "digits",
        1,
        "#",
        6,
    )
    phone = to_turn(prompt(kinds, walk(kinds, state, "", "2")))
    assert (phone.max_digits, phone.finish_on_key) == (12, "#")


def test_a_speech_question_turn_listens_for_speech(service: Script) -> None:
    state = walk(service, start(service, CASE, channel="ivr"), "1", "1", "1", "1", "1")
    turn = to_turn(prompt(service, state))
    assert state.current == "suggestion"
    assert turn.expect == "speech"


def test_a_say_turn_expects_nothing_and_the_last_hangs_up(kinds: Script) -> None:
    state = start(kinds, CASE, channel="ivr")
    hello = to_turn(prompt(kinds, state))
    assert (hello.expect, hello.hangup, hello.audio) == (
        "",
        False,
        str(FIXTURES / "audio/hello.wav"),
    )
    bye = to_turn(prompt(kinds, walk(kinds, state, "", "9")))
    assert (bye.expect, bye.hangup, bye.text) == ("", True, "打扰了。")


# --- results -------------------------------------------------------------------------------


def test_rates_come_from_the_declared_answers(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "1", "5", "", "12", "")
    outcome = results(kinds, state)
    assert outcome.complete and outcome.status is Status.COMPLETE
    assert (outcome.realised, outcome.satisfied) == (True, True)
    assert outcome.rates["not_unhappy"] is True
    two_trips = results(kinds, walk(kinds, start(kinds, CASE), "", "1", "1", "2", "1"))
    assert (two_trips.realised, two_trips.satisfied, two_trips.rates["not_unhappy"]) == (
        False,
        False,
        False,
    )


def test_a_rate_is_unknown_without_an_answer(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "x", "x", "x")  # trips: no answer
    assert results(kinds, state).realised is None
    assert results(kinds, walk(kinds, start(kinds, CASE), "")).satisfied is None  # partial


def test_if_skipped_sets_the_flag_of_a_complete_session_that_passed_by(hotline: Script) -> None:
    unanswered = results(hotline, walk(hotline, start(hotline, Context(unit="某局")), "2", ""))
    assert unanswered.complete and "answered_by" not in unanswered.answers
    assert unanswered.rates == {"connected": False, "real_time": None}


def test_if_skipped_does_not_speak_for_a_screen_out(kinds: Script) -> None:
    wrong_number = results(kinds, walk(kinds, start(kinds, CASE), "", "9"))
    assert not wrong_number.complete and wrong_number.screened_out
    assert wrong_number.rates == {"realised": None, "satisfied": None, "not_unhappy": None}


def test_corrections_are_proposed_by_options_and_phone_answers(kinds: Script) -> None:
    outcome = results(kinds, walk(kinds, start(kinds, CASE), "", "2", "13857104321"))
    assert outcome.corrections == (
        Correction(CorrectionKind.CONTACT, "who", "other"),
        Correction(CorrectionKind.PHONE, "phone", "+8613857104321"),
    )
    assert outcome.ended_at == "bye"


def test_a_yes_no_option_proposes_a_case_correction(kinds: Script) -> None:
    outcome = results(kinds, walk(kinds, start(kinds, CASE), "", "1", "2"))
    assert outcome.corrections == (Correction(CorrectionKind.CASE, "known", False),)


def test_problems_carry_category_and_text(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "1", "2", "窗口少", "多开窗口")
    assert results(kinds, state).problems == (
        Problem("complaint", "why", "窗口少"),
        Problem("me", "more", "多开窗口"),  # category_from: the answer to "who"
    )


def test_an_empty_optional_text_raises_no_problem(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE), "", "1", "1", "1", "4", "")
    assert results(kinds, state).problems == ()


def test_results_of_a_broken_off_session_are_partial(kinds: Script) -> None:
    outcome = results(kinds, walk(kinds, start(kinds, CASE), "", "1", "1"))
    assert (outcome.complete, outcome.partial, outcome.status) == (False, True, Status.ACTIVE)
    assert outcome.ended_at == "trips"
    assert dict(outcome.answers) == {"who": "me", "known": True}


# --- how a finished session ended: interview, screen-out, refusal -----------------------------


def test_an_interview_that_runs_to_the_end_is_complete(consent: Script) -> None:
    state = walk(consent, start(consent, CASE), "1", "1", "2", "1")
    assert (state.current, state.status) == ("thanks", Status.COMPLETE)
    outcome = results(consent, state)
    assert outcome.complete and not (outcome.partial or outcome.screened_out or outcome.refused)
    assert (outcome.realised, outcome.satisfied) == (False, True)
    passed_by = results(consent, walk(consent, start(consent, CASE), "1", "1", "1"))
    assert passed_by.complete and (passed_by.realised, passed_by.satisfied) == (True, True)


def test_a_script_ending_on_not_me_is_screened_out_not_complete(consent: Script) -> None:
    state = answer(consent, start(consent, CASE), "2")
    assert finished(state)
    assert (state.current, state.status) == ("bye", Status.SCREENED_OUT)
    assert prompt(consent, state).final  # the goodbye is said all the same
    outcome = results(consent, state)
    assert (outcome.complete, outcome.partial, outcome.screened_out) == (False, False, True)
    assert outcome.rates == {"realised": None, "satisfied": None}  # if_skipped does not apply
    assert outcome.corrections == (Correction(CorrectionKind.WRONG_NUMBER, "identity", "not_me"),)


def test_a_script_ending_on_a_refusal_is_refused_not_complete(consent: Script) -> None:
    state = walk(consent, start(consent, CASE), "1", "2")
    assert finished(state)
    assert (state.current, state.status) == ("bye", Status.REFUSED)
    outcome = results(consent, state)
    assert (outcome.complete, outcome.partial, outcome.refused) == (False, False, True)
    assert outcome.rates == {"realised": None, "satisfied": None}
    assert SessionState.from_json(state.to_json()) == state


def test_declining_every_rate_question_is_a_refusal_not_an_interview(service: Script) -> None:
    # The applicant, the right case, then 拒答 to both rate questions; the rest answered.
    state = walk(service, start(service, CASE), "1", "1", None, None, "2", "1", "1")
    assert finished(state) and state.status is Status.REFUSED
    outcome = results(service, state)
    assert (outcome.complete, outcome.partial, outcome.refused) == (False, False, True)
    assert outcome.rates == {"realised": None, "satisfied": None}
    assert outcome.answers["identity"] == "applicant"  # what was said is kept all the same


def test_declining_everything_put_to_the_respondent_is_a_refusal(service: Script) -> None:
    state = walk(service, start(service, CASE), None, None, None, None, None, None, None)
    assert (finished(state), state.status) == (True, Status.REFUSED)
    assert set(results(service, state).answers.values()) == {None}


def test_one_rate_answered_among_declines_is_an_interview(service: Script) -> None:
    state = walk(service, start(service, CASE), "1", "1", None, "2", None, None, None)
    outcome = results(service, state)
    assert (outcome.status, outcome.complete) == (Status.COMPLETE, True)
    assert outcome.rates == {"realised": None, "satisfied": True}  # 拒答 stays out of its rate


def test_a_refusal_by_declines_gets_no_rate_from_skip_logic(consent: Script) -> None:
    # 拒答 to the identity and to trips: skip logic then passes satisfaction by, whose
    # if_skipped would count an interview as satisfied. No interview, no rate.
    outcome = results(consent, walk(consent, start(consent, CASE), None, "1", None))
    assert (outcome.status, outcome.rates) == (
        Status.REFUSED,
        {"realised": None, "satisfied": None},
    )


def test_where_no_rate_question_was_asked_any_answer_makes_the_interview(hotline: Script) -> None:
    # Not answered: the path passes answered_by (the 接通率 question) by, notes left blank.
    state = walk(hotline, start(hotline, Context(unit="某局")), "2", None)
    outcome = results(hotline, state)
    assert (outcome.status, outcome.rates["connected"]) == (Status.COMPLETE, False)
    assert "answered_by" not in outcome.answers


def test_a_session_saved_as_complete_with_everything_declined_is_refused(service: Script) -> None:
    state = walk(service, start(service, CASE), "1", "1", None, None, None, None, None)
    saved = dataclasses.replace(state, status=Status.COMPLETE)  # as earlier versions saved it
    outcome = results(service, SessionState.from_json(saved.to_json()))
    assert (outcome.status, outcome.complete) == (Status.REFUSED, False)


def test_a_screen_out_saved_as_complete_by_an_earlier_version_is_not_complete(
    service: Script,
) -> None:
    state = answer(service, start(service, CASE), "4")  # 不认识，打错了
    saved = dataclasses.replace(state, status=Status.COMPLETE)  # as earlier versions saved it
    outcome = results(service, SessionState.from_json(saved.to_json()))
    assert (outcome.status, outcome.complete) == (Status.SCREENED_OUT, False)


# --- saving and resuming -------------------------------------------------------------------


def test_state_json_round_trips_exactly(kinds: Script) -> None:
    state = walk(kinds, start(kinds, CASE, channel="ivr", language="en"), "", "1", "1", "x")
    text = state.to_json()
    assert SessionState.from_json(text) == state
    assert SessionState.from_json(text).to_json() == text
    assert json.loads(text)["answers"] == [["who", "me"], ["known", True]]  # true, not 1


def test_a_resumed_session_reasks_the_current_question(service: Script) -> None:
    state = walk(service, start(service, CASE, channel="ivr"), "1", "1", "x")
    saved = state.to_json()
    resumed = resume(service, SessionState.from_json(saved))
    assert (resumed.current, resumed.event, resumed.attempts) == ("trips", Event.RESUMED, 0)
    shown = prompt(service, resumed)
    assert not shown.reprompt
    assert (
        shown.text
        == prompt(service, walk(service, start(service, CASE, channel="ivr"), "1", "1")).text
    )


def test_a_resumed_session_continues_as_the_original_would(service: Script) -> None:
    rest = ("1", "2", "1", "2", "1")
    state = walk(service, start(service, CASE), "1", "1")
    straight = walk(service, state, *rest)
    resumed = walk(service, resume(service, SessionState.from_json(state.to_json())), *rest)
    assert resumed.answers == straight.answers
    assert results(service, resumed) == results(service, straight)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"format": 2}',
        '{"format": 1, "script": "x"}',
        "not json",
    ],
)
def test_an_unreadable_state_is_a_session_error(text: str) -> None:
    with pytest.raises(SessionError, match="not a saved survey session"):
        SessionState.from_json(text)


def test_a_state_with_a_bad_value_or_extra_field_is_refused(kinds: Script) -> None:
    data = json.loads(start(kinds, CASE).to_json())
    for key, value in [("answers", [["who", 1.5]]), ("channel", "fax"), ("colour", 1)]:
        broken = copy.deepcopy(data)
        broken[key] = value
        with pytest.raises(SessionError):
            SessionState.from_json(json.dumps(broken))


def test_a_state_of_another_script_or_version_is_refused(kinds: Script, service: Script) -> None:
    state = start(kinds, CASE)
    with pytest.raises(SessionError, match="started with all-kinds 2, not service-callback"):
        answer(service, state, "1")
    newer = dataclasses.replace(kinds, version="3")
    with pytest.raises(SessionError, match="not all-kinds 3"):
        resume(newer, state)


# --- observe: what an automated dialer fills -----------------------------------------------


def test_observe_fills_the_dialer_questions_and_stops_for_the_tester(hotline: Script) -> None:
    state = start(hotline, Context(unit="余杭区市场监管局"))
    state = observe(
        hotline, state, {"answered": True, "answer_seconds": 12, "answered_by": "person"}
    )
    assert state.current == "on_the_spot"
    assert state.answer_map() == {"answered": True, "answer_seconds": 12, "answered_by": "person"}


def test_observe_stops_where_observations_run_out(hotline: Script) -> None:
    state = observe(hotline, start(hotline, Context()), {"answered": True})
    assert state.current == "answer_seconds"


def test_observe_leaves_an_impossible_value_to_a_person(hotline: Script) -> None:
    state = observe(hotline, start(hotline, Context()), {"answered": True, "answer_seconds": 900})
    assert (state.current, state.error) == ("answer_seconds", InputError.OUT_OF_RANGE)


def test_observe_refuses_unknown_observations(hotline: Script) -> None:
    with pytest.raises(ValueError, match="unknown observations"):
        observe(hotline, start(hotline, Context()), {"ringing": True})
    with pytest.raises(ValueError, match="'fax' is not an answer"):
        observe(hotline, start(hotline, Context()), {"answered": True, "answer_seconds": 3,
                                                      "answered_by": "fax"})  # fmt: skip


# --- full walks of the built-in scripts ----------------------------------------------------


def test_service_callback_satisfied_applicant(service: Script) -> None:
    state = start(service, CASE)
    seen = []
    for typed in ["1", "1", "0", "2", "2", "1", "1"]:
        seen.append(state.current)
        state = answer(service, state, typed)
    assert seen == ["identity", "case", "trips", "satisfaction", "has_suggestion", "policy",
                    "recontact"]  # fmt: skip
    assert (state.status, state.current) == (Status.COMPLETE, "closing")
    outcome = results(service, state)
    assert (outcome.realised, outcome.satisfied) == (True, True)
    assert outcome.answers == {
        "identity": "applicant",
        "case": True,
        "trips": 0,
        "satisfaction": "satisfied",
        "has_suggestion": False,
        "policy": True,
        "recontact": True,
    }
    assert outcome.corrections == () and outcome.problems == ()
    assert prompt(service, state).text.startswith("本次回访到此结束")


def test_service_callback_dissatisfied_with_reasons_and_suggestion(service: Script) -> None:
    state = walk(service, start(service, CASE), "2", "1", "3", "4", "4", "态度差，不解释", "1",
                 "希望一次告知所需材料", "2", "2")  # fmt: skip
    outcome = results(service, state)
    assert outcome.complete
    assert (outcome.realised, outcome.satisfied) == (False, False)
    assert outcome.answers["reason"] == "attitude"
    assert outcome.problems == (
        Problem("attitude", "reason_detail", "态度差，不解释"),
        Problem("suggestion", "suggestion", "希望一次告知所需材料"),
    )


def test_service_callback_basically_satisfied_counts_as_satisfied(service: Script) -> None:
    state = walk(service, start(service, CASE), "1", "1", "1", "3", "2", "1", "1")
    assert results(service, state).satisfied is True
    assert "reason" not in state.answer_map()


def test_service_callback_wrong_person_gives_a_number_and_ends_politely(service: Script) -> None:
    state = walk(service, start(service, CASE), "3")
    assert state.current == "new_phone"
    assert prompt(service, state).text == "请问您方便告诉我们张三的联系电话吗？"
    state = answer(service, state, "13957104321")
    assert (state.status, state.current) == (Status.SCREENED_OUT, "bye_wrong_person")
    outcome = results(service, state)
    assert outcome.screened_out and not outcome.complete and not outcome.partial
    assert outcome.corrections == (
        Correction(CorrectionKind.CONTACT, "identity", "knows_applicant"),
        Correction(CorrectionKind.PHONE, "new_phone", "+8613957104321"),
    )
    assert (outcome.realised, outcome.satisfied) == (None, None)
    assert to_turn(prompt(service, state)).hangup


def test_service_callback_wrong_number_ends_at_once(service: Script) -> None:
    state = answer(service, start(service, CASE), "4")
    assert (state.status, state.current) == (Status.SCREENED_OUT, "bye_wrong_person")
    assert results(service, state).corrections == (
        Correction(CorrectionKind.WRONG_NUMBER, "identity", "wrong_number"),
    )


def test_service_callback_refused_number_is_skipped(service: Script) -> None:
    state = walk(service, start(service, CASE, channel="ivr"), "3", "", "")
    assert (state.status, state.current) == (Status.SCREENED_OUT, "bye_wrong_person")
    assert "new_phone" not in state.answer_map()


def test_service_callback_unknown_case_ends_with_a_correction(service: Script) -> None:
    state = walk(service, start(service, CASE), "1", "2")
    assert (state.status, state.current) == (Status.SCREENED_OUT, "bye_case")
    assert results(service, state).corrections == (Correction(CorrectionKind.CASE, "case", False),)


def test_service_callback_in_english_by_ivr(service: Script) -> None:
    state = start(service, CASE, channel="ivr", language="en")
    texts = []
    for typed in ["2", "1", "1", "5", "2", "", "2", "2", "1"]:
        texts.append(prompt(service, state).text)
        state = answer(service, state, typed)
    assert texts[2].startswith("How many times did you have to go")
    assert texts[4].startswith("What is the main reason?")
    assert texts[5].startswith("Could you tell us what went wrong?")
    outcome = results(service, state)
    assert outcome.complete and outcome.satisfied is False and outcome.realised is True
    assert outcome.answers["reason_detail"] is None  # nothing said: optional
    assert prompt(service, state).text.startswith("That is all.")


def test_hotline_check_person_answers_on_the_spot(hotline: Script) -> None:
    state = walk(hotline, start(hotline, Context(unit="某局")), "1", "15", "1", "1", "答复清楚")
    outcome = results(hotline, state)
    assert outcome.complete
    assert outcome.rates == {"connected": True, "real_time": True}
    assert outcome.answers["notes"] == "答复清楚"


def test_hotline_check_unanswered_call_is_not_connected(hotline: Script) -> None:
    state = walk(hotline, start(hotline, Context()), "2", "")
    assert results(hotline, state).rates == {"connected": False, "real_time": None}


def test_if_skipped_waits_for_the_session_to_complete(hotline: Script) -> None:
    state = answer(hotline, start(hotline, Context()), "2")  # not answered; notes still to come
    assert state.current == "notes"
    assert results(hotline, state).rates["connected"] is None


def test_hotline_check_machine_is_not_connected(hotline: Script) -> None:
    state = observe(hotline, start(hotline, Context()),
                    {"answered": True, "answer_seconds": 3, "answered_by": "machine"})  # fmt: skip
    assert state.current == "notes"
    outcome = results(hotline, answer(hotline, state, ""))
    assert outcome.rates == {"connected": False, "real_time": None}


def test_hotline_check_not_answered_on_the_spot(hotline: Script) -> None:
    state = walk(hotline, start(hotline, Context()), "1", "40", "1", "2", "让我打另一个电话")
    assert results(hotline, state).rates == {"connected": True, "real_time": False}


# --- properties ----------------------------------------------------------------------------

_INPUTS = st.one_of(
    st.sampled_from(["", "0", "1", "2", "3", "4", "5", "9", "#", "12", "13812345678", "是"]),
    st.text(max_size=12),
)


@pytest.mark.parametrize("name", ["service-callback", "hotline-check"])
@settings(max_examples=150, deadline=None)
@given(inputs=st.lists(_INPUTS, max_size=40), channel=st.sampled_from(["agent", "ivr"]))
def test_any_input_is_taken_and_a_saved_state_continues_the_same(
    name: str, inputs: list[str], channel: str
) -> None:
    script = load_script(BUILTIN_SCRIPT_DIR / f"{name}.toml")
    state = start(script, CASE, channel=channel)
    for typed in inputs:
        before = state
        state = answer(script, state, typed)  # never raises
        restored = SessionState.from_json(before.to_json())
        assert restored == before
        assert answer(script, restored, typed) == state
        prompt(script, state)
    outcome = results(script, state)
    assert outcome.status is state.status and finished(state) == (state.status is not Status.ACTIVE)
    if outcome.complete:  # an interview is never a screen-out, whatever path led to the end
        assert not {c.kind for c in outcome.corrections} & SCREEN_OUTS


@pytest.mark.parametrize("name", ["service-callback", "hotline-check"])
def test_every_session_finishes_within_a_bounded_number_of_inputs(name: str) -> None:
    script = load_script(BUILTIN_SCRIPT_DIR / f"{name}.toml")
    bound = sum(q.retries + 1 for q in script.questions)
    for typed in ["", "x", "1", "2"]:
        state = start(script, CASE, channel="ivr")
        for _ in range(bound):
            if finished(state):
                break
            state = answer(script, state, typed)
        assert finished(state), typed


# --- the documentation ---------------------------------------------------------------------


def test_the_example_in_the_docs_is_a_valid_script(tmp_path: Path) -> None:
    docs = (Path(__file__).parent.parent / "docs" / "survey_scripts.md").read_text("utf-8")
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "quick-check.toml"
    path.write_text(example, encoding="utf-8")
    script = load_script(path)
    state = walk(script, start(script, CASE), "1", "3", "2", "太慢")
    outcome = results(script, state)
    assert (outcome.status, outcome.realised, outcome.satisfied) == (Status.COMPLETE, False, False)
    assert outcome.problems == (Problem("dissatisfaction", "why", "太慢"),)
