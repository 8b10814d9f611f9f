"""Load a survey script from TOML or YAML and validate every part of it.

A script is data, so a mistake in it is a user's mistake: the loader reports every problem it
finds at once, each naming the file, the question and the field, before any call is made with
it. Each question is read in ``callback.survey_questions``; the checks on what a script says
(its question graph, condition values, placeholders, audio names) live in
``callback.survey_checks``.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from callback.survey_checks import (
    graph_problems,
    no_placeholders,
    placeholder_problem,
    value_problem,
)
from callback.survey_format import (
    _AUDIO,
    _ID,
    _LANGUAGE,
    _NAME,
    END,
    Condition,
    Fallback,
    Frame,
    Kind,
    Question,
    Rate,
    Script,
    ScriptError,
    Text,
)
from callback.survey_questions import parse_question


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


def parse_script(data: Any, source: str = "<script>", base_dir: str | None = None) -> Script:
    """Validate already-parsed data (a mapping as TOML or YAML gives it) into a Script."""
    p = ScriptParser(source)
    script = p.script(data, base_dir)
    if p.errors or script is None:
        raise ScriptError(source, p.errors or [f"{source}: not a survey script"])
    return script


class ScriptParser:
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
                problem = (check or placeholder_problem)(text)
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
        title = self.text("", data, "title", required=True, check=no_placeholders)
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
            question = parse_question(self, table, qid, defaults, order, parsed)
            if question is not None:
                parsed.append(question)
        if len(parsed) != len(raw):
            return None
        for where, message in graph_problems(parsed, self.languages):
            self.error(where, message)
        return parsed

    def target(
        self, where: str, table: Mapping[str, Any], key: str, order: Mapping[str, int]
    ) -> str | None:
        value = self.string(where, table, key)
        if value is not None and value != END and value not in order:
            self.error(where, f'field {self.name(key)}: no question {value!r} (nor "end")')
            return None
        return value

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
            problem = value_problem(target, value)
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


def _join(base_dir: str | None, audio_dir: str | None) -> str | None:
    if base_dir is None:
        return audio_dir
    return str(Path(base_dir) / audio_dir) if audio_dir else base_dir
