"""One IVR turn on a SIP call: when its prompt ends, which keys it takes, when it is done.

Pure bookkeeping with the time passed in, so the rules are tested without a call.
``callback_sip.dialogue`` feeds it keys and asks it for deadlines from the engine's polling loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from callback.dialing import Turn

#: Seconds between the end of a goodbye prompt and our BYE: the far end's jitter buffer
#: (40-200 ms on G.711 trunks) still holds the last syllable when our last packet leaves.
HANGUP_TAIL_SECONDS = 0.3


@dataclass(frozen=True)
class PreparedTurn:
    """A Turn from the core with the audio file that renders it and its playing time.

    ``audio`` is None only for a turn with neither text nor audio: it listens without a prompt.
    """

    turn: Turn
    audio: Path | None
    seconds: float


@dataclass
class TurnProgress:
    """A turn being played and listened to."""

    prepared: PreparedTurn
    started_at: float
    keys: list[str] = field(default_factory=list)
    last_key_at: float | None = None
    #: True once input is complete: ``max_digits`` keys, or the finish key.
    finished: bool = False

    @property
    def turn(self) -> Turn:
        return self.prepared.turn

    @property
    def prompt_ends_at(self) -> float:
        return self.started_at + self.prepared.seconds

    @property
    def collects_digits(self) -> bool:
        """True when the turn listens for keys; a goodbye (``hangup``) never does.

        Speech is not recognised on SIP calls, so a speech-only turn just plays its prompt.
        """
        return not self.turn.hangup and "digits" in self.turn.expect.split()

    def feed(self, key: str, now: float) -> bool:
        """Take one key; return True when input is complete."""
        if self.finished or not self.collects_digits:
            return self.finished
        self.last_key_at = now
        if self.turn.finish_on_key and key == self.turn.finish_on_key:
            # Like Twilio's finishOnKey: the key ends input and is not part of it.
            self.finished = True
        else:
            self.keys.append(key)
            if 0 < self.turn.max_digits <= len(self.keys):
                self.finished = True
        return self.finished

    @property
    def digits(self) -> str:
        return "".join(self.keys)

    def deadline(self) -> float:
        """When the turn is over without more input.

        A listening turn waits ``timeout_seconds`` after the prompt or after the last key,
        whichever is later (an inter-digit timeout, as in Twilio's ``<Gather>``); a goodbye
        ends after the prompt and a short tail; a turn that only speaks ends with its prompt.
        """
        if self.turn.hangup:
            return self.prompt_ends_at + HANGUP_TAIL_SECONDS
        if not self.collects_digits:
            return self.prompt_ends_at
        since = max(self.prompt_ends_at, self.last_key_at or self.started_at)
        return since + self.turn.timeout_seconds

    def is_due(self, now: float) -> bool:
        """True when the turn should be handed back to the core (or the call ended)."""
        return self.finished or now >= self.deadline()


def voice_for(language: str, default_voice: str) -> str:
    """Pick the espeak-ng voice for a Turn's BCP 47 language."""
    tag = language.lower()
    if tag.startswith(("cmn", "zh")):
        return default_voice
    if tag.startswith("en"):
        return "en-us"
    return default_voice
