"""The built-in dialers: manual names its calls; simulated plays seeded, replayable calls."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from callback.default_plugins.dialers import Behaviour, ManualDialer, SimulatedDialer
from callback.dialing import CallEvent, CallRequest, Conversation, EventKind, Turn
from callback.errors import ConfigError

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)


class ScriptedConversation(Conversation):
    """Two questions, then goodbye; remembers what each call answered."""

    def __init__(self) -> None:
        self.replies: dict[int, list[str]] = {}

    def begin(self, attempt_id: int) -> Turn:
        self.replies[attempt_id] = []
        return Turn(
            "满意吗？", question="satisfaction", kind="choice", choices=("1", "2", "3", "4", "5")
        )

    def reply(self, attempt_id: int, digits: str, speech: str | None = None) -> Turn:
        self.replies[attempt_id].append(digits)
        if len(self.replies[attempt_id]) == 1:
            return Turn(
                "新号码？", question="new_phone", kind="phone", max_digits=12, finish_on_key="#"
            )
        return Turn("再见", expect="", hangup=True)


def play(settings: dict, calls: int, conversation: Conversation | None = None) -> list[CallEvent]:
    events: list[CallEvent] = []
    dialer = SimulatedDialer(settings, events.append, conversation)
    for attempt in range(1, calls + 1):
        request = CallRequest(attempt, "+8613912345671", metadata={"attempt": attempt})
        assert dialer.start(request) == f"sim-{attempt}"
    assert events == []  # nothing happens until the dialer is polled
    dialer.poll(NOW)
    return events


def final(events: list[CallEvent]) -> Counter[EventKind]:
    last: dict[int, EventKind] = {}
    for event in events:
        last[event.attempt_id] = event.kind
    return Counter(last.values())


def test_the_same_seed_replays_the_same_calls() -> None:
    assert play({"seed": 3}, 300) == play({"seed": 3}, 300)
    assert play({"seed": 3}, 300) != play({"seed": 4}, 300)


def test_the_shares_are_respected() -> None:
    events = play({"answer": 0.5, "busy": 0.5, "no_answer": 0, "machine": 0, "wrong_number": 0,
                   "failed": 0}, 2000)  # fmt: skip
    outcomes = final(events)
    assert set(outcomes) == {EventKind.COMPLETED, EventKind.BUSY}
    assert 850 < outcomes[EventKind.BUSY] < 1150


def test_every_call_ends_in_exactly_one_final_event_after_its_start() -> None:
    finals = {EventKind.BUSY, EventKind.NO_ANSWER, EventKind.WRONG_NUMBER, EventKind.FAILED,
              EventKind.COMPLETED}  # fmt: skip
    events = play({}, 500)
    per_call = Counter(e.attempt_id for e in events if e.kind in finals)
    assert set(per_call.values()) == {1} and len(per_call) == 500
    assert all(e.at >= NOW for e in events)
    machine = [e.attempt_id for e in events if e.kind is EventKind.MACHINE]
    assert machine and all(
        any(e.attempt_id == a and e.kind is EventKind.COMPLETED for e in events) for a in machine
    )


def test_answered_calls_run_the_survey_with_configured_answers() -> None:
    conversation = ScriptedConversation()
    play({"answer": 1, "busy": 0, "no_answer": 0, "machine": 0, "wrong_number": 0, "failed": 0,
          "refusal": 0, "break_off": 0, "answers": {"satisfaction": {"4": 1.0}}}, 50,
         conversation)  # fmt: skip
    assert len(conversation.replies) == 50
    for replies in conversation.replies.values():
        assert replies[0] == "4"
        assert replies[1].endswith("#") and len(replies[1]) == 12


def test_refusals_hang_up_before_answering() -> None:
    conversation = ScriptedConversation()
    play({"answer": 1, "busy": 0, "no_answer": 0, "machine": 0, "wrong_number": 0, "failed": 0,
          "refusal": 1, "break_off": 0}, 20, conversation)  # fmt: skip
    assert all(replies == [] for replies in conversation.replies.values())


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"answer": 1.5}, "share from 0 to 1"), ({"colour": "red"}, "unknown settings colour"),
     ({"refusal": 0.8, "break_off": 0.5}, "cannot exceed 1")],
)  # fmt: skip
def test_bad_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Behaviour.from_settings(settings)


def test_manual_names_its_calls_and_reports_nothing() -> None:
    events: list[CallEvent] = []
    dialer = ManualDialer({}, events.append)
    assert dialer.start(CallRequest(7, "+8613912345671")) == "manual-7"
    dialer.poll(NOW)
    assert events == [] and not dialer.interactive
