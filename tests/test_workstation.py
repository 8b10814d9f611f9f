"""The agent's terminal workstation, driven with typed keys through whole cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import rows, world

from callback.agents import save_agent
from callback.campaign_states import pause_campaign
from callback.models import (
    CallAttempt,
    Campaign,
    Contact,
    Correction,
    QueueItem,
    Response,
    table,
)
from callback.workstation import parse_when

SH = ZoneInfo("Asia/Shanghai")
AT = "2026-06-10 10:00"  # a Wednesday morning: the calling window is open


@pytest.fixture
def manual(engine: Engine) -> int:
    campaign = world(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="manual"))
    save_agent(engine, "alice", ["区民政局"], "office")
    return campaign


def run_agent(cli, keys: str, *args: str):
    return cli("--now", AT, "--actor", "alice", "agent", *args, input=keys)


def test_a_whole_interview_is_recorded(cli, engine: Engine, manual: int) -> None:
    # dial, answered, 本人, it is my case, once, satisfied, no suggestion, policy, recontact, quit
    result = run_agent(cli, "da1112211q")
    assert result.exit_code == 0, result.output
    assert "139****5671" in result.output  # masked on the card
    assert "139 1234 5671" in result.output  # whole while dialling
    assert "1.1" in result.output
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.worker, attempt.dialer, attempt.disposition) == ("alice", "manual", "1.1")
    (response,) = rows(engine, Response)
    assert response.answers["trips"] == 1 and response.satisfied is True
    assert rows(engine, QueueItem)[0].final_disposition == "1.1"


def test_the_extension_in_the_frame_is_shown_to_key_after_the_answer(
    cli, engine: Engine, manual: int
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(table(Contact)).values(extension="8001"))
    result = run_agent(cli, "dbq")  # dial, busy, quit
    assert result.exit_code == 0, result.output
    assert "139****5671 转 8001" in result.output  # the number masked, the extension not
    assert "请拨打 139 1234 5671 转 8001" in result.output


def test_a_wrong_person_gives_a_new_number(cli, engine: Engine, manual: int) -> None:
    # dial, answered, "not them but knows them", [Enter] then the number, then goodbye, quit
    result = run_agent(cli, "da3\r13587654321\n\rq")
    assert result.exit_code == 0, result.output
    (attempt,) = rows(engine, CallAttempt)
    assert attempt.disposition == "2.291"
    kinds = {c.kind: c.proposed for c in rows(engine, Correction)}
    assert kinds["phone"]["phone"] == "+8613587654321"
    assert "contact" in kinds
    assert rows(engine, Contact)[0].verification == "wrong_number"


def test_outcomes_without_an_interview(cli, engine: Engine, manual: int) -> None:
    result = run_agent(cli, "db\rq")  # dial, busy, next: nothing due (retry later), done
    assert result.exit_code == 0, result.output
    assert rows(engine, CallAttempt)[0].disposition == "3.12"
    item = rows(engine, QueueItem)[0]
    assert item.state == "open" and item.held_by is None and item.due_at is not None


def test_an_appointment_is_booked_for_this_agent(cli, engine: Engine, manual: int) -> None:
    result = run_agent(cli, "da1p明天 15:30\nq")
    assert result.exit_code == 0, result.output
    item = rows(engine, QueueItem)[0]
    assert item.appointment_at == datetime(2026, 6, 11, 15, 30, tzinfo=SH)
    assert item.appointment_agent == "alice"
    assert rows(engine, CallAttempt)[0].disposition == "2.35"


def test_an_appointment_outside_the_window_is_refused(cli, engine: Engine, manual: int) -> None:
    result = run_agent(cli, "da1p明天 22:00\nhq")  # refused, then the call is hung up
    assert "不能预约" in result.output
    assert rows(engine, QueueItem)[0].appointment_at is None


def test_quitting_mid_call_leaves_nothing_held(cli, engine: Engine, manual: int) -> None:
    result = run_agent(cli, "da1")  # the input ends (as Ctrl-C would) during the interview
    assert result.exit_code == 0
    (attempt,) = rows(engine, CallAttempt)
    assert attempt.state == "ended" and attempt.outcome == "failed"
    item = rows(engine, QueueItem)[0]
    assert item.held_by is None and item.state == "open"


def test_quitting_before_dialling_releases_the_case(cli, engine: Engine, manual: int) -> None:
    result = run_agent(cli, "q")
    assert result.exit_code == 0
    assert rows(engine, CallAttempt) == []
    assert rows(engine, QueueItem)[0].held_by is None


def test_an_agent_sees_only_their_units(cli, engine: Engine, manual: int) -> None:
    save_agent(engine, "bob", [], "office")
    result = cli("--now", AT, "--actor", "bob", "agent", input="q")
    assert "没有到期" in result.output
    unknown = cli("--now", AT, "--actor", "carol", "agent", input="q")
    assert unknown.exit_code == 1 and "callback agents add carol" in unknown.output


def test_nothing_is_due_out_of_hours(cli, engine: Engine, manual: int) -> None:
    result = cli("--now", "2026-06-10 21:00", "--actor", "alice", "agent", input="q")
    assert "没有到期" in result.output
    assert rows(engine, CallAttempt) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天 10:00", datetime(2026, 6, 11, 10, 0)),
        ("tomorrow 10", datetime(2026, 6, 11, 10, 0)),
        ("14:30", datetime(2026, 6, 10, 14, 30)),
        ("9:00", datetime(2026, 6, 11, 9, 0)),  # already past today: tomorrow
        ("下午3点", datetime(2026, 6, 10, 15, 0)),
        ("后天 9点30", datetime(2026, 6, 12, 9, 30)),
        ("2026-06-15 09:30", datetime(2026, 6, 15, 9, 30)),
        ("+2h", datetime(2026, 6, 10, 12, 0)),
    ],
)
def test_appointment_times_as_agents_type_them(text: str, expected: datetime) -> None:
    now = datetime(2026, 6, 10, 10, 0, tzinfo=SH).astimezone(UTC)
    assert parse_when(text, now, SH) == expected.replace(tzinfo=SH)


def test_an_unreadable_time_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_when("whenever", datetime.now(UTC) - timedelta(days=1), SH)


def _tmux(*args: str) -> str:
    import subprocess

    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(session: str, text: str, seconds: float = 15) -> str:
    import time

    deadline = time.monotonic() + seconds
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


def test_the_workstation_in_a_real_terminal_under_tmux(
    database_url: str, engine: Engine, manual: int, tmp_path
) -> None:
    import shlex
    import shutil
    import sys

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    session = f"callback-test-{manual}-{id(engine) % 10000}"
    command = shlex.join([sys.executable, "-m", "callback", "--database", database_url,
                          "--now", AT, "--actor", "alice", "agent"])  # fmt: skip
    _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command + "; sleep 30")
    try:
        _wait_for(session, "[d] 拨打")
        _tmux("send-keys", "-t", session, "d")  # one key, no Enter
        _wait_for(session, "请拨打 139 1234 5671")
        _tmux("send-keys", "-t", session, "a")
        _wait_for(session, "本人")
        _tmux("send-keys", "-t", session, "C-c")
        _wait_for(session, "已退出")
    finally:
        _tmux("kill-session", "-t", session)
    (attempt,) = rows(engine, CallAttempt)
    assert attempt.outcome == "failed" and attempt.state == "ended"
    assert rows(engine, QueueItem)[0].held_by is None


def test_an_agent_is_told_why_a_paused_campaign_gives_nothing(
    cli, engine: Engine, manual: int
) -> None:
    pause_campaign(engine, "june", "office", datetime(2026, 6, 10, 1, tzinfo=UTC), "脚本有误")
    result = run_agent(cli, "q")
    assert result.exit_code == 0, result.output
    assert "现在没有到期的回访对象。" in result.output
    assert "回访任务 june 已暂停：脚本有误" in result.output
    assert rows(engine, CallAttempt) == []
    save_agent(engine, "bob", [], "office")
    other = cli("--now", AT, "--actor", "bob", "agent", input="q")
    assert "已暂停" not in other.output  # not a campaign of any unit bob works for
