"""Placement and outcome in either order: the call id and placing time are kept, never swapped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from test_calls import NOW, A, rows, world

from callback.attempt_outcomes import attempt_not_placed, finish_attempt
from callback.attempts import attempt_placed, begin_attempt
from callback.calls import CallHandler
from callback.claims import Scope, claim_next
from callback.dialing import CallEvent, EventKind
from callback.models import CallAttempt, QueueItem


def pending(engine: Engine) -> int:
    """An attempt written and handed to the dialer, whose placement is not yet recorded."""
    campaign = world(engine)
    claim = claim_next(engine, "dispatcher:test", Scope(campaigns=frozenset({campaign})), NOW)
    assert claim is not None
    return begin_attempt(engine, claim, A, "simulated", NOW)


def busy(attempt: int, sid: str, seconds: int = 3) -> CallEvent:
    return CallEvent(attempt, sid, EventKind.BUSY, NOW + timedelta(seconds=seconds))


def test_an_outcome_before_the_placement_keeps_the_call_id_and_placing_time(
    engine: Engine,
) -> None:
    attempt = pending(engine)
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA1"))
    item_before = rows(engine, QueueItem)

    assert attempt_placed(engine, attempt, "CA1", NOW + timedelta(seconds=5)) is False

    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.outcome, row.disposition) == ("ended", "busy", "3.12")
    assert row.provider_call_id == "CA1"
    # Placed before it ended, even though the dialer said so later.
    assert row.created_at <= row.placed_at <= row.ended_at == NOW + timedelta(seconds=3)
    assert rows(engine, QueueItem) == item_before  # not reopened, not counted twice


def test_the_outcome_stores_the_call_id_the_row_lacks(engine: Engine) -> None:
    attempt = pending(engine)
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA1"))
    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.provider_call_id, row.placed_at) == ("ended", "CA1", None)


def test_a_placement_then_its_outcome_keep_both(engine: Engine) -> None:
    attempt = pending(engine)
    assert attempt_placed(engine, attempt, "CA1", NOW + timedelta(seconds=1)) is True
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA1"))
    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.outcome, row.provider_call_id) == ("ended", "busy", "CA1")
    assert row.placed_at == NOW + timedelta(seconds=1)


def test_a_late_placement_of_another_call_changes_nothing(engine: Engine) -> None:
    attempt = pending(engine)
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA1"))
    before = rows(engine, CallAttempt)
    assert attempt_placed(engine, attempt, "CA2", NOW + timedelta(seconds=5)) is False
    assert rows(engine, CallAttempt) == before
    assert before[0].provider_call_id == "CA1"


def test_an_outcome_of_another_call_never_replaces_the_call_id(engine: Engine) -> None:
    attempt = pending(engine)
    attempt_placed(engine, attempt, "CA1", NOW)
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA2"))
    (row,) = rows(engine, CallAttempt)
    assert (row.state, row.provider_call_id) == ("ended", "CA1")


def test_a_repeated_late_placement_changes_nothing(engine: Engine) -> None:
    attempt = pending(engine)
    CallHandler(engine, clock=lambda: NOW)(busy(attempt, "CA1"))
    attempt_placed(engine, attempt, "CA1", NOW + timedelta(seconds=5))
    before = rows(engine, CallAttempt)
    assert attempt_placed(engine, attempt, "CA1", NOW + timedelta(seconds=9)) is False
    assert rows(engine, CallAttempt) == before


@pytest.mark.parametrize("sid", [None, ""])
def test_an_outcome_without_a_call_id_leaves_it_empty(engine: Engine, sid: str | None) -> None:
    attempt = pending(engine)
    finish_attempt(engine, attempt, EventKind.FAILED, NOW, provider_call_id=sid)
    assert rows(engine, CallAttempt)[0].provider_call_id is None


def test_an_attempt_recorded_as_not_placed_is_not_made_placed(engine: Engine) -> None:
    attempt = pending(engine)
    attempt_not_placed(engine, attempt, NOW, 60.0)
    before = rows(engine, CallAttempt)
    assert attempt_placed(engine, attempt, "CA1", NOW + timedelta(seconds=1)) is False
    assert rows(engine, CallAttempt) == before
