"""The built-in dialers: ``manual`` (an agent dials by hand) and ``simulated`` (rehearsals)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from callback.dialing import (
    ANSWERED_BY_PERSON,
    CallEvent,
    CallRequest,
    Conversation,
    Dialer,
    EventKind,
    EventSink,
    Pacing,
    Turn,
)
from callback.errors import ConfigError
from callback.hookspecs import hookimpl


@hookimpl
def register_dialers(register: Callable[[str, type[Dialer]], None]) -> None:
    register("manual", ManualDialer)
    register("simulated", SimulatedDialer)


class ManualDialer(Dialer):
    """The agent dials on their own telephone; callback records what they say happened.

    ``start`` only names the call; the workstation reports its outcome through the core.
    """

    interactive = False

    @property
    def pacing(self) -> Pacing:
        return Pacing(calls_per_second=1000.0, max_concurrent=1000)

    def start(self, call: CallRequest) -> str:
        return f"manual-{call.attempt_id}"


# How the simulated citizens of the built-in service-callback script answer: most went at
# most once and are satisfied, as the province's published figures suggest; tests and
# rehearsals can set their own shares under [dialers.simulated.answers].
DEFAULT_ANSWERS: Mapping[str, Mapping[str, float]] = {
    "identity": {"1": 0.86, "2": 0.09, "3": 0.03, "4": 0.02},
    "case": {"1": 0.97, "2": 0.03},
    "trips": {"0": 0.38, "1": 0.52, "2": 0.07, "3": 0.03},
    "satisfaction": {"1": 0.46, "2": 0.33, "3": 0.13, "4": 0.06, "5": 0.02},
    "has_suggestion": {"1": 0.12, "2": 0.88},
    "policy": {"1": 0.7, "2": 0.3},
    "recontact": {"1": 0.8, "2": 0.2},
}


@dataclass(frozen=True)
class Behaviour:
    """The shares of what simulated calls do; the network outcomes are normalised to 1."""

    answer: float = 0.62
    busy: float = 0.08
    no_answer: float = 0.2
    machine: float = 0.05
    wrong_number: float = 0.03
    failed: float = 0.02
    #: Of answered calls: the citizen hangs up at once, or part-way through the survey.
    refusal: float = 0.05
    break_off: float = 0.02
    seed: int = 1
    answers: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_ANSWERS)
    #: A file to which every call started is appended ("attempt<TAB>number"), durably: the
    #: outside record that crash tests count dials against.
    journal: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Behaviour:
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known - {"calls_per_second", "max_concurrent"}
        if unknown:
            raise ConfigError(
                f"[dialers.simulated]: unknown settings {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        values = {k: v for k, v in settings.items() if k in known}
        if "answers" in values:
            values["answers"] = {**DEFAULT_ANSWERS, **values["answers"]}
        behaviour = cls(**values)
        for name in ("answer", "busy", "no_answer", "machine", "wrong_number", "failed",
                     "refusal", "break_off"):  # fmt: skip
            share = getattr(behaviour, name)
            if not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ConfigError(f"[dialers.simulated]: {name} must be a share from 0 to 1")
        if behaviour.refusal + behaviour.break_off > 1:
            raise ConfigError("[dialers.simulated]: refusal + break_off cannot exceed 1")
        return behaviour


class SimulatedDialer(Dialer):
    """Seeded virtual respondents, for rehearsals, the demo and load tests.

    Each call's fate is drawn from a random generator seeded by (seed, number, the attempt's
    ordinal on its case from ``metadata["attempt"]``), so a rehearsal replays exactly.
    Answered calls run the survey through the core's Conversation, exactly as an IVR would,
    answering each question from ``answers`` (by question id) or uniformly among its keys.
    Calls play out when ``poll`` is called, at simulated times.
    """

    interactive = True

    def __init__(
        self,
        settings: Mapping[str, Any],
        events: EventSink,
        conversation: Conversation | None = None,
    ) -> None:
        super().__init__(settings, events)
        self.behaviour = Behaviour.from_settings(settings)
        self.conversation = conversation
        self._started: list[CallRequest] = []
        self._pacing = Pacing(
            calls_per_second=float(settings.get("calls_per_second", 1000.0)),
            max_concurrent=int(settings.get("max_concurrent", 1000)),
        )

    @property
    def pacing(self) -> Pacing:
        return self._pacing

    def start(self, call: CallRequest) -> str:
        if self.behaviour.journal:
            # O_APPEND writes of a line are atomic, so dispatchers can share one journal.
            fd = os.open(self.behaviour.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{call.attempt_id}\t{call.to}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        self._started.append(call)
        return f"sim-{call.attempt_id}"

    def poll(self, now: datetime) -> None:
        """Play every call started since the last poll, as if it began at ``now``."""
        started, self._started = self._started, []
        for call in started:
            self._play(call, now)

    def _play(self, call: CallRequest, at: datetime) -> None:
        b = self.behaviour
        # Seeded by what the call is, not by database ids (sequences differ between runs):
        # the number, and which attempt on the case this is.
        ordinal = call.metadata.get("attempt", call.attempt_id)
        rng = random.Random(f"{b.seed}:{call.to}:{ordinal}")
        call_id = f"sim-{call.attempt_id}"

        def emit(kind: EventKind, seconds: float, **detail: Any) -> None:
            event_at = at + timedelta(seconds=seconds)
            # A simulated respondent is a person, and the dialer knows it: it reports
            # machines as their own kind, as a dialer with answering-machine detection does.
            by = ANSWERED_BY_PERSON if kind is EventKind.ANSWERED else None
            self.events(CallEvent(call.attempt_id, call_id, kind, event_at, detail, by))

        outcomes = {
            EventKind.ANSWERED: b.answer,
            EventKind.BUSY: b.busy,
            EventKind.NO_ANSWER: b.no_answer,
            EventKind.MACHINE: b.machine,
            EventKind.WRONG_NUMBER: b.wrong_number,
            EventKind.FAILED: b.failed,
        }
        fate = rng.choices(list(outcomes), weights=list(outcomes.values()))[0]
        if fate in (EventKind.WRONG_NUMBER, EventKind.FAILED):
            emit(fate, 1, simulated=True)
            return
        ring = rng.uniform(3, 25)
        emit(EventKind.RINGING, 1)
        if fate is EventKind.BUSY:
            emit(fate, 2, simulated=True)
            return
        if fate is EventKind.NO_ANSWER:
            emit(fate, call.ring_timeout, simulated=True)
            return
        emit(fate, ring)
        if fate is EventKind.MACHINE:
            emit(EventKind.COMPLETED, ring + 20, simulated=True)
            return
        talk = self._converse(call, rng)
        emit(EventKind.COMPLETED, ring + talk, simulated=True)

    def _converse(self, call: CallRequest, rng: random.Random) -> float:
        """Answer the survey turn by turn; return the seconds the call lasted."""
        if self.conversation is None:
            return 5.0
        b = self.behaviour
        roll = rng.random()
        hang_up_at = (
            0 if roll < b.refusal else (rng.randint(1, 6) if roll < b.refusal + b.break_off else -1)
        )
        turn = self.conversation.begin(call.attempt_id)
        seconds, turns = 0.0, 0
        while not turn.hangup:
            if turns == hang_up_at:
                break  # the citizen hangs up; the core hears "completed" with no more input
            seconds += len(turn.text) / 4 + rng.uniform(1, 4)  # about four characters a second
            turn = self.conversation.reply(call.attempt_id, self._answer(turn, rng))
            turns += 1
        return seconds + 2

    def _answer(self, turn: Turn, rng: random.Random) -> str:
        if not turn.expect:
            return ""  # a turn that only speaks
        shares = self.behaviour.answers.get(turn.question)
        if shares and turn.choices:
            keys = [key for key in shares if key in turn.choices]
            if keys:
                return rng.choices(keys, weights=[shares[k] for k in keys])[0]
        if turn.kind == "phone":
            return "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}" + "#"
        if turn.kind in ("number", "rating") and not turn.choices:
            return f"{rng.randint(1, 5)}{turn.finish_on_key}"
        if turn.choices:
            return rng.choice(turn.choices)
        return ""  # free text: the IVR cannot capture it, silence moves on
