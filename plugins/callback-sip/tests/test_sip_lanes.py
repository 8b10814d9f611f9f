"""Tests for per-call ordered work on a shared pool."""

from __future__ import annotations

import threading

from callback_sip.lanes import Lanes


def test_jobs_of_one_call_run_in_order_and_calls_run_side_by_side() -> None:
    lanes = Lanes(workers=2)
    order: list[str] = []
    first_call_blocked = threading.Event()
    release = threading.Event()

    def blocked() -> None:
        first_call_blocked.set()
        assert release.wait(5)
        order.append("a1")

    lanes.submit("a", blocked)
    lanes.submit("a", lambda: order.append("a2"))
    assert first_call_blocked.wait(5)
    lanes.submit("b", lambda: (order.append("b1"), release.set()))
    lanes.close()

    assert order == ["b1", "a1", "a2"]


def test_a_failing_job_does_not_stop_its_lane() -> None:
    lanes = Lanes(workers=1)
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("sink is down")

    lanes.submit("a", fail)
    lanes.submit("a", lambda: done.append(1))
    lanes.close()

    assert done == [1]


def test_jobs_after_close_are_dropped() -> None:
    lanes = Lanes(workers=1)
    lanes.close()
    ran: list[int] = []

    lanes.submit("a", lambda: ran.append(1))

    assert ran == []
