"""Load a survey script from TOML or YAML and validate every part of it.

A script is data, so a mistake in it is a user's mistake: the loader reports every problem it
finds at once, each naming the file, the question and the field, before any call is made with
it.
"""

from __future__ import annotations

import enum
import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from callback.survey_format import (
    _AUDIO,
    _ID,
    _KEYS,
    _LANGUAGE,
    _NAME,
    END,
    PLACEHOLDERS,
    Condition,
    CorrectionKind,
    Fallback,
    Frame,
    Kind,
    Observation,
    Option,
    ProblemRule,
    Question,
    Rate,
    Script,
    ScriptError,
    Text,
    Value,
    same_value,
)


def load_script(path: str | Path) -> Script:
    """Read and validate a ``.toml``, ``.yaml`` or ``.yml`` script; raise ScriptError if bad."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(source, [f"{source}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ScriptError(source, [f"{source}: not UTF-8 text"]) from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScriptError(source, [f"{source}: not valid TOML: {exc}"]) from None
    elif suffix in (".yaml", ".yml"):
        data = _load_yaml(text, source)
    else:
        raise ScriptError(source, [f"{source}: a script is a .toml, .yaml or .yml file"])
    return parse_script(data, source=source, base_dir=str(path.parent))


def _load_yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ScriptError(source, [f"{source}: YAML scripts need PyYAML installed"]) from None

    class Loader(yaml.SafeLoader):
        """YAML 1.2 booleans: a yes/no question's ``yes:`` key must stay the string "yes"."""

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader: builds no Python objects
    except yaml.YAMLError as exc:
        raise ScriptError(source, [f"{source}: not valid YAML: {exc}"]) from None


_SCRIPT_FIELDS = {
    "name", "version", "title", "frame", "languages", "retries", "on_fail", "timeout", "retry",
    "goodbye", "audio_dir", "rates", "questions",
}  # fmt: skip
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


def parse_script(data: Any, source: str = "<script>", base_dir: str | None = None) -> Script:
    """Validate already-parsed data (a mapping as TOML or YAML gives it) into a Script."""
    p = _Parser(source)
    script = p.script(data, base_dir)
    if p.errors or script is None:
        raise ScriptError(source, p.errors or [f"{source}: not a survey script"])
    return script


class _Parser:
    """Collects every error instead of stopping at the first: a plugin author fixes all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.languages: tuple[str, ...] = ("zh",)
        self.at = ""  # the option (or yes/no table) being read, for field names

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{self.source}: {where}{message}")

    def name(self, key: str) -> str:
        """A field's name in messages: inside an option, ``'options[2].label'``."""
        return repr(self.at + key)

    # -- scalars and texts ---------------------------------------------------------------

    def fields(
        self, where: str, table: Mapping[str, Any], allowed: Iterable[str], what: str
    ) -> None:
        for key in table:
            if key not in allowed:
                self.error(where, f"field {self.name(key)}: unknown field of {what}")

    def string(
        self, where: str, table: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(where, f"field {self.name(key)}: must be a non-empty string, not {value!r}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(where, f"field {self.name(key)}: {value!r} does not match {pattern.pattern}")
            return None
        return value

    def integer(
        self, where: str, table: Mapping[str, Any], key: str, low: int, high: int
    ) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(where, f"field {self.name(key)}: must be a whole number, not {value!r}")
            return None
        if not low <= value <= high:
            self.error(where, f"field {self.name(key)}: must be from {low} to {high}, not {value}")
            return None
        return value

    def boolean(self, where: str, table: Mapping[str, Any], key: str) -> bool | None:
        value = table.get(key)
        if value is not None and not isinstance(value, bool):
            self.error(where, f"field {self.name(key)}: must be true or false, not {value!r}")
            return None
        return value

    def choice(
        self, where: str, table: Mapping[str, Any], key: str, enum_type: type[enum.StrEnum]
    ) -> Any:
        value = table.get(key)
        if value is None:
            return None
        try:
            return enum_type(value)
        except ValueError:
            known = ", ".join(repr(m.value) for m in enum_type)
            self.error(where, f"field {self.name(key)}: {value!r} is not one of {known}")
            return None

    def text(
        self,
        where: str,
        table: Mapping[str, Any],
        key: str,
        required: bool = False,
        complete: bool = True,
        check: Callable[[str], str | None] | None = None,
    ) -> Text | None:
        """A string (the first language) or a table keyed by language."""
        value = table.get(key)
        if value is None:
            if required:
                self.error(where, f"field {self.name(key)}: required")
            return None
        raw = {self.languages[0]: value} if isinstance(value, str) else value
        if not isinstance(raw, Mapping) or not raw:
            self.error(where, f"field {self.name(key)}: must be a string or a table of languages")
            return None
        ok = True
        for language, text in raw.items():
            if language not in self.languages:
                self.error(
                    where, f"field {self.name(key)}: language {language!r} is not in languages"
                )
                ok = False
            elif not isinstance(text, str) or not text.strip():
                self.error(
                    where, f"field {self.name(key)}: {language} text must be a non-empty string"
                )
                ok = False
            else:
                problem = (check or _placeholder_problem)(text)
                if problem:
                    self.error(where, f"field {self.name(key)}: {language} text {problem}")
                    ok = False
        missing = [lang for lang in self.languages if lang not in raw]
        if complete and missing:
            self.error(where, f"field {self.name(key)}: no text in {', '.join(missing)}")
            ok = False
        if not ok:
            return None
        return Text(tuple((lang, raw[lang]) for lang in self.languages if lang in raw))

    # -- the script ----------------------------------------------------------------------

    def script(self, data: Any, base_dir: str | None) -> Script | None:
        if not isinstance(data, Mapping):
            self.error("", "a script must be a table of fields")
            return None
        self.fields("", data, _SCRIPT_FIELDS, "a script")
        languages = data.get("languages", ["zh"])
        if (
            not isinstance(languages, list)
            or not languages
            or not all(isinstance(x, str) and _LANGUAGE.fullmatch(x) for x in languages)
            or len(set(languages)) != len(languages)
        ):
            self.error(
                "",
                f"field 'languages': must list language codes once each, like "
                f'["zh", "en"], not {languages!r}',
            )
        else:
            self.languages = tuple(languages)
        name = self.string("", data, "name", _NAME)
        version = self.string("", data, "version")
        frame = self.choice("", data, "frame", Frame)
        for key in ("name", "version", "frame"):
            if key not in data:
                self.error("", f"field {self.name(key)}: required")
        title = self.text("", data, "title", required=True, check=_no_placeholders)
        defaults = {
            "retries": self.integer("", data, "retries", 0, 9),
            "on_fail": self.choice("", data, "on_fail", Fallback),
            "timeout": self.integer("", data, "timeout", 1, 60),
        }
        retry = self.text("", data, "retry")
        goodbye = self.text("", data, "goodbye")
        audio_dir = self.string("", data, "audio_dir", _AUDIO)
        raw_questions = data.get("questions")
        if not isinstance(raw_questions, list) or not raw_questions:
            self.error("", "field 'questions': a script needs at least one question")
            return None
        questions = self.questions(raw_questions, defaults)
        if questions is None:
            return None
        rates = self.rates(data.get("rates", {}), questions)
        if self.errors or name is None or version is None or frame is None or title is None:
            return None
        return Script(
            name=name,
            version=version,
            title=title,
            frame=frame,
            languages=self.languages,
            questions=tuple(questions),
            rates=rates,
            retry=retry,
            goodbye=goodbye,
            source=self.source,
            audio_dir=_join(base_dir, audio_dir),
        )

    def questions(self, raw: list[Any], defaults: Mapping[str, Any]) -> list[Question] | None:
        ids: list[str | None] = []
        for n, table in enumerate(raw, 1):
            qid = table.get("id") if isinstance(table, Mapping) else None
            if not isinstance(qid, str) or not _ID.fullmatch(qid) or qid == END:
                self.error(
                    f"question #{n}: ",
                    f"field 'id': must be a name like \"trips\" "
                    f'(lower case, digits, _; not "end"), not {qid!r}',
                )
                qid = None
            elif qid in ids:
                self.error(f'question "{qid}": ', "field 'id': used twice")
            ids.append(qid)
        if any(qid is None for qid in ids) or len(set(ids)) != len(ids):
            return None
        order = {qid: i for i, qid in enumerate(ids) if qid is not None}
        parsed: list[Question] = []
        for table, qid in zip(raw, ids, strict=True):
            assert qid is not None
            question = self.question(table, qid, defaults, order, parsed)
            if question is not None:
                parsed.append(question)
        if len(parsed) != len(raw):
            return None
        self.graph(parsed)
        return parsed

    def question(
        self,
        table: Mapping[str, Any],
        qid: str,
        defaults: Mapping[str, Any],
        order: Mapping[str, int],
        earlier: list[Question],
    ) -> Question | None:
        where = f'question "{qid}": '
        errors_before = len(self.errors)
        kind = self.choice(where, table, "kind", Kind)
        if kind is None:
            if "kind" not in table:
                self.error(where, "field 'kind': required")
            return None
        self.fields(where, table, _COMMON_FIELDS | _KIND_FIELDS[kind], f"a {kind} question")
        agent = self.text(where, table, "agent", required=True)
        ivr = self.text(where, table, "ivr")
        audio = self.text(where, table, "audio", complete=False, check=_audio_problem)
        note = self.text(where, table, "note")
        retry = self.text(where, table, "retry")
        target = self.target(where, table, "next", order)
        when = self.conditions(where, table.get("when"), "when", earlier)
        retries = self.integer(where, table, "retries", 0, 9)
        on_fail = self.choice(where, table, "on_fail", Fallback)
        timeout = self.integer(where, table, "timeout", 1, 60)
        observe = self.choice(where, table, "observe", Observation)
        if observe is not None and _OBSERVED_KIND[observe] != kind:
            self.error(
                where,
                f"field 'observe': {observe} needs a {_OBSERVED_KIND[observe]} "
                f"question, not {kind}",
            )
        if observe is not None and any(q.observe == observe for q in earlier):
            self.error(where, f"field 'observe': {observe} is observed by an earlier question")
        extra: dict[str, Any] = {}
        if kind is Kind.CHOICE:
            extra["options"] = self.options(where, table.get("options"), order)
            if observe is Observation.ANSWERED_BY and extra["options"]:
                values = {o.value for o in extra["options"]}
                if not {"person", "machine"} <= values:
                    self.error(
                        where,
                        "field 'observe': answered_by needs options with the "
                        'values "person" and "machine"',
                    )
        elif kind is Kind.YESNO:
            extra["options"] = (
                self.yes_no(where, table, "yes", "1", True, _YES, order),
                self.yes_no(where, table, "no", "2", False, _NO, order),
            )
        elif kind is Kind.RATING:
            low = self.integer(where, table, "min", 0, 9)
            high = self.integer(where, table, "max", 0, 9)
            low, high = 1 if low is None else low, 5 if high is None else high
            if low >= high:
                self.error(where, f"field 'max': must be more than min ({low}), not {high}")
            keys = [str(n) for n in range(low, high + 1)]
            labels = [Text(tuple((lang, k) for lang in self.languages)) for k in keys]
            options = tuple(Option(k, int(k), t) for k, t in zip(keys, labels, strict=True))
            extra.update(min=low, max=high, options=options)
        elif kind is Kind.NUMBER:
            extra.update(self.number(where, table))
        elif kind is Kind.TEXT:
            extra["speech"] = bool(self.boolean(where, table, "speech"))
            extra["optional"] = bool(self.boolean(where, table, "optional"))
            extra["problem"] = self.problem(where, table.get("problem"), earlier)
        if kind is Kind.PHONE:
            extra["digits"] = 12  # a landline with its area code: 0571 8765 4321
        if kind in (Kind.TEXT, Kind.PHONE):
            extra["correction"] = self.correction(where, table, "correction", kind)
        if len(self.errors) > errors_before or agent is None:
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

    def target(
        self, where: str, table: Mapping[str, Any], key: str, order: Mapping[str, int]
    ) -> str | None:
        value = self.string(where, table, key)
        if value is not None and value != END and value not in order:
            self.error(where, f'field {self.name(key)}: no question {value!r} (nor "end")')
            return None
        return value

    def options(self, where: str, raw: Any, order: Mapping[str, int]) -> tuple[Option, ...]:
        if not isinstance(raw, list) or len(raw) < 2:
            self.error(where, "field 'options': a choice needs a list of at least two options")
            return ()
        options: list[Option] = []
        keys: set[str] = set()
        values: list[Value] = []
        for n, table in enumerate(raw, 1):
            at = f"options[{n}]"
            if not isinstance(table, Mapping):
                self.error(where, f"field {at!r}: must be a table with key, value and label")
                continue
            self.at = f"{at}."
            self.fields(
                where, table, {"key", "value", "label", "next", "correction", "refusal"}, at
            )
            key, value = table.get("key"), table.get("value")
            if not isinstance(key, str) or len(key) != 1 or key not in _KEYS:
                self.error(
                    where,
                    f'field \'{at}.key\': must be one keypad digit "0" to "9" '
                    f"(a string), not {key!r}",
                )
                key = None
            elif key in keys:
                self.error(where, f'option key "{key}" used twice')
            if not isinstance(value, str | int) or isinstance(value, str) and not value:
                self.error(
                    where, f"field '{at}.value': must be a string, number or boolean, not {value!r}"
                )
                value = None
            elif any(same_value(value, v) for v in values):
                self.error(where, f"option value {value!r} used twice")
            label = self.text(where, table, "label", required=True)
            target = self.target(where, table, "next", order)
            correction = self.correction(where, table, "correction", Kind.CHOICE)
            refusal = bool(self.boolean(where, table, "refusal"))
            self.at = ""
            if key is not None and value is not None and label is not None:
                keys.add(key)
                values.append(value)
                options.append(Option(key, value, label, target, correction, refusal))
        return tuple(options) if len(options) == len(raw) else ()

    def yes_no(
        self,
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
            self.error(
                where, f"field {name!r}: must be a table of label, next, correction and refusal"
            )
            return Option(key, value, label)
        self.at = f"{name}."
        self.fields(where, sub, {"label", "next", "correction", "refusal"}, name)
        own = self.text(where, sub, "label")
        target = self.target(where, sub, "next", order)
        correction = self.correction(where, sub, "correction", Kind.CHOICE)
        refusal = bool(self.boolean(where, sub, "refusal"))
        self.at = ""
        if own is None:
            label = Text(tuple((lang, label.get(lang)) for lang in self.languages))
        return Option(key, value, own or label, target, correction, refusal)

    def number(self, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
        low = self.integer(where, table, "min", 0, 10**15)
        high = self.integer(where, table, "max", 0, 10**15)
        digits = self.integer(where, table, "digits", 1, 15)
        if low is not None and high is not None and low > high:
            self.error(where, f"field 'max': must not be less than min ({low}), not {high}")
        if digits is None:
            digits = len(str(high)) if high is not None else 6
        elif high is not None and len(str(high)) > digits:
            self.error(where, f"field 'digits': {digits} digits cannot reach max ({high})")
        return {"min": low, "max": high, "digits": digits}

    def correction(
        self, where: str, table: Mapping[str, Any], key: str, kind: Kind
    ) -> CorrectionKind | None:
        correction: CorrectionKind | None = self.choice(where, table, key, CorrectionKind)
        if correction is None:
            return None
        phone = correction is CorrectionKind.PHONE
        if phone != (kind is Kind.PHONE):
            need = "a phone question" if phone else "an option or a text question"
            self.error(
                where, f"field {self.name(key)}: a {correction} correction belongs on {need}"
            )
            return None
        return correction

    def problem(self, where: str, raw: Any, earlier: list[Question]) -> ProblemRule | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = {"category": raw}
        if not isinstance(raw, Mapping):
            self.error(where, "field 'problem': must be a category or a table")
            return None
        self.fields(where, raw, {"category", "category_from"}, "problem")
        category = self.string(where, raw, "category", _ID)
        if category is None:
            self.error(where, "field 'problem.category': required (e.g. \"suggestion\")")
            return None
        source = raw.get("category_from")
        if source is not None:
            found = next((q for q in earlier if q.id == source), None)
            if found is None or found.kind is not Kind.CHOICE:
                self.error(
                    where,
                    f"field 'problem.category_from': {source!r} is not an earlier choice question",
                )
                return None
        return ProblemRule(category, source)

    def conditions(
        self, where: str, raw: Any, key: str, earlier: Sequence[Question]
    ) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        tables = raw if isinstance(raw, list) else [raw]
        found = [self.condition(where, t, key, earlier) for t in tables]
        return tuple(c for c in found if c is not None)

    def condition(
        self,
        where: str,
        raw: Any,
        key: str,
        earlier: Sequence[Question],
        extra: frozenset[str] = frozenset(),
    ) -> Condition | None:
        if not isinstance(raw, Mapping):
            self.error(
                where,
                f"field {self.name(key)}: must be a table such as "
                '{ question = "trips", values = [0, 1] }',
            )
            return None
        self.fields(where, raw, {"question", "values", "not_values"} | extra, key)
        qid = raw.get("question")
        target = next((q for q in earlier if q.id == qid), None)
        if target is None:
            self.error(where, f"field '{key}.question': {qid!r} is not an earlier question")
            return None
        if target.kind is Kind.SAY:
            self.error(where, f"field '{key}.question': {qid!r} is a say question, no answer")
            return None
        if ("values" in raw) == ("not_values" in raw):
            self.error(where, f"field {self.name(key)}: give exactly one of values and not_values")
            return None
        negate = "not_values" in raw
        field_name = f"{key}.{'not_values' if negate else 'values'}"
        values = raw["not_values" if negate else "values"]
        if not isinstance(values, list) or not values:
            self.error(where, f"field '{field_name}': must be a non-empty list")
            return None
        ok = True
        for value in values:
            problem = _value_problem(target, value)
            if problem:
                self.error(where, f"field '{field_name}': {value!r} {problem}")
                ok = False
        return Condition(target.id, tuple(values), negate) if ok else None

    def rates(self, raw: Any, questions: Sequence[Question]) -> tuple[Rate, ...]:
        if not isinstance(raw, Mapping):
            self.error("", "field 'rates': must be a table of name = { question, values }")
            return ()
        rates: list[Rate] = []
        for name, table in raw.items():
            key = f"rates.{name}"
            if not _ID.fullmatch(name):
                self.error("", f'field {self.name(key)}: a rate is named like "realised"')
                continue
            condition = self.condition("", table, key, questions, frozenset({"if_skipped"}))
            if condition is not None:
                if_skipped = self.boolean("", table, "if_skipped")
                rates.append(Rate(name, condition, if_skipped))
        return tuple(rates)

    def graph(self, questions: Sequence[Question]) -> None:
        """Every question reachable, and no way round in a circle."""
        script = Script("x", "0", Text.of(zh="x"), Frame.CASES, self.languages, tuple(questions))
        edges = {q.id: _successors(script, q) for q in questions}
        reached: set[str] = set()
        stack = [questions[0].id]
        while stack:
            qid = stack.pop()
            if qid != END and qid not in reached:
                reached.add(qid)
                stack.extend(edges[qid])
        for q in questions:
            if q.id not in reached:
                self.error(f'question "{q.id}": ', "never asked: no question leads to it")
        cycle = _find_cycle(edges, questions[0].id)
        if cycle:
            self.error(
                f'question "{cycle[-2]}": ', f"field 'next': makes a loop: {' → '.join(cycle)}"
            )


def _successors(script: Script, q: Question) -> list[str]:
    targets = [o.next for o in q.options if o.next is not None]
    # The question's own next is a way on unless every option jumps elsewhere and nothing else
    # (a false ``when``, a fallback that goes on) can fall through to it.
    if q.when or not q.options or len(targets) < len(q.options) or q.on_fail is not Fallback.END:
        targets.append(script.default_next(q))
    return list(dict.fromkeys(targets))


def _find_cycle(edges: Mapping[str, list[str]], start: str) -> list[str] | None:
    """Return a path that comes back to where it began, or None (iterative depth-first)."""
    state: dict[str, int] = {}
    path: list[str] = []
    stack: list[tuple[str, Iterable[str]]] = [(start, iter(edges[start]))]
    state[start], path = 1, [start]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child == END:
                continue
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(edges[child])))
                break
        else:
            state[node] = 2
            path.pop()
            stack.pop()
    return None


def _value_problem(question: Question, value: Any) -> str | None:
    """Why ``value`` can never be an answer to ``question``, or None if it can."""
    if question.options:
        if any(same_value(value, o.value) for o in question.options):
            return None
        known = ", ".join(repr(o.value) for o in question.options)
        return f"is not a value of question {question.id!r} ({known})"
    if question.kind is Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int):
            return "is not a whole number"
        if question.min is not None and value < question.min:
            return f"is below the question's min ({question.min})"
        if question.max is not None and value > question.max:
            return f"is above the question's max ({question.max})"
        return None
    return None if isinstance(value, str) else "is not text"


_FORMATTER = string.Formatter()


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text``; raise ValueError if it is not a valid template."""
    names = []
    for _, name, spec, conversion in _FORMATTER.parse(text):
        if name is None:
            continue
        if spec or conversion or not name:
            raise ValueError(f"placeholder {{{name}}} must be a bare name")
        names.append(name)
    return names


def _placeholder_problem(text: str) -> str | None:
    try:
        names = placeholders(text)
    except ValueError as exc:
        message = str(exc)
        if "placeholder" not in message:
            message = "has an unmatched { or } (write {{ or }} for a literal brace)"
        return message if message.startswith("has") else f"has a {message}"
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        known = ", ".join(f"{{{n}}}" for n in sorted(PLACEHOLDERS))
        return f"has an unknown placeholder {{{unknown[0]}}} (known: {known})"
    return None


def _no_placeholders(text: str) -> str | None:
    return "must not have placeholders" if "{" in text or "}" in text else None


def _audio_problem(name: str) -> str | None:
    if not _AUDIO.fullmatch(name) or ".." in name.split("/"):
        return "must be a file name relative to the script's audio folder"
    return None


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _join(base_dir: str | None, audio_dir: str | None) -> str | None:
    if base_dir is None:
        return audio_dir
    return str(Path(base_dir) / audio_dir) if audio_dir else base_dir
