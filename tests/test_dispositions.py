"""AAPOR disposition codes: the table, attempt codes from events and agents, final codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callback.dialing import EventKind
from callback.dispositions import (
    CODES,
    FRAME_ERRORS,
    AgentOutcome,
    Category,
    Disposition,
    Progress,
    attempt_disposition,
    final_disposition,
    is_final,
    needs_frame_correction,
    retry_outcome,
)
from callback.rules import Outcome

D = Disposition

# -- the table -------------------------------------------------------------------------------


def _category_by_number(code: str) -> Category | None:
    """AAPOR's numbering decides the category; ours must agree with it."""
    if code.startswith("4."):
        return Category.NE
    by_prefix = {
        "1.1": Category.I,
        "1.2": Category.P,
        "2.1": Category.R,
        "2.2": Category.NC,
        "2.3": Category.O,
        "3.1": Category.UH,
        "3.2": Category.UO,
        "3.9": Category.UO,
    }
    return by_prefix.get(code[:3])


def test_every_code_has_a_row() -> None:
    assert set(CODES) == set(Disposition)
    assert all(CODES[code].code is code for code in Disposition)


@pytest.mark.parametrize("code", list(Disposition))
def test_category_follows_the_aapor_number(code: Disposition) -> None:
    assert code.category is _category_by_number(code.value)


@pytest.mark.parametrize("code", list(Disposition))
def test_every_code_has_english_and_chinese_labels(code: Disposition) -> None:
    assert code.info.en.strip() and code.info.zh.strip()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in code.info.zh)


def test_categories_are_those_of_the_aapor_rate_formulas() -> None:
    assert {c.value for c in Category} == {"I", "P", "R", "NC", "O", "UH", "UO", "NE"}


def test_codes_the_issue_names_exist() -> None:
    for code in ["1.1", "1.2", "2.11", "2.111", "2.112", "2.12", "2.21", "2.221", "2.222",
                 "3.11", "3.12", "3.13", "3.14", "3.16"]:  # fmt: skip
        assert Disposition(code).value == code


def test_only_the_frame_error_codes_are_local() -> None:
    assert {c for c in Disposition if c.info.local} == FRAME_ERRORS == {D("2.291"), D("2.292")}


def test_wrong_or_dead_number_of_a_named_applicant_stays_eligible() -> None:
    for code in FRAME_ERRORS:
        assert code.category is Category.NC  # eligible non-contact, never NE
        assert not code.final  # the case goes on with its other numbers


def test_no_code_counts_a_bad_number_as_not_eligible() -> None:
    not_eligible = {c for c in Disposition if c.category is Category.NE}
    assert not_eligible == {D.OUT_OF_SAMPLE, D.QUOTA_FILLED, D.NOT_ELIGIBLE_OTHER}


@pytest.mark.parametrize(
    ("code", "final"),
    [
        ("1.1", True), ("1.2", True), ("2.11", False), ("2.111", True), ("2.112", True),
        ("2.12", False), ("2.21", False), ("2.221", False), ("2.291", False), ("2.31", True),
        ("2.332", True), ("2.333", False), ("2.35", False), ("3.12", False), ("3.13", False),
        ("3.16", False), ("4.10", True), ("4.80", True),
    ],
)  # fmt: skip
def test_is_final(code: str, final: bool) -> None:
    assert is_final(code) is final
    assert is_final(Disposition(code)) is final


def test_unknown_code_is_an_error() -> None:
    with pytest.raises(ValueError):
        is_final("2.99")


# -- attempt codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (EventKind.QUEUED, "3.11"),
        (EventKind.RINGING, "3.13"),
        (EventKind.ANSWERED, "2.11"),
        (EventKind.MACHINE, "3.14"),
        (EventKind.BUSY, "3.12"),
        (EventKind.NO_ANSWER, "3.13"),
        (EventKind.WRONG_NUMBER, "2.292"),
        (EventKind.FAILED, "3.16"),
        (EventKind.COMPLETED, "2.11"),
    ],
)
def test_dialer_events_without_answers(kind: EventKind, code: str) -> None:
    assert attempt_disposition(kind) == code


def test_every_event_and_agent_outcome_has_a_code() -> None:
    for outcome in [*EventKind, *AgentOutcome]:
        assert isinstance(attempt_disposition(outcome), Disposition)


@pytest.mark.parametrize("kind", [EventKind.ANSWERED, EventKind.COMPLETED, AgentOutcome.BROKE_OFF])
@pytest.mark.parametrize(
    ("progress", "code"),
    [(Progress.NONE, "2.11"), (Progress.SOME, "2.12"), (Progress.SUFFICIENT, "1.2"),
     (Progress.ALL, "1.1")],
)  # fmt: skip
def test_answers_decide_a_call_that_ended(
    kind: EventKind | AgentOutcome, progress: Progress, code: str
) -> None:
    assert attempt_disposition(kind, progress) == code


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (AgentOutcome.REFUSED, "2.112"),
        (AgentOutcome.REFUSED_BY_OTHER, "2.111"),
        (AgentOutcome.APPLICANT_UNAVAILABLE, "2.21"),
        (AgentOutcome.APPOINTMENT, "2.35"),
        (AgentOutcome.WRONG_PERSON, "2.291"),
        (AgentOutcome.DEAD_NUMBER, "2.292"),
        (AgentOutcome.MACHINE_MESSAGE_LEFT, "2.221"),
        (AgentOutcome.MACHINE_NO_MESSAGE, "2.222"),
        (AgentOutcome.SWITCHED_OFF, "3.16"),
        (AgentOutcome.CALL_BLOCKED, "3.15"),
        (AgentOutcome.DECEASED, "2.31"),
        (AgentOutcome.UNABLE, "2.32"),
        (AgentOutcome.LANGUAGE_BARRIER, "2.332"),
        (AgentOutcome.LANGUAGE_BARRIER_OTHER, "2.331"),
        (AgentOutcome.NEEDS_DIALECT, "2.333"),
        (AgentOutcome.BAD_AUDIO, "2.34"),
        (AgentOutcome.NOT_ELIGIBLE, "4.10"),
        (AgentOutcome.QUOTA_FILLED, "4.80"),
        (AgentOutcome.OTHER, "2.36"),
    ],
)
def test_agent_outcomes(outcome: AgentOutcome, code: str) -> None:
    assert attempt_disposition(outcome) == code


def test_refusal_after_some_answers_is_still_the_applicants_refusal() -> None:
    assert attempt_disposition(AgentOutcome.REFUSED, Progress.SOME) is D.REFUSAL_RESPONDENT


def test_refusal_after_a_partial_interview_keeps_the_partial() -> None:
    assert attempt_disposition(AgentOutcome.REFUSED, Progress.SUFFICIENT) is D.PARTIAL


def test_appointment_midway_keeps_its_code() -> None:
    assert attempt_disposition(AgentOutcome.APPOINTMENT, Progress.SOME) is D.NOT_NOW


def test_progress_can_be_given_as_text() -> None:
    assert attempt_disposition(EventKind.COMPLETED, "all") is D.COMPLETE  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [EventKind.BUSY, EventKind.NO_ANSWER, EventKind.MACHINE])
def test_answers_on_a_call_nobody_answered_are_an_error(kind: EventKind) -> None:
    with pytest.raises(ValueError, match="answers"):
        attempt_disposition(kind, Progress.SOME)


# -- retry outcome and frame corrections ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("3.12", Outcome.BUSY), ("3.13", Outcome.NO_ANSWER), ("3.14", Outcome.MACHINE),
        ("2.221", Outcome.MACHINE), ("2.222", Outcome.MACHINE), ("3.16", Outcome.FAILED),
        ("3.11", Outcome.FAILED), ("3.15", Outcome.FAILED), ("2.291", Outcome.WRONG_NUMBER),
        ("2.292", Outcome.WRONG_NUMBER), ("2.21", Outcome.ANSWERED), ("2.11", Outcome.ANSWERED),
        ("2.35", Outcome.ANSWERED), ("1.1", Outcome.ANSWERED),
    ],
)  # fmt: skip
def test_retry_outcome(code: str, outcome: Outcome) -> None:
    assert retry_outcome(code) is outcome


def test_a_dead_number_event_retires_the_number() -> None:
    assert retry_outcome(attempt_disposition(EventKind.WRONG_NUMBER)) is Outcome.WRONG_NUMBER


def test_needs_frame_correction() -> None:
    assert needs_frame_correction(["3.13", "2.291"])
    assert needs_frame_correction([D.DEAD_NUMBER])
    assert not needs_frame_correction(["3.13", "2.21", "1.1"])
    assert not needs_frame_correction([])


# -- final codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("reached", [True, False])
def test_empty_history_is_not_attempted(reached: bool) -> None:
    assert final_disposition([], reached) is D.NOT_ATTEMPTED


@pytest.mark.parametrize(
    ("attempts", "code"),
    [
        (["3.13", "2.11", "1.1"], "1.1"),
        (["1.1", "2.112"], "1.1"),  # an interview is never undone
        (["1.2", "2.112"], "1.2"),
        (["2.112", "4.10"], "4.10"),  # not eligible beats a refusal, earlier or later
        (["4.10", "2.112"], "4.10"),
        (["4.10", "1.2"], "1.2"),  # an interview beats ineligibility
        (["2.112", "2.31"], "2.31"),  # otherwise the latest final code
        (["2.31", "2.112"], "2.112"),
        (["2.111", "3.13", "3.13"], "2.111"),
    ],
)
def test_a_final_outcome_wins_whether_or_not_attempts_remain(
    attempts: list[str], code: str
) -> None:
    assert final_disposition(attempts, False) == code
    assert final_disposition(attempts, True) == code


def test_open_case_without_a_final_outcome_has_no_final_code() -> None:
    assert final_disposition(["3.13", "2.21", "3.12"], False) is None


@pytest.mark.parametrize(
    ("attempts", "code"),
    [
        (["3.13", "2.21", "3.13"], "2.21"),  # someone answered: eligible non-contact
        (["2.221", "3.13", "3.13"], "2.221"),
        (["2.221", "2.21"], "2.21"),  # latest among non-contacts
        (["2.21", "2.12", "3.13"], "2.12"),  # a break-off is contact: stays R
        (["2.35", "2.21"], "2.35"),  # the applicant asked for another time: O beats NC
        (["2.11", "2.35"], "2.11"),  # R beats O
        (["2.291", "2.21"], "2.21"),  # another number reached the applicant's family
        (["2.21", "2.291"], "2.21"),  # ... whichever came first
        (["2.292", "3.13", "3.13"], "2.292"),  # a known bad number beats unknowns
        (["2.291", "2.292"], "2.292"),
        (["3.13", "3.12", "3.13"], "3.13"),  # never reached: what happened most
        (["3.12", "3.12", "3.14"], "3.12"),
        (["3.14", "3.13", "3.14", "3.12"], "3.14"),
        (["3.13", "3.12"], "3.12"),  # a tie goes to the latest
        (["3.16", "3.16", "3.13"], "3.16"),
        (["3.11", "3.11", "3.13"], "3.13"),  # 3.11 only if no call was ever placed
        (["3.11"], "3.11"),
    ],
)
def test_closing_at_the_attempt_limit(attempts: list[str], code: str) -> None:
    assert final_disposition(attempts, True) == code


def test_final_code_from_dialer_events() -> None:
    kinds = [EventKind.BUSY, EventKind.NO_ANSWER, EventKind.NO_ANSWER, EventKind.MACHINE]
    codes = [attempt_disposition(kind) for kind in kinds]
    assert final_disposition(codes, True) is D.NO_ANSWER


@given(st.lists(st.sampled_from(list(Disposition)), max_size=10))
def test_final_code_is_one_of_the_attempts_and_final_codes_win(codes: list[Disposition]) -> None:
    result = final_disposition(codes, True)
    assert result is not None
    assert result in codes or (result is D.NOT_ATTEMPTED and not codes)
    if any(c.final for c in codes):
        assert result.final
    if D.COMPLETE in codes:
        assert result is D.COMPLETE
    if not any(c.final for c in codes):
        assert final_disposition(codes, False) is (None if codes else D.NOT_ATTEMPTED)


def test_the_code_table_in_the_docs_matches_the_code() -> None:
    text = (Path(__file__).parent.parent / "docs" / "dispositions.md").read_text("utf-8")
    section = text.split("## The codes", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and line[2].isdigit()
    ]
    documented = {row[0].removesuffix(" (local)"): row for row in rows}
    assert set(documented) == {code.value for code in Disposition}
    for code, row in documented.items():
        info = Disposition(code).info
        assert row[1:] == [info.en, info.zh, info.category.value, "yes" if info.final else "no"]
        assert row[0].endswith("(local)") is info.local
