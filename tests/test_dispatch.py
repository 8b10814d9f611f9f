"""The dispatcher: paced, the attempt written first, never a dial twice, even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import NOW, rows, world

from callback.config import Settings
from callback.dialing import (
    CallEvent,
    CallRequest,
    Dialer,
    DialRejected,
    EventKind,
    Pacing,
    RetryableDialError,
)
from callback.dispatch import Dispatcher, reserve_slot
from callback.errors import ConfigError
from callback.models import CallAttempt, Campaign, QueueItem, table


class FakeClock:
    """A clock that moves only when the dispatcher sleeps (or the test says so)."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


class RecordingDialer(Dialer):
    """Records what it was asked to dial and when; calls end only when the test says."""

    interactive = False

    def __init__(self, settings, events, clock: FakeClock, rate: float = 2.0, lines: int = 3):
        super().__init__(settings, events)
        self.clock = clock
        self.rate, self.lines = rate, lines
        self.started: list[tuple[CallRequest, datetime]] = []
        self.refuse: BaseException | None = None
        self.known: dict[str, CallEvent] = {}

    @property
    def pacing(self) -> Pacing:
        return Pacing(self.rate, self.lines)

    def start(self, call: CallRequest) -> str:
        if self.refuse is not None:
            error, self.refuse = self.refuse, None
            raise error
        self.started.append((call, self.clock()))
        return f"rec-{call.attempt_id}"

    def end_all(self, kind: EventKind = EventKind.BUSY) -> None:
        for call, _ in self.started:
            self.events(CallEvent(call.attempt_id, f"rec-{call.attempt_id}", kind, self.clock()))

    def status(self, provider_call_id: str, attempt_id: int) -> CallEvent | None:
        return self.known.get(provider_call_id)


def automated(engine: Engine, cases: int) -> int:
    campaign = world(engine, cases=cases)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="recording"))
    return campaign


def dispatcher(
    engine: Engine, clock: FakeClock, **dialer: object
) -> tuple[Dispatcher, RecordingDialer]:
    fake = RecordingDialer({}, lambda event: None, clock, **dialer)  # type: ignore[arg-type]
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"recording": fake},
                   sleep=clock.sleep)  # fmt: skip
    fake.events = d.handler  # the core's sink, as _build would wire it
    return d, fake


def test_calls_are_paced_and_the_concurrency_limit_holds(engine: Engine) -> None:
    automated(engine, cases=10)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock, rate=2.0, lines=3)
    d.tick()
    assert len(fake.started) == 3  # three lines, then no more until a call ends
    times = [at for _, at in fake.started]
    assert all((b - a) >= timedelta(seconds=0.5) for a, b in zip(times, times[1:], strict=False))
    assert all(a.state == "placed" and a.placed_at is not None for a in rows(engine, CallAttempt))
    d.tick()
    assert len(fake.started) == 3
    fake.end_all()
    clock.at += timedelta(seconds=5)
    d.tick()
    assert len(fake.started) == 6


def test_the_pacing_bucket_is_shared(engine: Engine) -> None:
    pacing = Pacing(calls_per_second=1, max_concurrent=10)
    horizon = timedelta(seconds=2)
    slots = [reserve_slot(engine, "twilio", pacing, NOW, horizon) for _ in range(4)]
    assert slots[:3] == [NOW, NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)]
    assert slots[3] is None  # beyond the horizon: the next tick takes it


def test_a_rate_limit_returns_the_attempt_unplaced_and_rests_the_dialer(engine: Engine) -> None:
    automated(engine, cases=3)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)
    fake.refuse = RetryableDialError("429 Too Many Requests", retry_after=30.0, status=429)
    report = d.tick()
    assert report.not_placed == 1 and fake.started == []
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.outcome, attempt.disposition) == ("ended", "not-placed", "3.11")
    item = next(i for i in rows(engine, QueueItem) if i.id == attempt.queue_item_id)
    assert item.attempts == 0 and item.held_by is None
    assert item.due_at >= NOW + timedelta(seconds=30)
    clock.at += timedelta(seconds=10)
    d.tick()
    assert fake.started == []  # still resting
    clock.at += timedelta(seconds=25)
    d.tick()
    assert len(fake.started) == 3


def test_a_call_that_may_have_been_placed_is_never_dialled_again(engine: Engine) -> None:
    # A read timeout: Twilio may have created the call (and be ringing the citizen) before
    # the connection broke. Recorded as not placed, the case would be dialled again in 5 s.
    automated(engine, cases=1)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)
    fake.refuse = RetryableDialError("read timed out", retry_after=5.0, maybe_placed=True)
    report = d.tick()
    assert report.placed == 0 and report.not_placed == 0
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.provider_call_id) == ("placed", None)
    assert attempt.detail["maybe_placed"] is True and "read timed out" in attempt.detail["error"]
    clock.at += timedelta(minutes=10)
    d.tick()
    assert fake.started == [] and len(rows(engine, CallAttempt)) == 1
    # It was placed: its callbacks (their URLs name the attempt) bring the outcome and the id.
    d.handler(CallEvent(attempt.id, "CA-late", EventKind.BUSY, clock()))
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.outcome, attempt.provider_call_id) == (
        "ended", "busy", "CA-late",
    )  # fmt: skip


def test_a_call_that_may_have_been_placed_and_never_reports_is_closed_unknown(
    engine: Engine,
) -> None:
    automated(engine, cases=1)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)
    fake.refuse = RetryableDialError("read timed out", retry_after=5.0, maybe_placed=True)
    d.tick()
    clock.at += timedelta(minutes=31)
    assert d.reconcile(timedelta(minutes=30)) == 1
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.disposition) == ("unknown", "3.16")
    # The case comes back as a new attempt, after the rules' retry delay, never the old one.
    (item,) = rows(engine, QueueItem)
    assert item.attempts == 1 and item.due_at >= clock()
    clock.at = item.due_at
    d.tick()
    assert [call.attempt_id for call, _ in fake.started] not in ([], [attempt.id])
    assert len(rows(engine, CallAttempt)) == 2


def test_a_rejected_call_is_recorded_through_its_event(engine: Engine) -> None:
    automated(engine, cases=1)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)

    def reject(call: CallRequest) -> str:
        event = CallEvent(call.attempt_id, "", EventKind.WRONG_NUMBER, clock(), {"code": 21211})
        d.handler(event)
        raise DialRejected("invalid number", event)

    fake.start = reject  # type: ignore[method-assign]
    d.tick()
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.outcome, attempt.disposition) == (
        "ended",
        "wrong-number",
        "2.292",
    )


def test_after_a_crash_the_provider_is_asked_then_the_rest_closed(engine: Engine) -> None:
    automated(engine, cases=2)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)
    d.tick()
    first, second = (call for call, _ in fake.started)
    fake.known[f"rec-{first.attempt_id}"] = CallEvent(
        first.attempt_id, f"rec-{first.attempt_id}", EventKind.NO_ANSWER, clock()
    )
    clock.at += timedelta(hours=1)
    settled = d.reconcile(timedelta(minutes=30))
    assert settled == 2
    by_id = {a.id: a for a in rows(engine, CallAttempt)}
    assert by_id[first.attempt_id].outcome == "no-answer"  # the provider knew
    assert by_id[second.attempt_id].state == "unknown"  # it did not: closed, never redialled


def test_a_dialer_crash_fails_the_attempt_instead_of_leaving_it_pending(engine: Engine) -> None:
    automated(engine, cases=1)
    clock = FakeClock(NOW)
    d, fake = dispatcher(engine, clock)
    fake.refuse = RuntimeError("bug")
    d.tick()
    assert rows(engine, CallAttempt)[0].outcome == "failed"


def test_manual_campaigns_are_left_to_agents(engine: Engine) -> None:
    world(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="manual"))
    assert Dispatcher(engine, Settings(), "d", lambda: NOW).lines == []


def test_a_campaign_sampled_while_the_dispatcher_runs_is_dialled(engine: Engine) -> None:
    automated(engine, cases=2)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="draft"))
    clock = FakeClock(NOW)
    fake = RecordingDialer({}, lambda event: None, clock)  # type: ignore[arg-type]
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"recording": fake},
                   sleep=clock.sleep)  # fmt: skip
    fake.events = d.handler
    assert d.lines == []
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="sampled"))
    d.tick()
    assert fake.started == []  # not looked for yet: every LINES_EVERY seconds
    assert d.update_lines() == ["recording: campaigns [] -> [1]"]
    d.tick()
    assert len(fake.started) == 2


def test_a_dialer_that_cannot_be_built_later_does_not_stop_the_others(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    automated(engine, cases=1)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="draft"))
    clock = FakeClock(NOW)
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, sleep=clock.sleep)

    def unconfigured(name: str) -> type:
        raise ConfigError(f"[dialers.{name}] is missing")

    monkeypatch.setattr("callback.plugins.get_dialer", unconfigured)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(status="sampled"))
    assert d.update_lines() == []  # logged, and tried again at the next look
    assert d.lines == []
    monkeypatch.setattr("callback.plugins.get_dialer", lambda name: TwoArgumentDialer)
    assert d.update_lines() == ["recording: campaigns [] -> [1]"]
    # At start, the same fault stops the dispatcher and says why.
    monkeypatch.setattr("callback.plugins.get_dialer", unconfigured)
    with pytest.raises(ConfigError, match="dialers.recording"):
        Dispatcher(engine, Settings(), "dispatcher:test", clock)


class ClockedDialer(RecordingDialer):
    """A dialer whose constructor takes the clock (and a conversation) by keyword, as SIP's does."""

    interactive = True

    def __init__(self, settings, events, conversation=None, *, clock=None):  # type: ignore[no-untyped-def]
        super().__init__(settings, events, clock)
        self.conversation = conversation


class TwoArgumentDialer(RecordingDialer):
    """A dialer written against the bare contract: settings and the event sink, nothing more."""

    def __init__(self, settings, events):  # type: ignore[no-untyped-def]
        super().__init__(settings, events, FakeClock(NOW))


def test_built_dialers_are_given_the_dispatchers_clock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    automated(engine, cases=1)
    monkeypatch.setattr("callback.plugins.get_dialer", lambda name: ClockedDialer)
    clock = FakeClock(NOW)
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, sleep=clock.sleep)
    (line,) = d.lines
    assert isinstance(line.dialer, ClockedDialer)
    assert line.dialer.clock is clock
    assert line.dialer.conversation is d.handler
    assert line.dialer.events is d.handler


def test_built_dialers_get_only_the_arguments_they_accept(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    automated(engine, cases=1)
    monkeypatch.setattr("callback.plugins.get_dialer", lambda name: TwoArgumentDialer)
    d = Dispatcher(engine, Settings(), "dispatcher:test", FakeClock(NOW))
    (line,) = d.lines
    assert isinstance(line.dialer, TwoArgumentDialer)
    assert line.dialer.events is d.handler


class HastyDialer(RecordingDialer):
    """A provider whose final callback comes in before ``start`` has returned the call id."""

    def start(self, call: CallRequest) -> str:
        sid = super().start(call)
        self.clock.at += timedelta(seconds=2)
        self.events(CallEvent(call.attempt_id, sid, EventKind.BUSY, self.clock()))
        self.clock.at += timedelta(seconds=1)
        return sid


def test_an_outcome_reported_while_dialling_keeps_its_call_id(engine: Engine) -> None:
    automated(engine, cases=1)
    clock = FakeClock(NOW)
    fake = HastyDialer({}, lambda event: None, clock)  # type: ignore[arg-type]
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"recording": fake},
                   sleep=clock.sleep)  # fmt: skip
    fake.events = d.handler
    d.tick()
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.outcome) == ("ended", "busy")
    assert attempt.provider_call_id == f"rec-{attempt.id}"
    assert attempt.created_at <= attempt.placed_at <= attempt.ended_at


# -- the real process: callback run, SIGKILL and restart, two dispatchers ----------------------


def simulated_campaign(engine: Engine, cases: int) -> None:
    world(engine, cases=cases)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="simulated"))


def start_run(
    database_url: str, config: Path, later: timedelta = timedelta(0), *extra: str
) -> subprocess.Popen[bytes]:
    local = (NOW + later).astimezone(ZoneInfo("Asia/Shanghai"))
    return subprocess.Popen(
        [sys.executable, "-m", "callback", "--database", database_url, "--config", str(config),
         "--now", local.strftime("%Y-%m-%d %H:%M"), "run", "--tick", "0.2",
         "--reconcile-after", "30", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture
def run_config(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    journal = tmp_path / "dials.journal"
    config = tmp_path / "callback.toml"
    # Slow enough that a kill lands mid-campaign; no answers, so calls are short and many.
    config.write_text(
        f'[dialers.simulated]\ncalls_per_second = "15"\nmax_concurrent = "5"\n'
        f'journal = "{journal}"\n',
        encoding="utf-8",
    )
    yield config, journal


def journal_lines(journal: Path) -> list[int]:
    if not journal.exists():
        return []
    return [int(line.split("\t")[0]) for line in journal.read_text().splitlines() if line]


def wait_for(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)


def test_sigkill_and_restart_lose_and_repeat_nothing(
    database_url: str, engine: Engine, run_config: tuple[Path, Path]
) -> None:
    config, journal = run_config
    simulated_campaign(engine, cases=120)
    first = start_run(database_url, config)
    wait_for(lambda: len(journal_lines(journal)) >= 25, 30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    dialled_before = journal_lines(journal)
    assert 0 < len(dialled_before) < 120, "the kill should land mid-campaign"

    # Restarted a minute later on the same machine: the dead dispatcher's calls are settled at
    # once, without waiting for the 30-minute timeout.
    second = start_run(database_url, config, later=timedelta(minutes=1))
    wait_for(lambda: len(set(journal_lines(journal))) >= 120, 60)
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr.decode()

    dialled = journal_lines(journal)
    assert [n for n, c in Counter(dialled).items() if c > 1] == []  # no attempt dialled twice
    attempts = {a.id: a for a in rows(engine, CallAttempt)}
    assert set(dialled) <= set(attempts)  # no dial without its attempt row
    assert all(a.state in ("ended", "unknown") for a in attempts.values())  # nothing left open
    items = rows(engine, QueueItem)
    assert all(sum(1 for a in attempts.values() if a.queue_item_id == i.id) >= 1 for i in items)
    # Never two calls of one case at once: each item's attempts are sequential.
    for item in items:
        mine = sorted((a for a in attempts.values() if a.queue_item_id == item.id),
                      key=lambda a: a.created_at)  # fmt: skip
        for earlier, later in zip(mine, mine[1:], strict=False):
            assert earlier.ended_at is not None and earlier.ended_at <= later.created_at


def test_a_service_started_before_any_campaign_dials_one_sampled_later(
    database_url: str, engine: Engine, run_config: tuple[Path, Path]
) -> None:
    config, journal = run_config
    service = start_run(database_url, config, timedelta(0), "--campaigns-every", "0.5")
    time.sleep(1.5)  # it has started, found nothing, and not exited
    assert service.poll() is None
    simulated_campaign(engine, cases=5)
    wait_for(lambda: len(set(journal_lines(journal))) >= 5, 30)
    service.send_signal(signal.SIGTERM)
    _, stderr = service.communicate(timeout=60)
    assert service.returncode == 0, stderr.decode()
    assert "no sampled campaign has an automated dialer yet" in stderr.decode()
    assert len(set(journal_lines(journal))) >= 5


@pytest.mark.skipif(
    not os.environ.get("CALLBACK_TEST_DATABASE_URL"), reason="two dispatchers need PostgreSQL"
)
def test_two_dispatchers_never_dial_a_case_twice(
    database_url: str, engine: Engine, run_config: tuple[Path, Path]
) -> None:
    config, journal = run_config
    simulated_campaign(engine, cases=150)
    runs = [start_run(database_url, config), start_run(database_url, config)]
    wait_for(lambda: len(set(journal_lines(journal))) >= 150, 90)
    for process in runs:
        process.send_signal(signal.SIGTERM)
    for process in runs:
        process.communicate(timeout=60)
        assert process.returncode == 0
    dialled = journal_lines(journal)
    assert [n for n, c in Counter(dialled).items() if c > 1] == []
    attempts = rows(engine, CallAttempt)
    workers = {a.worker for a in attempts}
    assert len(workers) == 2, "both dispatchers should have dialled"
    per_item_open = Counter(a.queue_item_id for a in attempts if a.state in ("pending", "placed"))
    assert not per_item_open
    assert len(dialled) == len([a for a in attempts if a.outcome != "not-placed"])
