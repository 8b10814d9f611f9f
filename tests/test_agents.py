"""Agents: who works which units, and an agent who leaves (deactivated, audited)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import rows, world

from callback.agents import activate_agent, deactivate_agent, get_agent, save_agent
from callback.claims import Scope, agent_scope, claim_next
from callback.errors import CallbackError
from callback.models import AuditEntry, CallAttempt, Campaign, QueueItem, Unit, table
from callback.workstation import Workstation, agent_work

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=SH)  # a Wednesday morning: the window is open


@pytest.fixture
def manual(engine: Engine) -> int:
    """Two cases of 区民政局 in a manual campaign; alice and bob work that unit."""
    campaign = world(engine, cases=2)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="manual"))
        conn.execute(
            sa.insert(table(Unit)).values(name="区税务局", kind="department", created_at=NOW)
        )
    save_agent(engine, "alice", ["区民政局"], "office")
    save_agent(engine, "bob", ["区民政局"], "office")
    return campaign


def audit(engine: Engine, action: str) -> list:
    with engine.connect() as conn:
        t = table(AuditEntry)
        return conn.execute(sa.select(t).where(t.c.action == action).order_by(t.c.id)).all()


def test_changing_units_is_audited_with_before_and_after(engine: Engine, manual: int) -> None:
    save_agent(engine, "alice", ["区税务局", "区民政局"], "office", name="李爱丽")
    save_agent(engine, "alice", ["区民政局", "区税务局"], "office")  # the same again
    entries = audit(engine, "agent.save")
    alice = [e for e in entries if e.after["login"] == "alice"]
    assert len(alice) == 2  # created, then changed; saving the same units again changes nothing
    assert alice[0].before is None
    assert alice[1].before == {"login": "alice", "name": None, "units": ["区民政局"]}
    assert alice[1].after == {"login": "alice", "name": "李爱丽", "units": ["区民政局", "区税务局"]}


def test_a_deactivated_agent_can_claim_nothing_until_activated(engine: Engine, manual: int) -> None:
    deactivate_agent(engine, "alice", "office", NOW, "left the team")
    assert get_agent(engine, "alice").active is False
    with pytest.raises(CallbackError, match="no active agent"):
        agent_scope(engine, "alice")
    (entry,) = audit(engine, "agent.deactivate")
    assert (entry.actor, entry.before, entry.after, entry.reason) == (
        "office", {"active": True}, {"active": False}, "left the team",
    )  # fmt: skip
    # Saving their units does not let them back in by the side door.
    assert save_agent(engine, "alice", ["区民政局"], "office").active is False

    activate_agent(engine, "alice", "office", NOW, "back from leave")
    assert agent_scope(engine, "alice").units
    (entry,) = audit(engine, "agent.activate")
    assert (entry.before, entry.after, entry.reason) == (
        {"active": False}, {"active": True}, "back from leave",
    )  # fmt: skip


def test_deactivation_refuses_what_it_cannot_do(engine: Engine, manual: int) -> None:
    with pytest.raises(CallbackError, match="no agent with login 'carol'"):
        deactivate_agent(engine, "carol", "office", NOW, "typo")
    with pytest.raises(CallbackError, match="say why"):
        deactivate_agent(engine, "alice", "office", NOW, "  ")
    assert get_agent(engine, "alice").active is True
    deactivate_agent(engine, "alice", "office", NOW, "left")
    with pytest.raises(CallbackError, match="already inactive"):
        deactivate_agent(engine, "alice", "office", NOW, "left")
    with pytest.raises(CallbackError, match="already active"):
        activate_agent(engine, "bob", "office", NOW, "why not")
    assert len(audit(engine, "agent.deactivate")) == 1


def test_their_appointments_go_to_colleagues_at_the_booked_time(
    engine: Engine, manual: int
) -> None:
    booked = NOW + timedelta(minutes=30)
    q = table(QueueItem)
    with engine.begin() as conn:
        first, second = conn.execute(sa.select(q.c.id).order_by(q.c.id)).scalars()
        conn.execute(
            sa.update(q).where(q.c.id == first)
            .values(appointment_at=booked, appointment_agent="alice", due_at=booked)
        )  # fmt: skip
        # A finished item keeps its history as it was.
        conn.execute(
            sa.update(q).where(q.c.id == second)
            .values(appointment_at=booked, appointment_agent="alice", state="finished")
        )  # fmt: skip
    bob = Scope(units=agent_scope(engine, "bob").units)
    at = booked + timedelta(minutes=1)
    assert claim_next(engine, "bob", bob, at) is None  # alice's, while her reserve runs

    done = deactivate_agent(engine, "alice", "office", NOW, "left the team")

    assert (done.appointments_freed, done.holding) == (1, 0)
    with engine.connect() as conn:
        items = conn.execute(sa.select(q).order_by(q.c.id)).all()
    assert [i.appointment_agent for i in items] == [None, "alice"]
    assert items[0].appointment_at is not None  # still booked, at the time the citizen chose
    (entry,) = audit(engine, "queue_item.appointment_agent")
    assert (entry.entity_id, entry.case_id) == (first, items[0].case_id)
    assert entry.before == {"appointment_agent": "alice"}
    assert entry.after == {"appointment_agent": None}
    assert entry.reason == "agent alice deactivated: left the team"
    claim = claim_next(engine, "bob", bob, at)
    assert claim is not None and claim.item_id == first and claim.appointment


def test_a_case_in_hand_is_counted_and_left_to_record(engine: Engine, manual: int) -> None:
    claim = claim_next(engine, "alice", Scope(units=agent_scope(engine, "alice").units), NOW)
    assert claim is not None
    done = deactivate_agent(engine, "alice", "office", NOW, "left the team")
    assert done.holding == 1
    held = {item.id: item.held_by for item in rows(engine, QueueItem)}
    assert held[claim.item_id] == "alice"  # hers until she records it or the lease runs out


class Keys:
    """A terminal that types ``keys`` and runs ``between`` when asked for the next case."""

    def __init__(self, keys: str, between) -> None:
        self.keys = list(keys)
        self.between = between
        self.said: list[str] = []

    def key(self, prompt: str, keys: str) -> str:
        if prompt.startswith("[Enter] 下一个"):
            self.between()
        return self.keys.pop(0)

    def line(self, prompt: str) -> str:
        return ""

    def say(self, text: str) -> None:
        self.said.append(text)


def station(engine: Engine, terminal: Keys) -> Workstation:
    return Workstation(engine, "alice", agent_work(engine, "alice"), terminal, SH, lambda: NOW)


def test_an_open_workstation_stops_when_its_agent_is_deactivated(
    engine: Engine, manual: int
) -> None:
    terminal = Keys("db\r", lambda: deactivate_agent(engine, "alice", "office", NOW, "left"))
    assert station(engine, terminal).run() == 1
    assert len(rows(engine, CallAttempt)) == 1  # the case in hand was recorded; no second one
    assert any("不能继续领取回访对象" in line for line in terminal.said)
    assert all(item.held_by is None for item in rows(engine, QueueItem))


def test_an_open_workstation_follows_a_change_of_units(engine: Engine, manual: int) -> None:
    terminal = Keys("db\r", lambda: save_agent(engine, "alice", ["区税务局"], "office"))
    assert station(engine, terminal).run() == 1
    assert len(rows(engine, CallAttempt)) == 1  # the other 区民政局 case is no longer hers
    assert terminal.said[-1] == "现在没有到期的回访对象。"


def test_the_cli_deactivates_and_activates(cli, engine: Engine, manual: int) -> None:
    refused = cli("agents", "deactivate", "alice")
    assert refused.exit_code == 2 and "--reason" in refused.output
    result = cli("agents", "deactivate", "alice", "--reason", "left the team")
    assert result.exit_code == 0, result.output
    assert "alice deactivated" in result.output
    listed = cli("agents", "list", "--json")
    assert '"active": false' in listed.output
    working = cli("--now", "2026-06-10 10:00", "--actor", "alice", "agent", input="q")
    assert working.exit_code == 1 and "no active agent with login 'alice'" in working.output
    saved = cli("agents", "add", "alice", "--unit", "区民政局")
    assert "callback agents activate alice" in saved.output
    again = cli("agents", "activate", "alice", "--reason", "rehired")
    assert again.exit_code == 0 and "active again" in again.output
    working = cli("--now", "2026-06-10 10:00", "--actor", "alice", "agent", input="q")
    assert working.exit_code == 0, working.output
