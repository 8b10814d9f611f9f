"""The survey-script format: the frozen dataclasses a script is made of.

``callback.survey_loader`` reads and validates the files; the engine (``callback.surveys``)
then trusts a ``Script`` completely.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeAlias

from callback.errors import CallbackError

#: The target that ends a survey, usable wherever a question id is.
END = "end"
#: What ``{...}`` in a text may name; anything else is an error when the script loads.
PLACEHOLDERS = frozenset({"item", "unit", "date", "applicant"})
#: Every answer is one of these (or None for "asked, no answer"); all survive JSON exactly.
Value: TypeAlias = str | int | bool

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_ID = re.compile(r"[a-z][a-z0-9_]*")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_KEYS = "0123456789"  # "*" and "#" stay free: "#" ends number input on every dialer
_AUDIO = re.compile(r"[\w][\w.\-/]*")
#: Answer types that hash as they compare, so that an option is found by its value in a dict.
_HASHED_VALUES = frozenset({str, int, bool})


class ScriptError(CallbackError):
    """A survey script is malformed; ``errors`` lists every problem, one line each."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.source = source
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


class Kind(enum.StrEnum):
    CHOICE = "choice"  # one of several options, each with a keypad key
    YESNO = "yesno"  # key 1 yes, key 2 no
    NUMBER = "number"  # a whole number, keyed and ended with "#"
    RATING = "rating"  # one key on a scale such as 1-5
    TEXT = "text"  # free text: the agent types it; IVR takes speech or skips the question
    PHONE = "phone"  # a telephone number, answered as E.164
    SAY = "say"  # nothing to answer: an introduction, or a goodbye that ends the call


class Fallback(enum.StrEnum):
    """What happens when the re-prompts of a question are used up."""

    SKIP = "skip"  # go on as if the question had not been asked
    END = "end"  # end the survey there (counted as ended, not complete)
    NO_ANSWER = "no-answer"  # record "asked, no answer" (None) and go on


class Frame(enum.StrEnum):
    CASES = "cases"
    HOTLINES = "hotlines"


class CorrectionKind(enum.StrEnum):
    """What an answer can tell us is wrong in the frame (信息更正)."""

    PHONE = "phone"  # a new number for the applicant; the value is E.164
    CONTACT = "contact"  # the person on this number is not the case's contact, but knows them
    WRONG_NUMBER = "wrong_number"  # nobody on this number knows the applicant or the case
    CASE = "case"  # the respondent does not recognise the case (item, unit or date)
    UNIT = "unit"  # the unit on file is wrong; the value is what the respondent said
    ITEM = "item"  # the item on file is wrong; the value is what the respondent said


class Observation(enum.StrEnum):
    """Facts an automated dialer knows from call events, without human judgement."""

    ANSWERED = "answered"  # the call was answered (yesno)
    ANSWER_SECONDS = "answer_seconds"  # seconds from the first ring to answer (number)
    ANSWERED_BY = "answered_by"  # "person" or "machine" (choice), from answering-machine detection


@dataclass(frozen=True)
class Text:
    """One text in each language of a script: ``Text.of(zh="是", en="Yes")``."""

    entries: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, **texts: str) -> Text:
        return cls(tuple(texts.items()))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(language for language, _ in self.entries)

    def lookup(self, language: str) -> str | None:
        """Return the text in ``language``, or None if it has none (audio may be partial)."""
        return self._by_language.get(language)

    @cached_property
    def _by_language(self) -> dict[str, str]:
        # Built once: ``dict(entries)`` on every lookup took 190 ns.
        return dict(self.entries)

    def get(self, language: str) -> str:
        """Return the text in ``language``, else in the script's first language."""
        found = self.lookup(language)
        return self.entries[0][1] if found is None else found


@dataclass(frozen=True)
class Option:
    """One answer of a choice (yes/no and rating are choices with options made for them)."""

    key: str  # the keypad digit, also what an agent's screen sends
    value: Value  # what is recorded and what conditions compare
    label: Text
    next: str | None = None  # where to go when chosen; None: the question's own next
    correction: CorrectionKind | None = None
    #: Choosing it means the respondent declines the interview (拒访): a session that ends
    #: after it is refused, not complete, whatever path it took to the end.
    refusal: bool = False


@dataclass(frozen=True)
class Condition:
    """True when ``question`` was answered with one of ``values`` (or none of them, if negated).

    A question without an answer (not reached, skipped, or no answer) satisfies no condition,
    negated or not: we never guess what someone would have said.
    """

    question: str
    values: tuple[Value, ...]
    negate: bool = False

    def holds(self, answers: Mapping[str, Value | None]) -> bool:
        answer = answers.get(self.question)
        if answer is None:
            return False
        if type(answer) in _HASHED_VALUES:
            found = (type(answer), answer) in self._hashed
        else:
            found = any(same_value(answer, v) for v in self.values)
        return found != self.negate

    @cached_property
    def _hashed(self) -> frozenset[tuple[type, Value]]:
        """The values by (type, value), as ``same_value`` compares them; built once, not scanned."""
        return frozenset((type(v), v) for v in self.values if type(v) in _HASHED_VALUES)


@dataclass(frozen=True)
class Rate:
    """A yes/no per interview that a rate counts, e.g. ``realised`` for 实现率."""

    name: str
    condition: Condition
    #: The flag when the session is complete and skip logic passed the question by; None
    #: (the default) keeps such sessions out of the rate's denominator.
    if_skipped: bool | None = None


@dataclass(frozen=True)
class ProblemRule:
    """A free-text answer that the unit must follow up (整改) under ``category``."""

    category: str
    #: An earlier choice question whose answer, when there is one, is the category instead.
    category_from: str | None = None


@dataclass(frozen=True)
class Question:
    """One step of a script. Fields that do not apply to ``kind`` keep their defaults."""

    id: str
    kind: Kind
    agent: Text  # what an agent reads aloud
    ivr: Text | None = None  # what an IVR says; None: the agent text plus a generated menu
    audio: Text | None = None  # recorded prompt per language (file names), possibly partial
    note: Text | None = None  # shown to the agent only, never read out
    retry: Text | None = None  # apology said before a re-prompt; None: the script's
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    digits: int = 1  # most keypad digits an IVR collects
    speech: bool = False  # text only: an IVR may capture speech
    optional: bool = False  # text only: an empty answer is accepted as "no answer"
    when: tuple[Condition, ...] = ()  # ask only if all hold; otherwise go to ``next``
    next: str | None = None  # None: the following question (or the end, for the last)
    retries: int = 2
    on_fail: Fallback = Fallback.NO_ANSWER
    timeout: int = 8
    correction: CorrectionKind | None = None  # any answer proposes this correction
    problem: ProblemRule | None = None
    observe: Observation | None = None

    def option(self, key: str) -> Option | None:
        return self._by_key.get(key)

    def chosen(self, value: object) -> Option | None:
        """The option whose value is ``value`` (an answer as recorded), if any."""
        if type(value) in _HASHED_VALUES:
            return self._by_value.get((type(value), value))
        return next((o for o in self.options if same_value(o.value, value)), None)

    # Both maps keep the first of options that share a key or value, as a scan would find it.
    # They are built once per question: scanning seven options took 0.6 µs an answer.

    @cached_property
    def _by_key(self) -> dict[str, Option]:
        by_key: dict[str, Option] = {}
        for o in self.options:
            by_key.setdefault(o.key, o)
        return by_key

    @cached_property
    def _by_value(self) -> dict[tuple[type, object], Option]:
        """Options by (type, value): ``same_value`` keeps ``True`` and ``1`` apart, so must this."""
        by_value: dict[tuple[type, object], Option] = {}
        for o in self.options:
            if type(o.value) in _HASHED_VALUES:
                by_value.setdefault((type(o.value), o.value), o)
        return by_value


@dataclass(frozen=True)
class Script:
    """A validated survey script, as ``load_script`` returns it."""

    name: str
    version: str
    title: Text
    frame: Frame
    languages: tuple[str, ...]
    questions: tuple[Question, ...]
    rates: tuple[Rate, ...] = ()
    retry: Text | None = None  # default apology before a re-prompt
    goodbye: Text | None = None  # said when a survey ends without a closing "say" question
    source: str = "<script>"
    #: Where audio file names are looked up (the script file's folder joined with audio_dir).
    audio_dir: str | None = None
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {q.id: i for i, q in enumerate(self.questions)})

    def question(self, question_id: str) -> Question:
        return self.questions[self._index[question_id]]

    def has(self, question_id: str) -> bool:
        return question_id in self._index

    def following(self, question_id: str) -> str:
        """The question after ``question_id`` in file order, or END after the last."""
        i = self._index[question_id] + 1
        return self.questions[i].id if i < len(self.questions) else END

    def default_next(self, question: Question) -> str:
        return question.next or self.following(question.id)

    def rate(self, name: str) -> Rate | None:
        return next((r for r in self.rates if r.name == name), None)

    @cached_property
    def derived(self) -> dict[Any, Any]:
        """What the engine works out from this script alone, kept on first use.

        ``callback.survey_prompts`` keeps each question's templates here, per language and
        channel. A script never changes, so nothing here goes stale; it is no part of the
        script's value (a ``dataclasses.replace`` copy starts empty).
        """
        return {}


def same_value(a: object, b: object) -> bool:
    """Equality that keeps ``True`` and ``1`` apart, as JSON and TOML do."""
    return type(a) is type(b) and a == b
