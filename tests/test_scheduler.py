"""callback run's clock: which periodic jobs it schedules, when, and that a failing job is
logged without stopping the others."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from callback.config import Settings
from callback.dispatch import Dispatcher
from callback.scheduler import build_scheduler

SHANGHAI = ZoneInfo("Asia/Shanghai")


def scheduler_with(engine: Engine, **jobs):  # type: ignore[no-untyped-def]
    dispatcher = Dispatcher(engine, Settings(), "d", lambda: datetime.now(SHANGHAI))
    return build_scheduler(dispatcher, "Asia/Shanghai", **jobs)


def test_the_weekly_report_runs_on_thursday_morning_in_shanghai(engine: Engine) -> None:
    scheduler = scheduler_with(engine, weekly_report=lambda: None)
    job = next(j for j in scheduler.get_jobs() if j.id == "weekly-report")
    tuesday = datetime(2018, 10, 9, 12, tzinfo=SHANGHAI)
    assert job.trigger.get_next_fire_time(None, tuesday) == datetime(
        2018, 10, 11, 8, tzinfo=SHANGHAI
    )
    # The same Thursday after 08:00: the next report is a week later.
    thursday_noon = datetime(2018, 10, 11, 12, tzinfo=SHANGHAI)
    assert job.trigger.get_next_fire_time(None, thursday_noon).date().isoformat() == "2018-10-18"


def test_optional_jobs_are_scheduled_only_when_given(engine: Engine) -> None:
    bare = {j.id for j in scheduler_with(engine).get_jobs()}
    assert bare == {"tick", "release-expired-claims", "reconcile", "refresh"}
    full = scheduler_with(engine, weekly_report=lambda: None, apply_corrections=lambda: None)
    assert {j.id for j in full.get_jobs()} == bare | {"weekly-report", "apply-corrections"}


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    scheduler = scheduler_with(engine, apply_corrections=broken)
    job = next(j for j in scheduler.get_jobs() if j.id == "apply-corrections")
    with caplog.at_level(logging.ERROR, logger="callback.scheduler"):
        job.func()
        job.func()
    assert calls == [1, 1]
    assert "disk full" in caplog.text
