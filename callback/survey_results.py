"""Summarise a survey session: its answers, rate flags, proposed corrections and problems raised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callback.survey_format import CorrectionKind, ProblemRule, Script, Value
from callback.surveys import SessionState, Status, answers_given, current_question, ending

__all__ = ["Correction", "Problem", "Results", "results"]


@dataclass(frozen=True)
class Correction:
    """A change to the frame that an answer proposes (the office confirms it)."""

    kind: CorrectionKind
    question: str
    value: Value


@dataclass(frozen=True)
class Problem:
    """Something the respondent raised that the unit must follow up (整改) or explain."""

    category: str
    question: str
    text: str


@dataclass(frozen=True)
class Results:
    """What a session (finished or not) yields for storage, rates and follow-up."""

    script: str
    version: str
    status: Status
    answers: Mapping[str, Value | None]
    #: Each of the script's rates: True, False, or None when this session does not count.
    rates: Mapping[str, bool | None]
    corrections: tuple[Correction, ...]
    problems: tuple[Problem, ...]
    #: The question the survey stopped at (finished or broken off), if any.
    ended_at: str | None

    @property
    def complete(self) -> bool:
        """A complete interview: the script's end reached, not screened out, not refused."""
        return self.status is Status.COMPLETE

    @property
    def partial(self) -> bool:
        """Broken off (dropped call, hang-up) or ended by a fallback."""
        return self.status in (Status.ACTIVE, Status.ENDED)

    @property
    def screened_out(self) -> bool:
        """Ended on a path for someone who is not the applicant, or a case not theirs."""
        return self.status is Status.SCREENED_OUT

    @property
    def refused(self) -> bool:
        """Ended on a path the respondent took by declining the interview."""
        return self.status is Status.REFUSED

    @property
    def realised(self) -> bool | None:
        """Went at most once (实现率), if the script declares ``realised``."""
        return self.rates.get("realised")

    @property
    def satisfied(self) -> bool | None:
        """Counted as satisfied (满意率), if the script declares ``satisfied``."""
        return self.rates.get("satisfied")


def results(script: Script, state: SessionState) -> Results:
    """Summarise a session: answers, rate flags, proposed corrections and problems raised."""
    current_question(script, state)  # raises SessionError for another script's state
    answers = state.answer_map()
    status = state.status
    if status is Status.COMPLETE:
        # A state saved before screen-outs and refusals had statuses of their own says
        # "complete" for them too; the answers tell them apart.
        status = ending(script, answers)
    rates: dict[str, bool | None] = {}
    for rate in script.rates:
        asked = rate.condition.question in answers
        if asked and answers[rate.condition.question] is not None:
            rates[rate.name] = rate.condition.holds(answers)
        elif not asked and status is Status.COMPLETE:
            # Only an interview's skip logic speaks for a question it passed by: a screen-out
            # or a refusal that never got there is no one's answer, and stays out of the rate.
            rates[rate.name] = rate.if_skipped
        else:
            rates[rate.name] = None
    corrections = [
        Correction(kind, question_id, value)
        for question_id, value, _, kind in answers_given(script, answers)
        if kind is not None
    ]
    problems: list[Problem] = []
    for question_id, value in state.answers:
        question = script.question(question_id)
        if question.problem and isinstance(value, str) and value.strip():
            problems.append(Problem(_category(question.problem, answers), question_id, value))
    return Results(
        script=script.name,
        version=script.version,
        status=status,
        answers=answers,
        rates=rates,
        corrections=tuple(corrections),
        problems=tuple(problems),
        ended_at=state.current,
    )


def _category(rule: ProblemRule, answers: Mapping[str, Value | None]) -> str:
    source = answers.get(rule.category_from) if rule.category_from else None
    return rule.category if source is None else str(source)
