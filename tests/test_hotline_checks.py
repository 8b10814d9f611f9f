"""Hotline spot checks by machine: observed, completed by themselves or handed to a tester."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import rows

from callback.agents import save_agent
from callback.campaigns import create_campaign, sample_campaign
from callback.claims import Scope, agent_scope, claim_next
from callback.config import Settings
from callback.dialing import (
    ANSWERED_BY_PERSON,
    CallEvent,
    CallRequest,
    Conversation,
    Dialer,
    EventKind,
    EventSink,
    Pacing,
    Turn,
)
from callback.dispatch import Dispatcher
from callback.hotline_checks import HANDED_EXTENSION, HANG_UP, LISTEN
from callback.models import (
    AuditEntry,
    CallAttempt,
    Hotline,
    QueueItem,
    Response,
    SurveySession,
    Unit,
    table,
)
from callback.queue_status import queue_status
from callback.queues import refresh
from callback.report_weeks import report_week
from callback.reports import rates_report
from callback.spotchecks import HotlineDesign
from callback.weekly import weekly_data

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 8, 9, 0, tzinfo=SH).astimezone(UTC)  # a Monday morning

#: unit -> (hotline, what happens on its 1st, 2nd, ... call; the last repeats).
LINES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "区民政局": ("+8657188001111", ("no-answer",)),
    "区公安分局": ("+8657188002222", ("machine",)),
    "区税务局": ("+8657188003333", ("person",)),
    "区人社局": ("+8657188004444", ("busy", "person")),
    "区市场监管局": ("+8657188005555", ("unknown",)),
}


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class HotlineDialer(Dialer):
    """Plays each hotline's fate when polled: ringing after 1 s, then as LINES says.

    A person is reported by answering-machine detection (``answered_by``); "unknown" is a
    dialer that cannot tell, which listens for the core's turn and hangs up when told.
    """

    interactive = True

    def __init__(
        self,
        settings: Mapping[str, Any],
        events: EventSink,
        fates: Mapping[str, Sequence[str]],
        conversation: Conversation | None = None,
    ) -> None:
        super().__init__(settings, events)
        self.fates = fates
        self.conversation = conversation
        self.started: list[CallRequest] = []
        self.turns: dict[str, list[Turn]] = {}
        self._waiting: list[CallRequest] = []

    @property
    def pacing(self) -> Pacing:
        return Pacing(100.0, 100)

    def start(self, call: CallRequest) -> str:
        self.started.append(call)
        self._waiting.append(call)
        return f"hl-{call.attempt_id}"

    def poll(self, now: datetime) -> None:
        waiting, self._waiting = self._waiting, []
        for call in waiting:
            self._play(call, now)

    def _play(self, call: CallRequest, at: datetime) -> None:
        fates = self.fates[call.to]
        fate = fates[min(int(call.metadata["attempt"]), len(fates)) - 1]
        assert self.conversation is not None

        def emit(kind: EventKind, seconds: int, by: str | None = None) -> None:
            event = CallEvent(call.attempt_id, f"hl-{call.attempt_id}", kind,
                              at + timedelta(seconds=seconds), {"fate": fate}, by)  # fmt: skip
            self.events(event)

        emit(EventKind.RINGING, 1)
        turns = self.turns.setdefault(call.to, [])
        if fate == "no-answer":
            emit(EventKind.NO_ANSWER, 61)
        elif fate == "busy":
            emit(EventKind.BUSY, 3)
        elif fate == "machine":
            emit(EventKind.MACHINE, 6)
            emit(EventKind.COMPLETED, 26)
        elif fate == "person":
            emit(EventKind.ANSWERED, 8, ANSWERED_BY_PERSON)
            turns.append(self.conversation.begin(call.attempt_id))
            emit(EventKind.COMPLETED, 9)
        else:  # answered, and the dialer cannot tell by whom
            emit(EventKind.ANSWERED, 5)
            turn = self.conversation.begin(call.attempt_id)
            turns.append(turn)
            while not turn.hangup and len(turns) < 5:
                turn = self.conversation.reply(call.attempt_id, "")
                turns.append(turn)
            emit(EventKind.COMPLETED, 15)


def hotline_campaign(engine: Engine, dialer: str = "scripted") -> int:
    """One spot check of each unit's hotline this week, automated; return the campaign id."""
    with engine.begin() as conn:
        for name, (number, _) in LINES.items():
            unit = conn.execute(
                sa.insert(table(Unit)).values(name=name, kind="department", created_at=NOW)
                .returning(table(Unit).c.id)
            ).scalar_one()  # fmt: skip
            conn.execute(
                sa.insert(table(Hotline)).values(unit_id=unit, e164=number, created_at=NOW)
            )
    design = HotlineDesign(date(2026, 6, 8), date(2026, 6, 10), seed=3, calls_per_week=1)
    campaign = create_campaign(
        engine, "hotlines-w24", design, script="hotline-check", dialer=dialer,
        created_by="office", now=NOW,
    )  # fmt: skip
    sample_campaign(engine, campaign, NOW)
    refresh(engine, campaign, NOW)
    return campaign


def machine(engine: Engine, clock: Clock) -> tuple[Dispatcher, HotlineDialer]:
    fates = {number: fates for number, fates in LINES.values()}
    dialer = HotlineDialer({}, lambda event: None, fates)
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"scripted": dialer},
                   sleep=clock.sleep)  # fmt: skip
    dialer.events = d.handler  # the core's sink and conversation, as _build wires them
    dialer.conversation = d.handler
    return d, dialer


def run_until_idle(engine: Engine, d: Dispatcher, clock: Clock, days: int = 7) -> None:
    """Tick, then jump the virtual clock to the next time the machine has something due."""
    end = clock.at + timedelta(days=days)
    items = table(QueueItem).c
    for _ in range(500):
        d.tick()
        with engine.connect() as conn:
            upcoming = conn.execute(
                sa.select(sa.func.min(items.due_at)).where(
                    items.state == "open", items.handed_to.is_(None), items.due_at > clock.at
                )
            ).scalar()
        if upcoming is None or upcoming > end:
            return
        clock.at = max(upcoming, clock.at + timedelta(minutes=1))
    raise AssertionError("the machine never ran out of work")


@pytest.fixture
def checked(engine: Engine) -> tuple[int, Dispatcher, HotlineDialer, Clock]:
    """The machine's whole part of the week's campaign, played on a virtual clock."""
    campaign = hotline_campaign(engine)
    clock = Clock(NOW)
    d, dialer = machine(engine, clock)
    run_until_idle(engine, d, clock)
    return campaign, d, dialer, clock


def by_unit(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each unit's check: its item, attempts, response and audit trail."""
    units = {u.id: u.name for u in rows(engine, Unit)}
    attempts = rows(engine, CallAttempt)
    responses = {r.queue_item_id: r for r in rows(engine, Response)}
    audit = rows(engine, AuditEntry)
    out = {}
    for item in rows(engine, QueueItem):
        out[units[item.unit_id]] = {
            "item": item,
            "attempts": [a for a in attempts if a.queue_item_id == item.id],
            "response": responses.get(item.id),
            "audit": [(e.action, e.actor) for e in audit if e.entity_id == item.id],
        }
    return out


def test_the_machine_records_what_it_observed_as_answers(engine, checked) -> None:
    checks = by_unit(engine)
    answers = {unit: c["response"].answers for unit, c in checks.items()}
    assert answers == {
        "区民政局": {"answered": False},
        "区公安分局": {"answered": True, "answer_seconds": 5, "answered_by": "machine"},
        "区税务局": {"answered": True, "answer_seconds": 7, "answered_by": "person"},
        "区人社局": {"answered": True, "answer_seconds": 7, "answered_by": "person"},
        # The dialer could not tell who answered: a person (the tester) must say.
        "区市场监管局": {"answered": True, "answer_seconds": 4},
    }
    for unit, check in checks.items():
        last = check["attempts"][-1]
        assert last.detail["observed"] == answers[unit], unit
        assert "ringing_at" in last.detail
        assert ("hotline_check.observe", "dispatcher:test") in check["audit"]


def test_checks_that_need_no_person_complete_by_themselves(engine, checked) -> None:
    checks = by_unit(engine)
    done = {u for u, c in checks.items() if c["item"].state == "finished"}
    assert done == {"区民政局", "区公安分局"}
    for unit in done:
        check = checks[unit]
        assert check["item"].final_disposition == "1.1"
        assert check["item"].handed_to is None
        assert check["response"].complete
    # Nobody answered: retried within the rules, one attempt short of their limit (3 a
    # number), which the machine always leaves a tester; the last try completes the check.
    unanswered = checks["区民政局"]["attempts"]
    assert [(a.outcome, a.disposition) for a in unanswered] == [
        ("no-answer", "3.13"),
        ("no-answer", "1.1"),
    ]
    assert [(a.outcome, a.disposition) for a in checks["区公安分局"]["attempts"]] == [
        ("machine", "1.1")
    ]
    assert checks["区民政局"]["response"].rates["connected"] is False
    assert checks["区公安分局"]["response"].rates["connected"] is False


def test_a_check_a_person_answered_is_handed_to_a_tester(engine, checked) -> None:
    _, _, dialer, _ = checked
    checks = by_unit(engine)
    handed = {u for u, c in checks.items() if c["item"].handed_to is not None}
    assert handed == {"区税务局", "区人社局", "区市场监管局"}
    for unit in handed:
        check = checks[unit]
        item, last = check["item"], check["attempts"][-1]
        assert (item.state, item.handed_to, item.held_by) == ("open", "agent", None)
        assert item.handed_at == last.ended_at
        assert (last.outcome, last.disposition) == ("answered", "2.36")
        assert not check["response"].complete
        assert ("queue_item.hand_off", "dispatcher:test") in check["audit"]
    busy_first = checks["区人社局"]["attempts"]
    assert [(a.outcome, a.disposition) for a in busy_first] == [
        ("busy", "3.12"),
        ("answered", "2.36"),
    ]
    # The machine hung up as soon as it knew; without a verdict it listened, then hung up.
    assert dialer.turns["+8657188003333"] == [HANG_UP]
    assert dialer.turns["+8657188005555"] == [LISTEN, HANG_UP]
    sessions = {s.queue_item_id: s for s in rows(engine, SurveySession)}
    state = json.loads(sessions[checks["区税务局"]["item"].id].state)
    assert (sessions[checks["区税务局"]["item"].id].status, state["current"]) == (
        "stopped",
        "on_the_spot",
    )
    assert [(s.queue_item_id, s.channel) for s in rows(engine, SurveySession)
            if s.queue_item_id == checks["区税务局"]["item"].id] == [
        (checks["区税务局"]["item"].id, "agent")
    ]  # fmt: skip
    statuses = {
        s.unit: s for s in queue_status(engine, NOW + timedelta(days=1), campaign="hotlines-w24")
    }
    assert {u: s.handed for u, s in statuses.items()} == {
        "区民政局": 0, "区公安分局": 0, "区税务局": 1, "区人社局": 1, "区市场监管局": 1,
    }  # fmt: skip


def test_the_dispatcher_never_dials_a_handed_off_check_again(engine, checked) -> None:
    _, d, dialer, clock = checked
    dialled = len(dialer.started)
    for days in (3, 4):  # long past every retry delay, in office hours
        clock.at = datetime(2026, 6, 8 + days, 10, 0, tzinfo=SH).astimezone(UTC)
        d.tick()
        assert claim_next(engine, "dispatcher:test", Scope(dialers=frozenset({"scripted"})),
                          clock.at) is None  # fmt: skip
    assert len(dialer.started) == dialled
    assert len(rows(engine, CallAttempt)) == dialled


def test_only_an_agent_of_the_unit_may_claim_a_handed_off_check(engine, checked) -> None:
    save_agent(engine, "li", ["区税务局"], "office")
    save_agent(engine, "wang", ["区民政局"], "office")
    later = datetime(2026, 6, 11, 10, 0, tzinfo=SH).astimezone(UTC)
    assert claim_next(engine, "wang", agent_scope(engine, "wang"), later) is None
    # The agent's workstation scope: manual campaigns and checks handed to a person.
    scope = Scope(units=agent_scope(engine, "li").units, dialers=frozenset({"manual"}),
                  handed=True)  # fmt: skip
    claim = claim_next(engine, "li", scope, later)
    assert claim is not None
    assert claim.item_id == by_unit(engine)["区税务局"]["item"].id


def test_the_tester_completes_a_handed_off_check_at_the_workstation(cli, engine, checked) -> None:
    campaign = checked[0]
    save_agent(engine, "li", ["区税务局"], "office")
    # d dial, a answered; on the spot: 1 yes; notes: Enter, a line; then q.
    keys = "da1\r询问个税汇算，对方当场完整答复\nq"
    result = cli("--now", "2026-06-11 10:00", "--actor", "li", "agent", input=keys)
    assert result.exit_code == 0, result.output
    assert "咨询电话抽查" in result.output and "057188003333" in result.output
    assert "answered_by = 人工" in result.output
    check = by_unit(engine)["区税务局"]
    item, response = check["item"], check["response"]
    assert (item.state, item.final_disposition) == ("finished", "1.1")
    assert response.complete
    assert response.answers == {
        "answered": True, "answer_seconds": 7, "answered_by": "person",
        "on_the_spot": True, "notes": "询问个税汇算，对方当场完整答复",
    }  # fmt: skip
    tester = check["attempts"][-1]
    assert (tester.worker, tester.dialer, tester.disposition) == ("li", "manual", "1.1")
    # The rates: 接通率 over the checks whose answerer is known, 实时答复率 over those with an
    # answer recorded.
    report = rates_report(engine, campaigns=[campaign])
    hotlines = {h.unit: h.rates for h in report.hotlines}
    connected = {u: (r.connection.k, r.connection.n) for u, r in hotlines.items()}
    # Nobody has said yet who answered 区市场监管局's line: pending, in neither side.
    assert connected == {
        "区民政局": (0, 1), "区公安分局": (0, 1), "区税务局": (1, 1), "区人社局": (1, 1),
        "区市场监管局": (0, 0),
    }  # fmt: skip
    assert {u: r.pending for u, r in hotlines.items() if r.pending} == {"区市场监管局": 1}
    tax = hotlines["区税务局"].real_time_answer
    assert (tax.k, tax.n) == (1, 1)
    assert hotlines["区人社局"].real_time_answer.n == 0  # the tester has not called


def test_a_hotline_published_with_an_extension_is_dialled_with_it(cli, engine) -> None:
    campaign = hotline_campaign(engine)
    tax, _ = LINES["区税务局"]
    with engine.begin() as conn:
        conn.execute(
            sa.update(table(Hotline)).where(table(Hotline).c.e164 == tax).values(extension="8001")
        )
    clock = Clock(NOW)
    d, dialer = machine(engine, clock)
    run_until_idle(engine, d, clock)
    keyed = {(call.to, call.extension) for call in dialer.started}
    assert (tax, "8001") in keyed
    assert {extension for number, extension in keyed if number != tax} == {None}
    # The switchboard answered; whether the extension did, and who, nobody knows yet: the
    # machine records nothing about the answer and the check is pending in 接通率.
    check = by_unit(engine)["区税务局"]
    (machine_try,) = check["attempts"]
    assert machine_try.detail["extension"] == "8001"
    assert check["response"] is None and machine_try.detail["observed"] == {}
    assert check["item"].handed_to == "agent"
    hand_offs = [e for e in rows(engine, AuditEntry) if e.action == "queue_item.hand_off"]
    assert HANDED_EXTENSION in {e.reason for e in hand_offs if e.entity_id == check["item"].id}
    tax_rates = {h.unit: h.rates for h in rates_report(engine, campaigns=[campaign]).hotlines}
    assert (tax_rates["区税务局"].pending, tax_rates["区税务局"].connection.n) == (1, 0)
    # The tester who makes the consultation call reads it too, on the card and when dialling.
    save_agent(engine, "li", ["区税务局"], "office")
    # d dial, b busy, q quit
    result = cli("--now", "2026-06-11 10:00", "--actor", "li", "agent", input="dbq")
    assert result.exit_code == 0, result.output
    assert "咨询电话 057188003333 转 8001" in result.output
    assert "请拨打 057188003333 转 8001" in result.output
    assert "自动拨测已记录" not in result.output  # nothing observed to show
    tester = by_unit(engine)["区税务局"]["attempts"][-1]
    assert (tester.worker, tester.campaign_id, tester.outcome) == ("li", campaign, "busy")


def test_the_status_table_shows_handed_off_checks(cli, engine, checked) -> None:
    result = cli("--now", "2026-06-09 10:00", "queue", "status")
    assert result.exit_code == 0, result.output
    assert "tester" in result.output.splitlines()[0]
    data = json.loads(cli("--now", "2026-06-09 10:00", "queue", "status", "--json").output)
    assert sum(row["handed"] for row in data) == 3


def test_a_rehearsal_on_the_simulated_dialer_observes_every_check(engine: Engine) -> None:
    from callback.default_plugins.dialers import SimulatedDialer
    from callback.rehearsal import rehearse

    campaign = hotline_campaign(engine, dialer="simulated")
    shares = {"answer": 0.4, "machine": 0.3, "no_answer": 0.3, "busy": 0.0,
              "wrong_number": 0.0, "failed": 0.0, "seed": 5}  # fmt: skip
    report = rehearse(
        engine, campaign, lambda handler: SimulatedDialer(shares, handler, conversation=handler),
        NOW,
    )  # fmt: skip
    # The rehearsal ends with nothing left for the machine: only the testers' work is open.
    handed = [c["item"] for c in by_unit(engine).values() if c["item"].handed_to is not None]
    assert report.open_items == len(handed) > 0
    for unit, check in by_unit(engine).items():
        item, attempts, answers = check["item"], check["attempts"], check["response"].answers
        last = attempts[-1]
        # Never dialled after a hand-off, and never surveyed by voice.
        assert all(a.ended_at <= (item.handed_at or a.ended_at) for a in attempts), unit
        assert set(answers) <= {"answered", "answer_seconds", "answered_by"}, unit
        if last.outcome == "no-answer":
            assert answers == {"answered": False} and item.final_disposition == "1.1"
            assert len(attempts) == 2
        elif last.outcome == "machine":
            assert answers["answered_by"] == "machine" and item.final_disposition == "1.1"
        else:
            assert (last.outcome, answers["answered_by"], item.handed_to) == (
                "answered", "person", "agent",
            )  # fmt: skip
            assert item.state == "open"
        if answers["answered"]:
            ringing = datetime.fromisoformat(last.detail["ringing_at"])
            assert answers["answer_seconds"] == round((last.answered_at - ringing).total_seconds())


def test_checks_not_dialled_in_their_week_are_named_in_the_notes(engine: Engine) -> None:
    hotline_campaign(engine)
    planned = len(rows(engine, QueueItem))
    after = datetime(2026, 6, 20, tzinfo=UTC)

    def note(report_now: datetime) -> list[str]:
        notes = weekly_data(engine, report_week(date(2026, 6, 4)), report_now).notes
        return [n for n in notes if "were not dialled in it" in n]

    assert note(after) == [
        f"{planned:,} spot checks planned for the week were not dialled in it (a paused "
        "campaign, or no dispatcher running); each counts in the week it is first dialled"
    ]
    assert note(datetime(2026, 6, 1, tzinfo=UTC)) == []  # none was due yet


def test_checks_dialled_in_their_week_are_not_named(engine: Engine, checked) -> None:
    notes = weekly_data(engine, report_week(date(2026, 6, 4)), datetime(2026, 6, 20, tzinfo=UTC))
    assert not [n for n in notes.notes if "were not dialled in it" in n]
