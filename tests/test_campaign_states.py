"""Pausing, resuming and closing a campaign: nothing dialled while paused; every step audited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import NOW, rows, world
from test_dispatch import FakeClock, RecordingDialer, automated
from test_hotline_checks import hotline_campaign

from callback import migrate
from callback.attempts import begin_attempt
from callback.campaign_states import (
    close_campaign,
    edit_campaign,
    last_pause,
    pause_campaign,
    resume_campaign,
)
from callback.campaigns import CampaignError
from callback.claims import NotCallable, Scope, claim_next
from callback.config import Settings
from callback.dispatch import Dispatcher
from callback.errors import CallbackError
from callback.models import AuditEntry, CallAttempt, Campaign, QueueItem, table
from callback.report_weeks import report_week
from callback.weekly import weekly_data

A = "+8613912345671"


def status(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(table(Campaign).c.status)).scalar_one()


def audit(engine: Engine) -> list:
    return [e for e in rows(engine, AuditEntry) if e.entity == "campaign"]


def test_a_paused_campaign_is_not_claimed_until_resumed(engine: Engine) -> None:
    campaign = world(engine, cases=2)
    items = rows(engine, QueueItem)
    pause_campaign(engine, "june", "office", NOW, "脚本第3题有误")
    assert status(engine) == "paused"
    assert claim_next(engine, "w", Scope(), NOW) is None
    assert rows(engine, QueueItem) == items  # the sample, its order and weights untouched
    assert last_pause(engine, campaign) is not None
    assert last_pause(engine, campaign).reason == "脚本第3题有误"

    resume_campaign(engine, campaign, "office", NOW, "脚本已改正")
    assert status(engine) == "sampled"
    assert claim_next(engine, "w", Scope(), NOW) is not None
    pause, resume = audit(engine)
    assert (pause.action, pause.actor, pause.before, pause.after, pause.reason) == (
        "campaign.pause", "office", {"status": "sampled"}, {"status": "paused"}, "脚本第3题有误",
    )  # fmt: skip
    assert (resume.action, resume.before, resume.after, resume.reason) == (
        "campaign.resume", {"status": "paused"}, {"status": "sampled"}, "脚本已改正",
    )  # fmt: skip


def test_a_case_claimed_before_the_pause_is_not_dialled_after_it(engine: Engine) -> None:
    world(engine)
    claim = claim_next(engine, "w", Scope(), NOW)
    assert claim is not None
    pause_campaign(engine, "june", "office", NOW, "complaint")
    with pytest.raises(NotCallable, match="the campaign is paused"):
        begin_attempt(engine, claim, A, "simulated", NOW)
    assert rows(engine, CallAttempt) == []


def test_what_cannot_be_paused_or_resumed_is_refused(engine: Engine) -> None:
    campaign = world(engine)
    with pytest.raises(CampaignError, match="say why"):
        pause_campaign(engine, campaign, "office", NOW, " ")
    with pytest.raises(CampaignError, match="is sampled, not paused"):
        resume_campaign(engine, campaign, "office", NOW)
    pause_campaign(engine, campaign, "office", NOW, "holiday moved")
    with pytest.raises(CampaignError, match="already paused"):
        pause_campaign(engine, campaign, "office", NOW, "again")
    with pytest.raises(CampaignError, match="no campaign 'july'"):
        pause_campaign(engine, "july", "office", NOW, "typo")
    # Closing a paused campaign is allowed, and ends it for good.
    close_campaign(engine, campaign, "office", NOW, "period over")
    assert status(engine) == "closed"
    with pytest.raises(CampaignError, match="is closed: only a sampled campaign"):
        pause_campaign(engine, campaign, "office", NOW, "why")
    with pytest.raises(CampaignError, match="is closed, not paused"):
        resume_campaign(engine, campaign, "office", NOW)
    close = audit(engine)[-1]
    assert (close.action, close.before, close.after, close.reason) == (
        "campaign.close", {"status": "paused"}, {"status": "closed"}, "period over",
    )  # fmt: skip
    assert len(audit(engine)) == 2


def test_a_running_dispatcher_lets_go_of_a_paused_campaign_and_takes_up_a_resumed_one(
    engine: Engine,
) -> None:
    automated(engine, cases=3)
    pause_campaign(engine, "june", "office", NOW, "script fault")
    clock = FakeClock(NOW)
    fake = RecordingDialer({}, lambda event: None, clock)  # type: ignore[arg-type]
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"recording": fake},
                   sleep=clock.sleep, lines_every=0.0)  # fmt: skip
    fake.events = d.handler
    assert d.lines == []  # started while the only campaign was paused: nothing to dial yet
    d.tick()
    assert fake.started == []

    resume_campaign(engine, "june", "office", NOW)
    d.tick()
    assert len(fake.started) == 3  # taken up without a restart

    fake.end_all()  # busy: each is due again later
    clock.at += timedelta(minutes=30)  # past their retry time, inside the window
    pause_campaign(engine, "june", "office", clock.at, "complaint")
    d.tick()
    (line,) = d.lines
    assert line.campaigns == frozenset()  # let go; the line stays for calls still reporting
    assert len(fake.started) == 3


def test_a_dispatcher_named_a_paused_campaign_waits_for_it(engine: Engine) -> None:
    automated(engine, cases=1)
    pause_campaign(engine, "june", "office", NOW, "why")
    assert Dispatcher(engine, Settings(), "d", FakeClock(NOW), campaigns=["june"]).lines == []
    close_campaign(engine, "june", "office", NOW)
    with pytest.raises(CallbackError, match="no sampled campaign named june"):
        Dispatcher(engine, Settings(), "d", FakeClock(NOW), campaigns=["june"])


def test_the_schema_refuses_an_unknown_status_and_a_downgrade_keeps_paused_ones(
    engine: Engine,
) -> None:
    world(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="frozen"))
    pause_campaign(engine, "june", "office", NOW, "why")
    with pytest.raises(RuntimeError, match="june are paused"):
        migrate.downgrade(engine, "0009")
    assert migrate.current(engine) == migrate.head()
    resume_campaign(engine, "june", "office", NOW)
    migrate.downgrade(engine, "0009")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="paused"))
    migrate.upgrade(engine)
    pause_campaign(engine, "june", "office", NOW, "after the round trip")
    assert status(engine) == "paused"


def test_the_cli_pauses_shows_and_resumes(cli, engine: Engine) -> None:
    world(engine)
    refused = cli("campaign", "pause", "june")
    assert refused.exit_code == 2 and "--reason" in refused.output
    paused = cli("--now", "2026-06-10 10:00", "campaign", "pause", "june", "--reason", "投诉核查")
    assert paused.exit_code == 0, paused.output
    assert "callback campaign resume june" in paused.output
    shown = cli("campaign", "show", "june")
    assert "status paused" in shown.output
    assert "paused at 2026-06-10 10:00 by tester: 投诉核查" in shown.output
    queue = cli("queue", "status", "--campaign", "june", "--at", "2026-06-10 10:00")
    assert queue.exit_code == 0, queue.output
    assert "区民政局  paused" in queue.output
    again = cli("campaign", "resume", "june")
    assert again.exit_code == 0 and "Resumed campaign june" in again.output
    assert "paused at" not in cli("campaign", "show", "june").output


def test_the_weekly_report_says_when_and_why_a_campaign_was_paused(engine: Engine) -> None:
    world(engine)
    pause_campaign(engine, "june", "office", NOW, "脚本有误")  # Wednesday 10:00 in Shanghai
    resume_campaign(engine, "june", "office", NOW + timedelta(hours=23))  # Thursday 09:00

    def notes(day: date) -> list[str]:
        report = weekly_data(engine, report_week(day), NOW + timedelta(days=30))
        return [n for n in report.notes if n.startswith("june: paused")]

    assert notes(date(2026, 6, 4)) == [
        "june: paused 2026-06-10 10:00 by office (脚本有误); still paused at the end of the week"
    ]
    assert notes(date(2026, 6, 11)) == [
        "june: paused since 2026-06-10 10:00 by office (脚本有误), resumed 2026-06-11 09:00"
    ]
    assert notes(date(2026, 6, 18)) == []


def test_a_deadline_moved_is_audited_and_the_queue_follows_it(engine: Engine) -> None:
    campaign = world(engine)
    assert edit_campaign(engine, "june", "office", NOW, "区里提前收尾",
                         deadline=NOW - timedelta(hours=1)) == ["deadline"]  # fmt: skip
    (item,) = rows(engine, QueueItem)
    assert (item.due_at, item.wait_reason) == (None, "deadline")
    assert claim_next(engine, "w", Scope(), NOW) is None

    later = NOW + timedelta(days=30)
    assert edit_campaign(engine, campaign, "office", NOW, "延期到7月", deadline=later) == [
        "deadline"
    ]
    (item,) = rows(engine, QueueItem)
    assert item.due_at is not None
    assert claim_next(engine, "w", Scope(), NOW) is not None
    moved = [e for e in audit(engine) if e.action == "campaign.edit"]
    assert [(e.before, e.after, e.reason) for e in moved][1] == (
        {"deadline": (NOW - timedelta(hours=1)).isoformat()},
        {"deadline": later.isoformat()},
        "延期到7月",
    )


def test_rules_are_checked_before_anything_is_stored(engine: Engine) -> None:
    world(engine)
    with pytest.raises(CampaignError, match="max_attempts_per_cse"):
        edit_campaign(engine, "june", "office", NOW, "typo", rules={"max_attempts_per_cse": 3})
    assert edit_campaign(engine, "june", "office", NOW, "fewer calls",
                         rules={"max_attempts_per_case": 2}) == ["rules"]  # fmt: skip
    (edit,) = [e for e in audit(engine) if e.action == "campaign.edit"]
    assert edit.before["rules"]["max_attempts_per_case"] != 2
    assert edit.after["rules"]["max_attempts_per_case"] == 2
    assert edit_campaign(engine, "june", "office", NOW, "same again",
                         rules={"max_attempts_per_case": 2}) == []  # fmt: skip
    assert len([e for e in audit(engine) if e.action == "campaign.edit"]) == 1
    close_campaign(engine, "june", "office", NOW)
    with pytest.raises(CampaignError, match="is closed"):
        edit_campaign(engine, "june", "office", NOW, "late", title="x")


def test_the_cli_edits(cli, engine: Engine) -> None:
    world(engine)
    both = cli("campaign", "edit", "june", "--deadline", "2026-07-31", "--no-deadline",
               "--reason", "x")  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.output
    nothing = cli("campaign", "edit", "june", "--reason", "x")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.output
    done = cli("campaign", "edit", "june", "--deadline", "2026-07-31", "--title", "六月回访",
               "--reason", "延期")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "deadline, title changed" in done.output
    shown = cli("campaign", "show", "june").output
    assert "deadline 2026-07-31 23:59" in shown and "六月回访" in shown


def test_default_rules_of_a_spot_check_campaign_are_its_office_hours(engine: Engine) -> None:
    campaign = hotline_campaign(engine)
    with engine.connect() as conn:
        planned = conn.execute(sa.select(table(Campaign).c.rules)).scalar_one()
    edit_campaign(engine, campaign, "office", NOW, "one try", rules={"max_attempts_per_case": 1})
    edit_campaign(engine, campaign, "office", NOW, "back to the plan", rules=None)
    with engine.connect() as conn:
        assert conn.execute(sa.select(table(Campaign).c.rules)).scalar_one() == planned
