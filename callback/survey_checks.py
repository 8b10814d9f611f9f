"""Check what a survey script says: its question graph, condition values, texts and audio.

The loader (``callback.survey_loader``) calls these as it reads a script; the checks return what
is wrong (None when nothing is) rather than raise, so the loader can report every problem at once.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from callback.survey_format import (
    _AUDIO,
    END,
    PLACEHOLDERS,
    Fallback,
    Frame,
    Kind,
    Question,
    Script,
    Text,
    same_value,
)


def graph_problems(
    questions: Sequence[Question], languages: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Every question reachable, and no way round in a circle: ``(where, message)`` if not."""
    problems: list[tuple[str, str]] = []
    script = Script("x", "0", Text.of(zh="x"), Frame.CASES, languages, tuple(questions))
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
            problems.append((f'question "{q.id}": ', "never asked: no question leads to it"))
    cycle = _find_cycle(edges, questions[0].id)
    if cycle:
        problems.append(
            (f'question "{cycle[-2]}": ', f"field 'next': makes a loop: {' → '.join(cycle)}")
        )
    return problems


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


def value_problem(question: Question, value: Any) -> str | None:
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


def placeholder_problem(text: str) -> str | None:
    """Why ``text`` is not a valid template of known placeholders, or None if it is."""
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


def no_placeholders(text: str) -> str | None:
    """Why ``text`` (which is never filled in) is wrong if it has braces, or None."""
    return "must not have placeholders" if "{" in text or "}" in text else None


def audio_problem(name: str) -> str | None:
    """Why ``name`` is not a safe audio file name inside the audio folder, or None."""
    if not _AUDIO.fullmatch(name) or ".." in name.split("/"):
        return "must be a file name relative to the script's audio folder"
    return None
