"""Survey sessions in the database: how a finished session's call is coded and counted.

A script reaches its end on a short path too ("not me", a refusal); only an interview that ran
to the end with the applicant is a complete, in the response, the attempt's code and every
report figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import NOW, rows, world

from callback import plugins
from callback.attempt_outcomes import finish_attempt
from callback.attempts import attempt_placed, begin_attempt
from callback.claims import Scope, claim_next
from callback.dial_plan import next_number
from callback.dialing import EventKind
from callback.dispositions import AgentOutcome, Progress, attempt_disposition
from callback.models import Campaign, QueueItem, Response, SurveySession, table
from callback.report_weeks import week_at
from callback.reports import rates_report
from callback.sessions import close_session, give_answer, open_session, outcome_of
from callback.survey_results import results
from callback.surveys import Context, Script, Status, answer, load_script, start
from callback.weekly import weekly_data

CONSENT = Path(__file__).parent / "survey_scripts" / "consent.toml"
SHANGHAI = "Asia/Shanghai"
CASE = Context(item="结婚登记", unit="区民政局", applicant="张三")


@pytest.fixture(scope="module")
def consent() -> Script:
    return load_script(CONSENT)


@pytest.fixture
def consent_installed(consent: Script, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The consent script as if a plugin had registered it."""
    installed = plugins.get_script

    def get_script(name: str) -> Any:
        return consent if name == consent.name else installed(name)

    monkeypatch.setattr(plugins, "get_script", get_script)
    yield


def campaign_of(engine: Engine, cases: int, script: str = "consent") -> int:
    campaign = world(engine, cases=cases)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(script=script))
    return campaign


def interview(engine: Engine, campaign: int, keys: list[str], at_minute: int) -> str | None:
    """One answered call of the next due case, keyed by the respondent as an IVR hears it,
    ended as callback.calls ends it; the attempt's code."""
    now = NOW + timedelta(minutes=at_minute)
    claim = claim_next(engine, "ivr-test", Scope(campaigns=frozenset({campaign})), now)
    assert claim is not None
    number = next_number(engine, claim, now)
    assert number is not None
    attempt = begin_attempt(engine, claim, number, "simulated", now)
    attempt_placed(engine, attempt, f"call-{attempt}", now)
    session = open_session(engine, attempt, "ivr", now)
    for key in keys:
        session = give_answer(engine, session, key, now)
    said = close_session(engine, session, "ivr", now)
    result = finish_attempt(
        engine, attempt, said.outcome, now, {"event": "completed"},
        final=said.final, progress=said.progress,
    )  # fmt: skip
    return result.disposition


# -- the attempt's outcome ------------------------------------------------------------------


def test_a_complete_session_is_a_complete_interview(consent: Script) -> None:
    state = start(consent, CASE)
    for key in ("1", "1", "0"):
        state = answer(consent, state, key)
    said = outcome_of(results(consent, state), done=True)
    assert (said.outcome, said.final, said.progress) == (EventKind.COMPLETED, "1.1", Progress.ALL)


def test_a_session_ending_on_not_me_is_the_wrong_person(consent: Script) -> None:
    state = answer(consent, start(consent, CASE), "2")
    said = outcome_of(results(consent, state), done=True)
    assert (said.outcome, said.final) == (AgentOutcome.WRONG_PERSON, None)
    assert attempt_disposition(said.outcome, said.progress) == "2.291"


def test_a_session_ending_on_a_refusal_is_the_applicants_refusal(consent: Script) -> None:
    state = answer(consent, answer(consent, start(consent, CASE), "1"), "2")
    said = outcome_of(results(consent, state), done=True)
    assert (said.outcome, said.final, said.progress) == (
        AgentOutcome.REFUSED, None, Progress.SOME
    )  # fmt: skip
    assert attempt_disposition(said.outcome, said.progress) == "2.112"


def test_a_refusal_after_enough_answers_is_a_partial(consent: Script) -> None:
    found = results(consent, answer(consent, start(consent, CASE), "1"))
    # As a script would give it whose refusal comes after both rate questions.
    refused = dataclasses.replace(
        found, status=Status.REFUSED, rates={"realised": True, "satisfied": True}
    )
    said = outcome_of(refused, done=True)
    assert (said.outcome, said.progress) == (AgentOutcome.REFUSED, Progress.SUFFICIENT)
    assert attempt_disposition(said.outcome, said.progress) == "1.2"


# -- in the database ------------------------------------------------------------------------


@pytest.mark.usefixtures("consent_installed")
def test_not_me_and_a_refusal_are_stored_as_neither_complete(engine: Engine) -> None:
    campaign = campaign_of(engine, cases=3)
    codes = [
        interview(engine, campaign, ["2"], 0),  # 不是本人
        interview(engine, campaign, ["1", "2"], 1),  # 本人, 不愿意
        interview(engine, campaign, ["1", "1", "2", "2"], 2),  # an interview, not satisfied
    ]
    assert codes == ["2.291", "2.112", "1.1"]
    assert [s.status for s in rows(engine, SurveySession)] == ["finished"] * 3
    responses = {r.answers.get("consent"): r for r in rows(engine, Response)}
    assert responses[None].complete is False  # not me
    assert responses[False].complete is False  # refused
    assert responses[True].complete is True
    assert responses[False].satisfied is None and responses[None].satisfied is None
    # The case of the wrong number had no other number: it closes as 2.291, not as a complete.
    assert sorted(i.final_disposition for i in rows(engine, QueueItem)) == ["1.1", "2.112", "2.291"]


@pytest.mark.usefixtures("consent_installed")
def test_no_valid_key_to_the_rate_question_is_a_refusal_not_a_complete(engine: Engine) -> None:
    # The script allows no re-prompt: a key off the scale records no answer (拒答) to trips,
    # skip logic passes satisfaction by, and the script reaches its end with nothing to count.
    campaign = campaign_of(engine, cases=2)
    codes = [
        interview(engine, campaign, ["1", "1", "9"], 0),
        interview(engine, campaign, ["1", "1", "1"], 1),
    ]
    assert codes == ["2.112", "1.1"]
    by_trips = {r.answers.get("trips"): r for r in rows(engine, Response)}
    assert by_trips[None].complete is False
    assert (by_trips[None].realised, by_trips[None].satisfied) == (None, None)
    assert by_trips[1].complete is True
    assert sorted(i.final_disposition for i in rows(engine, QueueItem)) == ["1.1", "2.112"]
    total = rates_report(engine, "unit", timezone=SHANGHAI).total
    assert (total.completes, total.realisation.n, total.satisfaction.n) == (1, 1, 1)


@pytest.mark.usefixtures("consent_installed")
def test_reports_count_only_the_interview(engine: Engine) -> None:
    campaign = campaign_of(engine, cases=3)
    interview(engine, campaign, ["2"], 0)
    interview(engine, campaign, ["1", "2"], 1)
    interview(engine, campaign, ["1", "1", "2", "2"], 2)
    report = rates_report(engine, "unit", timezone=SHANGHAI)
    total = report.total
    # The satisfied rate's if_skipped is true: a screen-out or refusal in its denominator
    # would show up as a satisfied 2 of 3.
    assert (total.completes, total.realisation.n, total.satisfaction.n) == (1, 1, 1)
    assert (total.realisation.k, total.satisfaction.k) == (0, 0)
    (line,) = [x for x in report.outcomes if x.unit is None]
    assert line.rates.counts["I"] == 1 and line.rates.counts["R"] == 1
    week = week_at(NOW, ZoneInfo(SHANGHAI))
    weekly = weekly_data(engine, week, NOW + timedelta(days=8), timezone=SHANGHAI)
    assert (weekly.total.completed, weekly.total.completed_to_date) == (1, 1)
    assert weekly.total.satisfaction.n == 1
