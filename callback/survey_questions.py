"""Parse one question of a survey script: its kind's fields, options, correction and problem.

Each function takes the loader's ``ScriptParser`` (``callback.survey_loader``), which reads single
fields and collects every error; a question with any error is left out rather than raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from callback.survey_checks import audio_problem
from callback.survey_format import (
    _ID,
    _KEYS,
    CorrectionKind,
    Fallback,
    Kind,
    Observation,
    Option,
    ProblemRule,
    Question,
    Text,
    Value,
    same_value,
)

if TYPE_CHECKING:
    # Only for annotations: the loader imports this module to parse each question.
    from callback.survey_loader import ScriptParser

_COMMON_FIELDS = {
    "id", "kind", "agent", "ivr", "audio", "note", "retry", "when", "next", "retries", "on_fail",
    "timeout",
}  # fmt: skip
_KIND_FIELDS: dict[Kind, set[str]] = {
    Kind.CHOICE: {"options", "observe"},
    Kind.YESNO: {"yes", "no", "observe"},
    Kind.NUMBER: {"min", "max", "digits", "observe"},
    Kind.RATING: {"min", "max"},
    Kind.TEXT: {"speech", "optional", "correction", "problem"},
    Kind.PHONE: {"correction"},
    Kind.SAY: set(),
}
_OBSERVED_KIND = {
    Observation.ANSWERED: Kind.YESNO,
    Observation.ANSWER_SECONDS: Kind.NUMBER,
    Observation.ANSWERED_BY: Kind.CHOICE,
}
_YES = Text.of(zh="是", en="Yes")
_NO = Text.of(zh="否", en="No")


def parse_question(
    p: ScriptParser,
    table: Mapping[str, Any],
    qid: str,
    defaults: Mapping[str, Any],
    order: Mapping[str, int],
    earlier: list[Question],
) -> Question | None:
    """Read question ``qid`` from ``table``, or return None after recording its errors in ``p``."""
    where = f'question "{qid}": '
    errors_before = len(p.errors)
    kind = p.choice(where, table, "kind", Kind)
    if kind is None:
        if "kind" not in table:
            p.error(where, "field 'kind': required")
        return None
    p.fields(where, table, _COMMON_FIELDS | _KIND_FIELDS[kind], f"a {kind} question")
    agent = p.text(where, table, "agent", required=True)
    ivr = p.text(where, table, "ivr")
    audio = p.text(where, table, "audio", complete=False, check=audio_problem)
    note = p.text(where, table, "note")
    retry = p.text(where, table, "retry")
    target = p.target(where, table, "next", order)
    when = p.conditions(where, table.get("when"), "when", earlier)
    retries = p.integer(where, table, "retries", 0, 9)
    on_fail = p.choice(where, table, "on_fail", Fallback)
    timeout = p.integer(where, table, "timeout", 1, 60)
    observe = p.choice(where, table, "observe", Observation)
    if observe is not None and _OBSERVED_KIND[observe] != kind:
        p.error(
            where,
            f"field 'observe': {observe} needs a {_OBSERVED_KIND[observe]} question, not {kind}",
        )
    if observe is not None and any(q.observe == observe for q in earlier):
        p.error(where, f"field 'observe': {observe} is observed by an earlier question")
    extra: dict[str, Any] = {}
    if kind is Kind.CHOICE:
        extra["options"] = _options(p, where, table.get("options"), order)
        if observe is Observation.ANSWERED_BY and extra["options"]:
            values = {o.value for o in extra["options"]}
            if not {"person", "machine"} <= values:
                p.error(
                    where,
                    "field 'observe': answered_by needs options with the "
                    'values "person" and "machine"',
                )
    elif kind is Kind.YESNO:
        extra["options"] = (
            _yes_no(p, where, table, "yes", "1", True, _YES, order),
            _yes_no(p, where, table, "no", "2", False, _NO, order),
        )
    elif kind is Kind.RATING:
        low = p.integer(where, table, "min", 0, 9)
        high = p.integer(where, table, "max", 0, 9)
        low, high = 1 if low is None else low, 5 if high is None else high
        if low >= high:
            p.error(where, f"field 'max': must be more than min ({low}), not {high}")
        keys = [str(n) for n in range(low, high + 1)]
        labels = [Text(tuple((lang, k) for lang in p.languages)) for k in keys]
        options = tuple(Option(k, int(k), t) for k, t in zip(keys, labels, strict=True))
        extra.update(min=low, max=high, options=options)
    elif kind is Kind.NUMBER:
        extra.update(_number(p, where, table))
    elif kind is Kind.TEXT:
        extra["speech"] = bool(p.boolean(where, table, "speech"))
        extra["optional"] = bool(p.boolean(where, table, "optional"))
        extra["problem"] = _problem(p, where, table.get("problem"), earlier)
    if kind is Kind.PHONE:
        extra["digits"] = 12  # a landline with its area code: 0571 8765 4321
    if kind in (Kind.TEXT, Kind.PHONE):
        extra["correction"] = _correction(p, where, table, "correction", kind)
    if len(p.errors) > errors_before or agent is None:
        return None
    if kind is Kind.CHOICE and not extra["options"]:
        return None
    return Question(
        id=qid,
        kind=kind,
        agent=agent,
        ivr=ivr,
        audio=audio,
        note=note,
        retry=retry,
        when=when,
        next=target,
        retries=_first(retries, defaults["retries"], 2),
        on_fail=_first(on_fail, defaults["on_fail"], Fallback.NO_ANSWER),
        timeout=_first(timeout, defaults["timeout"], 8),
        observe=observe,
        **extra,
    )


def _options(p: ScriptParser, where: str, raw: Any, order: Mapping[str, int]) -> tuple[Option, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        p.error(where, "field 'options': a choice needs a list of at least two options")
        return ()
    options: list[Option] = []
    keys: set[str] = set()
    values: list[Value] = []
    for n, table in enumerate(raw, 1):
        at = f"options[{n}]"
        if not isinstance(table, Mapping):
            p.error(where, f"field {at!r}: must be a table with key, value and label")
            continue
        p.at = f"{at}."
        p.fields(where, table, {"key", "value", "label", "next", "correction", "refusal"}, at)
        key, value = table.get("key"), table.get("value")
        if not isinstance(key, str) or len(key) != 1 or key not in _KEYS:
            p.error(
                where,
                f'field \'{at}.key\': must be one keypad digit "0" to "9" (a string), not {key!r}',
            )
            key = None
        elif key in keys:
            p.error(where, f'option key "{key}" used twice')
        if not isinstance(value, str | int) or isinstance(value, str) and not value:
            p.error(
                where, f"field '{at}.value': must be a string, number or boolean, not {value!r}"
            )
            value = None
        elif any(same_value(value, v) for v in values):
            p.error(where, f"option value {value!r} used twice")
        label = p.text(where, table, "label", required=True)
        target = p.target(where, table, "next", order)
        correction = _correction(p, where, table, "correction", Kind.CHOICE)
        refusal = bool(p.boolean(where, table, "refusal"))
        p.at = ""
        if key is not None and value is not None and label is not None:
            keys.add(key)
            values.append(value)
            options.append(Option(key, value, label, target, correction, refusal))
    return tuple(options) if len(options) == len(raw) else ()


def _yes_no(
    p: ScriptParser,
    where: str,
    table: Mapping[str, Any],
    name: str,
    key: str,
    value: bool,
    label: Text,
    order: Mapping[str, int],
) -> Option:
    sub = table.get(name, {})
    if not isinstance(sub, Mapping):
        p.error(where, f"field {name!r}: must be a table of label, next, correction and refusal")
        return Option(key, value, label)
    p.at = f"{name}."
    p.fields(where, sub, {"label", "next", "correction", "refusal"}, name)
    own = p.text(where, sub, "label")
    target = p.target(where, sub, "next", order)
    correction = _correction(p, where, sub, "correction", Kind.CHOICE)
    refusal = bool(p.boolean(where, sub, "refusal"))
    p.at = ""
    if own is None:
        label = Text(tuple((lang, label.get(lang)) for lang in p.languages))
    return Option(key, value, own or label, target, correction, refusal)


def _number(p: ScriptParser, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    low = p.integer(where, table, "min", 0, 10**15)
    high = p.integer(where, table, "max", 0, 10**15)
    digits = p.integer(where, table, "digits", 1, 15)
    if low is not None and high is not None and low > high:
        p.error(where, f"field 'max': must not be less than min ({low}), not {high}")
    if digits is None:
        digits = len(str(high)) if high is not None else 6
    elif high is not None and len(str(high)) > digits:
        p.error(where, f"field 'digits': {digits} digits cannot reach max ({high})")
    return {"min": low, "max": high, "digits": digits}


def _correction(
    p: ScriptParser, where: str, table: Mapping[str, Any], key: str, kind: Kind
) -> CorrectionKind | None:
    correction: CorrectionKind | None = p.choice(where, table, key, CorrectionKind)
    if correction is None:
        return None
    phone = correction is CorrectionKind.PHONE
    if phone != (kind is Kind.PHONE):
        need = "a phone question" if phone else "an option or a text question"
        p.error(where, f"field {p.name(key)}: a {correction} correction belongs on {need}")
        return None
    return correction


def _problem(p: ScriptParser, where: str, raw: Any, earlier: list[Question]) -> ProblemRule | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"category": raw}
    if not isinstance(raw, Mapping):
        p.error(where, "field 'problem': must be a category or a table")
        return None
    p.fields(where, raw, {"category", "category_from"}, "problem")
    category = p.string(where, raw, "category", _ID)
    if category is None:
        p.error(where, "field 'problem.category': required (e.g. \"suggestion\")")
        return None
    source = raw.get("category_from")
    if source is not None:
        found = next((q for q in earlier if q.id == source), None)
        if found is None or found.kind is not Kind.CHOICE:
            p.error(
                where,
                f"field 'problem.category_from': {source!r} is not an earlier choice question",
            )
            return None
    return ProblemRule(category, source)


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
