"""The call pipeline: dialer events and IVR turns recorded once, whatever order they come in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.attempts import attempt_placed, begin_attempt
from callback.calls import GOODBYE, CallHandler
from callback.claims import Scope, claim_next
from callback.dialing import CallEvent, EventKind
from callback.models import (
    CallAttempt,
    Campaign,
    Case,
    Contact,
    Correction,
    ProblemReport,
    QueueItem,
    Response,
    SurveySession,
    Unit,
    table,
)
from callback.queues import refresh, rules_to_json
from callback.rules import CallingRules

NOW = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
A, B = "+8613912345671", "+8613587654321"


def world(engine: Engine, numbers: tuple[str, ...] = (A,), cases: int = 1) -> int:
    """A campaign of ``cases`` cases with ``numbers``, sampled and refreshed; return its id."""
    with engine.begin() as conn:
        unit = conn.execute(
            sa.insert(table(Unit)).values(name="区民政局", kind="department", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()  # fmt: skip
        campaign = conn.execute(
            sa.insert(table(Campaign)).values(
                name="june", target="cases", script="service-callback", dialer="simulated",
                period_start=date(2026, 5, 1), period_end=date(2026, 5, 31), deadline=None,
                rules=rules_to_json(CallingRules()), design={}, review_corrections=False,
                status="sampled", created_by="tester", created_at=NOW,
            ).returning(table(Campaign).c.id)
        ).scalar_one()  # fmt: skip
        for n in range(cases):
            case = conn.execute(
                sa.insert(table(Case)).values(
                    case_no=f"C{n}", item_name="结婚登记", unit_id=unit, applicant_name="张三",
                    applicant_type="person", handled_at=datetime(2026, 5, 20, 1, tzinfo=UTC),
                ).returning(table(Case).c.id)
            ).scalar_one()  # fmt: skip
            for position, number in enumerate(numbers if cases == 1 else _own(n, numbers)):
                conn.execute(
                    sa.insert(table(Contact)).values(
                        case_id=case, position=position, raw=number, e164=number,
                        kind="mobile", validity="valid", source="import", created_at=NOW,
                    )
                )  # fmt: skip
            conn.execute(
                sa.insert(table(QueueItem)).values(
                    campaign_id=campaign, unit_id=unit, case_id=case, stratum="s",
                    inclusion_probability=1.0, weight=1.0, state="open", wait_reason="new",
                )
            )  # fmt: skip
    refresh(engine, campaign, NOW)
    return campaign


def _own(case: int, numbers: tuple[str, ...]) -> tuple[str, ...]:
    """Numbers of a case of its own: one citizen per case, as sampling would make it."""
    return tuple(f"+86139{case:04d}{position:04d}" for position in range(len(numbers)))


def dial(engine: Engine, campaign: int, now: datetime = NOW) -> int:
    claim = claim_next(engine, "ivr-test", Scope(campaigns=frozenset({campaign})), now)
    assert claim is not None
    number = A
    attempt = begin_attempt(engine, claim, number, "simulated", now)
    attempt_placed(engine, attempt, f"call-{attempt}", now)
    return attempt


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(table(model)).order_by("id")).all()


def event(attempt: int, kind: EventKind, seconds: int = 0) -> CallEvent:
    return CallEvent(attempt, f"call-{attempt}", kind, NOW + timedelta(seconds=seconds))


def walk(handler: CallHandler, attempt: int, keys: list[str]) -> list[str]:
    turn = handler.begin(attempt)
    asked = [turn.question]
    for key in keys:
        assert not turn.hangup, asked
        turn = handler.reply(attempt, key)
        asked.append(turn.question)
    return asked


def test_a_whole_ivr_interview_is_recorded(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(attempt, EventKind.RINGING))
    handler(event(attempt, EventKind.ANSWERED, 5))
    # 本人, yes it is my case, went once, satisfied, no suggestion, policy yes, recontact yes
    asked = walk(handler, attempt, ["1", "1", "1", "2", "2", "1", "1"])
    assert asked[:3] == ["identity", "case", "trips"]
    handler(event(attempt, EventKind.COMPLETED, 90))

    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.outcome, row.disposition) == ("ended", "completed", "1.1")
    assert row.answered_at == NOW + timedelta(seconds=5)
    (item,) = rows(engine, QueueItem)
    assert (item.state, item.final_disposition) == ("finished", "1.1")
    (response,) = rows(engine, Response)
    assert response.complete and response.realised is True and response.satisfied is True
    assert response.answers["trips"] == 1
    (contact,) = rows(engine, Contact)
    assert contact.verification == "verified"
    assert rows(engine, SurveySession)[0].status == "finished"


def test_a_wrong_person_proposes_a_correction_and_marks_the_number(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(attempt, EventKind.ANSWERED))
    asked = walk(handler, attempt, ["4"])  # 不认识，打错了
    assert asked == ["identity", "bye_wrong_person"]
    handler(event(attempt, EventKind.COMPLETED, 20))
    (row,) = rows(engine, CallAttempt)
    assert row.disposition == "2.291"
    (correction,) = rows(engine, Correction)
    assert (correction.kind, correction.status, correction.attempt_id) == (
        "wrong_number", "pending", attempt
    )  # fmt: skip
    assert rows(engine, Contact)[0].verification == "wrong_number"
    assert rows(engine, Response)[0].complete is False or rows(engine, Response)[0].realised is None


def test_a_dropped_call_resumes_where_it_stopped(engine: Engine) -> None:
    campaign = world(engine)
    first = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(first, EventKind.ANSWERED))
    walk(handler, first, ["1", "1"])  # identity, case; the line drops at "trips"
    handler(event(first, EventKind.COMPLETED, 30))
    (attempt,) = rows(engine, CallAttempt)
    assert attempt.disposition == "2.12"  # a break-off: the case stays open
    (item,) = rows(engine, QueueItem)
    assert item.state == "open" and item.due_at is not None
    later = item.due_at.astimezone(UTC)
    second = dial(engine, campaign, later)
    resumed = CallHandler(engine, clock=lambda: later).begin(second)
    assert resumed.question == "trips"


def test_problems_raised_in_the_survey_are_opened_for_the_unit(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(attempt, EventKind.ANSWERED))
    turn = handler.begin(attempt)
    for key in ["1", "1", "2", "4", "2"]:  # twice, dissatisfied, too slow
        turn = handler.reply(attempt, key)
    while not turn.hangup:
        turn = handler.reply(attempt, "" if turn.kind == "text" else (turn.choices or ("2",))[-1])
    handler(event(attempt, EventKind.COMPLETED, 120))
    response = rows(engine, Response)[0]
    assert response.realised is False and response.satisfied is False


def test_repeated_and_late_events_change_nothing(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(attempt, EventKind.BUSY, 3))
    before = rows(engine, CallAttempt), rows(engine, QueueItem)
    handler(event(attempt, EventKind.BUSY, 3))
    handler(event(attempt, EventKind.COMPLETED, 60))
    handler(event(attempt, EventKind.ANSWERED, 1))  # out of order: after the end
    assert (rows(engine, CallAttempt), rows(engine, QueueItem)) == before
    assert rows(engine, CallAttempt)[0].disposition == "3.12"


def test_unknown_or_finished_calls_get_a_polite_goodbye(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    assert handler.begin(9999) == GOODBYE
    handler(event(attempt, EventKind.NO_ANSWER, 30))
    assert handler.begin(attempt) == GOODBYE
    assert handler.reply(attempt, "1") == GOODBYE
    handler(event(9999, EventKind.COMPLETED))  # logged and ignored, not an error


def test_a_machine_ends_the_attempt(engine: Engine) -> None:
    campaign = world(engine)
    attempt = dial(engine, campaign)
    handler = CallHandler(engine, clock=lambda: NOW)
    handler(event(attempt, EventKind.ANSWERED, 4))
    handler(event(attempt, EventKind.MACHINE, 6))
    handler(event(attempt, EventKind.COMPLETED, 30))
    assert rows(engine, CallAttempt)[0].disposition == "3.14"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_rehearsal_runs_a_campaign_to_its_end_and_replays(engine: Engine, seed: int) -> None:
    from callback.default_plugins.dialers import SimulatedDialer
    from callback.rehearsal import rehearse

    campaign = world(engine, numbers=(A, B), cases=40)
    report = rehearse(
        engine, campaign, lambda handler: SimulatedDialer({"seed": seed}, handler, handler),
        start=NOW, lines=10,
    )  # fmt: skip
    assert report.open_items == 0
    items = rows(engine, QueueItem)
    assert all(i.final_disposition for i in items)
    attempts = rows(engine, CallAttempt)
    assert len(attempts) == report.attempts >= 40
    assert all(a.state == "ended" and a.disposition for a in attempts)
    assert any(r.complete for r in rows(engine, Response))
    finals = sorted((i.case_id, i.final_disposition) for i in items)
    # Replaying the same seed in a fresh world gives the same outcomes.
    with engine.begin() as conn:
        for model in (Response, Correction, ProblemReport, SurveySession, CallAttempt, QueueItem):
            conn.execute(sa.delete(table(model)))
        conn.execute(sa.update(table(Contact)).values(verification="not_called", checked_at=None))
        for case_id, _ in finals:
            conn.execute(
                sa.insert(table(QueueItem)).values(
                    campaign_id=campaign, unit_id=items[0].unit_id, case_id=case_id, stratum="s",
                    inclusion_probability=1.0, weight=1.0, state="open", wait_reason="new",
                )
            )  # fmt: skip
    rehearse(
        engine, campaign, lambda handler: SimulatedDialer({"seed": seed}, handler, handler),
        start=NOW, lines=10,
    )  # fmt: skip
    assert sorted((i.case_id, i.final_disposition) for i in rows(engine, QueueItem)) == finals
