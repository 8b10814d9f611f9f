"""End to end: a hotline spot-check campaign dialled by `callback run` over the SIP dialer.

Three units' consultation hotlines sit behind one sipp (scenarios/hotlines_by_number.xml):
one rings and is answered, one is busy, one rings until our ring timeout. The campaign is
created, sampled and run with the real commands on SQLite, or on PostgreSQL when
CALLBACK_TEST_DATABASE_URL is set; the dispatcher is a `callback run` process, as in
test_sip_e2e.py. The machine never surveys a hotline by voice: it records what the call's SIP
events say (answered, seconds from the first ring to the answer), completes the checks that
need nobody, and hands the answered one to a tester, for good.

SIP has no answering-machine detection: a 200 OK looks the same whoever picks up, and the SIP
dialer says at once that it cannot tell (``CallEvent.answered_by`` is "unknown"). So an
answered hotline is recorded without "answered_by", the machine hangs up straight away instead
of holding a clerk on a silent line for a verdict that never comes, and a tester says who
answered; a machine-answered hotline cannot be told apart here, and no test pretends otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from test_sip_e2e import (
    database,
    outside_settings,
    rows,
    start_run,
    stop_run,
    wait_for,
    write_config,
)

from callback.cli import cli
from callback.db import create_engine
from callback.hotline_checks import HANDED_UNTOLD, LISTEN_SECONDS
from callback.models import (
    AttemptState,
    AuditEntry,
    CallAttempt,
    Hotline,
    QueueItem,
    Response,
    SurveySession,
    Unit,
    table,
)
from callback.synthetic import write_district

from sipp_support import (
    Sipp,
    needs_sipp,
    received_invites,
    sipp_messages,
    start_sipp,
    stop_sipp,
)

pytestmark = [needs_sipp, pytest.mark.sipp]

#: Monday 8 October 2018 (a working day after National Day), 16:59 in Hangzhou: sampled now, a
#: one-day campaign has one minute of office hours (14:00-17:00) left, so every check is
#: planned at 16:59 and due as `callback run` starts.
NOW = "2018-10-08 16:59"
#: The next working morning: past every retry delay, inside office hours.
NEXT_MORNING_AT = datetime(2018, 10, 9, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NEXT_MORNING = f"{NEXT_MORNING_AT:%Y-%m-%d %H:%M}"
#: What each hotline does when called, and its number as the unit publishes it.
HOTLINES = {
    "person": "0571-8800 1111",
    "busy": "0571-8800 2222",
    "no_answer": "0571-8800 3333",
}
BEHAVIOURS = tuple(HOTLINES)
#: Seconds the answered hotline takes to start ringing (100 Trying to 180 Ringing), then rings
#: before its 200 OK.
TRYING_FOR = 1.0
RINGS_FOR = 1.0
#: Seconds our dialer lets a hotline ring before it cancels, counted from the INVITE: longer
#: than the answered hotline takes to answer.
RING_TIMEOUT = 3
#: The calling rules: the design's office hours, and two attempts a number, of which the
#: machine keeps one for a tester; so the machine's first try is its last, and a busy or
#: unanswered hotline is concluded at once instead of called again later.
RULES = """\
max_attempts_per_number = 2
windows = [{ start = "09:00", end = "11:30" }, { start = "14:00", end = "17:00" }]
"""
#: Seconds the whole campaign may take once `callback run` starts (it takes about 4).
CAMPAIGN_TIMEOUT = 30.0


def callback(database_url: str, config: Path, now: str, *args: str) -> str:
    """Run a callback command in this process at ``now``; return its output."""
    result = CliRunner(env={name: None for name in outside_settings()}).invoke(
        cli,
        ["--database", database_url, "--config", str(config), "--actor", "office", "--now", now,
         *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def plan_checks(database_url: str, engine: Engine, tmp: Path) -> dict[str, str]:
    """Give three units of a synthetic district a hotline each and plan one check of each, on
    the sip dialer; return each behaviour's hotline in E.164, as stored and dialled."""
    config = tmp / "defaults.toml"  # not ./callback.toml, whatever the tests run in
    config.write_text("", encoding="utf-8")
    rules = tmp / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    frame = tmp / "cases.csv"
    write_district(frame, 30, seed=5)  # the units: hotlines are added to known units only
    callback(database_url, config, NOW, "db", "upgrade")
    callback(database_url, config, NOW, "cases", "import", str(frame))
    with engine.connect() as conn:
        units = conn.execute(
            sa.select(table(Unit).c.name).order_by(table(Unit).c.id).limit(len(HOTLINES))
        ).scalars()
        unit_of = dict(zip(BEHAVIOURS, units, strict=True))
    for behaviour, number in HOTLINES.items():
        added = callback(database_url, config, NOW, "hotlines", "add", unit_of[behaviour], number)
        assert "Added." in added
    callback(database_url, config, NOW, "campaign", "create", "spot", "--hotlines",
             "--from", "2018-10-08", "--to", "2018-10-08", "--calls-per-week", "1",
             "--seed", "7", "--dialer", "sip", "--rules", str(rules))  # fmt: skip
    report = callback(database_url, config, NOW, "campaign", "sample", "spot")
    assert f"Planned {len(HOTLINES)} spot checks of {len(HOTLINES)} hotlines" in report
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(table(Unit).c.name, table(Hotline).c.e164).join(
                table(Unit), table(Unit).c.id == table(Hotline).c.unit_id
            )
        ).all()
    behaviour_of = {unit: behaviour for behaviour, unit in unit_of.items()}
    return {behaviour_of[row.name]: row.e164 for row in found}


@dataclass
class Checks:
    """What `callback run` left of the campaign, by the hotline's behaviour."""

    numbers: dict[str, str]
    attempts: list[Any]
    by_behaviour: dict[str, Any]
    items: dict[int, Any]
    responses: dict[int, Any]
    sessions: dict[int, Any]
    audit: list[Any]
    #: The numbers sipp was called at, by SIP Call-ID; its exit status (0: all as scripted).
    invites: dict[str, str]
    #: Seconds from each answer sipp sent (200 OK to the INVITE) to our BYE, by Call-ID.
    held: dict[str, float]
    sipp_status: int
    exit_status: int
    log: str
    #: The prompts the SIP dialer rendered to play (its prompt_cache).
    prompts: list[str]
    #: What `callback run --once` said the next morning, and the attempts and items after it.
    next_morning: str = ""
    attempts_after: list[Any] = field(default_factory=list)
    items_after: dict[int, Any] = field(default_factory=dict)

    def item(self, behaviour: str) -> Any:
        return self.items[self.by_behaviour[behaviour].queue_item_id]

    def audit_of(self, behaviour: str) -> list[Any]:
        item_id = self.by_behaviour[behaviour].queue_item_id
        return [e for e in self.audit if e.entity == "queue_items" and e.entity_id == item_id]


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checks]:
    """Plan the checks, run `callback run` until sipp has had every call, then stop it."""
    tmp = tmp_path_factory.mktemp("hotlines")
    with database(tmp) as url:
        engine = create_engine(url)
        try:
            yield run_checks(url, engine, tmp)
        finally:
            engine.dispose()


def run_checks(url: str, engine: Engine, tmp: Path) -> Checks:
    numbers = plan_checks(url, engine, tmp)
    assert sorted(numbers) == sorted(BEHAVIOURS)
    fill = {name.upper(): numbers[name].lstrip("+") for name in BEHAVIOURS}
    pauses = {"TRYING_MS": TRYING_FOR, "ANSWER_MS": RINGS_FOR}
    fill |= {name: f"{seconds * 1000:.0f}" for name, seconds in pauses.items()}
    peer = start_sipp(
        tmp / "sipp", "hotlines_by_number.xml", calls=len(HOTLINES), fill=fill,
        timeout=CAMPAIGN_TIMEOUT + 10,
    )  # fmt: skip
    log = tmp / "run.log"

    def report() -> str:
        attempts = [(a.number, a.state, a.outcome) for a in rows(engine, CallAttempt)]
        return f"attempts {attempts}\n--- callback run\n{log.read_text()}\n{peer.messages()}"

    def all_concluded() -> bool:
        attempts = rows(engine, CallAttempt)
        handed = [i for i in rows(engine, QueueItem) if i.handed_to is not None]
        ended = len(attempts) >= len(HOTLINES) and all(a.ended_at for a in attempts)
        return ended and bool(handed)

    try:
        config = write_config(tmp, peer, ring_timeout=RING_TIMEOUT, recorded=False)
        run = start_run(url, config, log, now=NOW)
        try:
            wait_for(all_concluded, CAMPAIGN_TIMEOUT, report)
            # sipp exits once it has seen its calls through.
            sipp_status = peer.wait(CAMPAIGN_TIMEOUT)
        finally:
            exit_status = stop_run(run)
    finally:
        stop_sipp(peer)
    attempts = rows(engine, CallAttempt)
    checks = Checks(
        numbers=numbers,
        attempts=attempts,
        by_behaviour={_behaviour(numbers, a.number): a for a in attempts},
        items={i.id: i for i in rows(engine, QueueItem)},
        responses={r.queue_item_id: r for r in rows(engine, Response)},
        sessions={s.queue_item_id: s for s in rows(engine, SurveySession)},
        audit=rows(engine, AuditEntry),
        invites=received_invites(peer),
        held=held_seconds(peer),
        sipp_status=sipp_status,
        exit_status=exit_status,
        log=report(),
        prompts=sorted(p.name for p in (tmp / "prompts").rglob("*") if p.is_file()),
    )
    # The next morning every retry delay is over and the dispatcher dials what is due (a call
    # would find no sipp and fail, but it would be an attempt).
    checks.next_morning = callback(url, config, NEXT_MORNING, "run", "--once")
    checks.attempts_after = rows(engine, CallAttempt)
    checks.items_after = {i.id: i for i in rows(engine, QueueItem)}
    return checks


def held_seconds(peer: Sipp) -> dict[str, float]:
    """Seconds from the answer sipp sent to the BYE it received, by Call-ID, from its log."""
    answered: dict[str, datetime] = {}
    held: dict[str, float] = {}
    for message in sipp_messages(peer):
        call_id, line = message.header("Call-ID"), message.start_line
        if not message.received and line.startswith("SIP/2.0 200"):
            if message.header("CSeq").endswith(" INVITE"):
                answered.setdefault(call_id, message.at)
        elif message.received and line.startswith("BYE ") and call_id in answered:
            held[call_id] = (message.at - answered[call_id]).total_seconds()
    return held


def _behaviour(numbers: dict[str, str], number: str) -> str:
    (behaviour,) = [name for name, e164 in numbers.items() if e164 == number]
    return behaviour


def test_each_hotline_is_dialled_once_by_callback_run_over_sip(checks: Checks) -> None:
    assert checks.sipp_status == 0, checks.log  # each call went as its branch scripts it
    assert len(checks.invites) == len(checks.attempts) == len(HOTLINES), checks.log
    assert sorted(checks.invites.values()) == sorted(checks.numbers.values())
    assert set(checks.by_behaviour) == set(BEHAVIOURS)  # one attempt of each hotline
    for attempt in checks.attempts:
        # The attempt is the call sipp had: same SIP Call-ID, same number.
        assert checks.invites[attempt.detail["sip_call_id"]] == attempt.number
        assert (attempt.state, attempt.dialer) == (AttemptState.ENDED, "sip")
        assert attempt.placed_at is not None and attempt.provider_call_id
        assert attempt.created_at <= attempt.placed_at <= attempt.ended_at
    assert len({item.hotline_id for item in checks.items.values()}) == len(HOTLINES)
    for item in checks.items.values():
        assert (item.attempts, item.held_by) == (1, None)
    assert checks.exit_status == 0, checks.log
    assert f"stopped; {len(HOTLINES)} calls placed" in checks.log
    assert "Traceback" not in checks.log


def test_an_answered_hotline_is_observed_and_handed_to_a_tester(checks: Checks) -> None:
    attempt, item = checks.by_behaviour["person"], checks.item("person")
    detail = attempt.detail
    assert (attempt.outcome, attempt.disposition) == ("answered", "2.36"), detail
    assert detail["handed_to"] == "agent"
    # The machine answered the call with one silent turn and was still listening when the
    # clerk hung up: it spoke no prompt at all (nothing was rendered to play).
    # The answer concluded the machine's part: the dialer cannot tell who answered, so it
    # hands the check on at once and hangs up without a word (nothing rendered to play),
    # rather than holding the clerk for a detection verdict that SIP never gives.
    assert attempt.ended_at == attempt.answered_at, detail
    assert "hangup_reason" not in detail
    assert checks.prompts == []
    assert checks.held[detail["sip_call_id"]] < LISTEN_SECONDS / 2, checks.held
    # Seconds from the first ring (the 180) to the answer (the 200 OK), as sipp rang; not
    # from dialling, which took TRYING_FOR seconds longer.
    ringing = datetime.fromisoformat(detail["ringing_at"])
    assert attempt.created_at <= ringing <= attempt.answered_at
    rang = (attempt.answered_at - ringing).total_seconds()
    assert RINGS_FOR - 0.25 <= rang < RINGS_FOR + 0.75, detail
    dialled = (attempt.answered_at - attempt.created_at).total_seconds()
    assert round(dialled) > round(rang), detail
    response = checks.responses[item.id]
    # SIP has no answering-machine detection: who answered is left to the tester.
    assert response.answers == {"answered": True, "answer_seconds": round(rang)}
    assert detail["observed"] == response.answers
    assert (response.attempt_id, response.complete) == (attempt.id, False)
    assert response.rates["connected"] is None  # 接通率 waits for the tester's "answered_by"
    # Handed to a tester, for good, when the machine's call ended.
    assert (item.state, item.handed_to, item.held_by) == ("open", "agent", None)
    assert item.handed_at == attempt.ended_at
    assert item.final_disposition is None
    session = checks.sessions[item.id]
    assert (session.attempt_id, session.channel, session.status) == (attempt.id, "agent", "stopped")
    assert json.loads(session.state)["current"] == "answered_by"  # the tester's first question
    audit = [
        (e.action, e.actor, e.attempt_id, e.before, e.after) for e in checks.audit_of("person")
    ]
    reasons = {e.action: e.reason for e in checks.audit_of("person")}
    assert reasons["queue_item.hand_off"] == HANDED_UNTOLD  # not "answered by a person"
    assert ("hotline_check.observe", attempt.worker, attempt.id, None, response.answers) in audit
    hand_offs = [entry for entry in audit if entry[0] == "queue_item.hand_off"]
    assert hand_offs == [
        ("queue_item.hand_off", attempt.worker, attempt.id, {"handed_to": None},
         {"handed_to": "agent"}),
    ]  # fmt: skip


def completed_unanswered(checks: Checks, behaviour: str, outcome: str) -> dict[str, Any]:
    """Check what a hotline that was not answered left; return its attempt's detail."""
    attempt, item = checks.by_behaviour[behaviour], checks.item(behaviour)
    assert (attempt.outcome, attempt.disposition) == (outcome, "1.1"), attempt.detail
    assert attempt.answered_at is None
    response = checks.responses[item.id]
    assert response.answers == attempt.detail["observed"] == {"answered": False}
    assert (response.attempt_id, response.complete) == (attempt.id, True)
    assert response.rates["connected"] is False  # counts against 接通率
    # Completed by the machine on its one try: nothing left for a tester.
    assert (item.state, item.final_disposition) == ("finished", "1.1")
    assert (item.handed_to, item.handed_at, item.due_at) == (None, None, None)
    assert checks.sessions[item.id].status == "finished"
    audit = [(e.action, e.actor, e.attempt_id, e.after) for e in checks.audit_of(behaviour)]
    assert ("hotline_check.observe", attempt.worker, attempt.id, {"answered": False}) in audit
    assert "queue_item.hand_off" not in [entry[0] for entry in audit]
    return dict(attempt.detail)


def test_a_busy_hotline_is_completed_by_the_machine_as_not_connected(checks: Checks) -> None:
    detail = completed_unanswered(checks, "busy", "busy")
    assert (detail["sip_status"], detail["ending"]) == (486, "peer")
    assert "ringing_at" not in detail  # it never rang


def test_a_hotline_ringing_out_is_completed_by_the_machine_as_not_connected(
    checks: Checks,
) -> None:
    detail = completed_unanswered(checks, "no_answer", "no-answer")
    assert detail["ring_timeout"] is True  # our CANCEL after ring_timeout
    assert detail["ring_seconds"] >= RING_TIMEOUT
    assert "ringing_at" in detail


def test_the_dispatcher_never_dials_a_handed_off_check_again(checks: Checks) -> None:
    assert "placed 0 calls" in checks.next_morning, checks.next_morning
    assert [a.id for a in checks.attempts_after] == [a.id for a in checks.attempts]
    handed = checks.items_after[checks.item("person").id]
    assert (handed.state, handed.handed_to, handed.attempts) == ("open", "agent", 1)
    # The calling rules leave it an attempt and made it due again this morning: only the
    # hand-off kept the dispatcher from dialling it.
    assert handed.due_at is not None
    assert handed.due_at <= NEXT_MORNING_AT + timedelta(minutes=1)
