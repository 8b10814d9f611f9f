"""Tests for how the end of an unanswered SIP call maps to an outcome."""

from __future__ import annotations

import pytest

from callback.dialing import EventKind
from callback_sip.outcomes import Ending, unanswered_outcome


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (486, EventKind.BUSY),
        (600, EventKind.BUSY),
        (408, EventKind.NO_ANSWER),
        (480, EventKind.NO_ANSWER),
        (487, EventKind.NO_ANSWER),
        (603, EventKind.NO_ANSWER),
        (404, EventKind.WRONG_NUMBER),
        (410, EventKind.WRONG_NUMBER),
        (484, EventKind.WRONG_NUMBER),
        (604, EventKind.WRONG_NUMBER),
        (500, EventKind.FAILED),
        (503, EventKind.FAILED),
        (403, EventKind.FAILED),
        (302, EventKind.FAILED),
    ],
)
def test_a_final_response_from_the_peer_maps_by_its_code(code: int, expected: EventKind) -> None:
    assert unanswered_outcome(code, Ending.PEER, heard_from_peer=True) == expected


def test_a_transport_failure_is_failed_whatever_the_code() -> None:
    assert unanswered_outcome(503, Ending.TRANSPORT, heard_from_peer=False) == EventKind.FAILED
    assert unanswered_outcome(408, Ending.NO_RESPONSE, heard_from_peer=False) == EventKind.FAILED


@pytest.mark.parametrize("ending", [Ending.RING_TIMEOUT, Ending.TIMEOUT, Ending.CANCELLED])
def test_giving_up_is_no_answer_only_if_the_peer_was_ever_heard(ending: Ending) -> None:
    assert unanswered_outcome(487, ending, heard_from_peer=True) == EventKind.NO_ANSWER
    assert unanswered_outcome(487, ending, heard_from_peer=False) == EventKind.FAILED
