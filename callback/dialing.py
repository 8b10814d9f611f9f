"""The dialer contract: how callback asks a telephony backend to place a call and hears back.

Calls are asynchronous by nature. The core writes an attempt row, then asks a dialer to
``start`` the call; the dialer returns the provider's call id at once and later reports what
happened as ``CallEvent``s through the one ``EventSink`` it was given. Dialers never touch the
database. An interactive dialer (IVR) also asks the core for the next prompt of the survey
session and hands back what the caller keyed or said (see ``callback.surveys``).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from callback.errors import CallbackError
from callback.frozen import quick_init


class EventKind(enum.StrEnum):
    """What a dialer can say about a call, in the order a call usually lives them."""

    QUEUED = "queued"  # accepted by the provider, not yet ringing
    RINGING = "ringing"
    ANSWERED = "answered"  # a person (or, not yet known, someone) picked up
    MACHINE = "machine"  # an answering machine or voicemail picked up
    BUSY = "busy"
    NO_ANSWER = "no-answer"  # rang until the ring timeout, or the callee declined
    WRONG_NUMBER = "wrong-number"  # the network says the number does not exist (404, 484, 604)
    FAILED = "failed"  # the call could not be placed (network or provider error)
    COMPLETED = "completed"  # the call ended after being answered


#: Dialers a person drives (the agent dials by hand); every other dialer is automated.
PERSON_DIALERS = frozenset({"manual"})

#: Events after which nothing more will be heard of a call.
FINAL_EVENTS = frozenset(
    {EventKind.BUSY, EventKind.NO_ANSWER, EventKind.WRONG_NUMBER, EventKind.FAILED,
     EventKind.COMPLETED}
)  # fmt: skip


@dataclass(frozen=True)
class CallRequest:
    """What the core asks a dialer to do: call ``to`` for attempt ``attempt_id``."""

    attempt_id: int
    #: The number to dial, E.164 (+8613812345678). Only the dialer and the agent see it whole.
    to: str
    #: The caller id to present, E.164, or None for the trunk's default.
    caller_id: str | None = None
    #: Extension to key after answer (DTMF), e.g. "8001".
    extension: str | None = None
    #: Seconds to let it ring before giving up.
    ring_timeout: int = 30
    #: The survey script this call runs (interactive dialers fetch prompts for it).
    script: str | None = None
    #: Anything else a dialer may use (campaign name, unit, language).
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallEvent:
    """Something a dialer learnt about a call."""

    attempt_id: int
    provider_call_id: str
    kind: EventKind
    at: datetime  # timezone-aware
    #: The provider's own words: SIP status code, Twilio CallStatus and AnsweredBy, ...
    detail: Mapping[str, Any] = field(default_factory=dict)
    #: For ``answered``, the dialer's answering-machine detection in the core's words:
    #: ``ANSWERED_BY_PERSON``, or ``ANSWERED_BY_UNKNOWN`` when it cannot tell (detection ran
    #: and could not, or the dialer has none, as SIP); None while a verdict is still to come
    #: (asynchronous detection listening). A machine is reported as its own kind, ``machine``.
    answered_by: str | None = None


#: Values of ``CallEvent.answered_by``.
ANSWERED_BY_PERSON = "person"
ANSWERED_BY_UNKNOWN = "unknown"


EventSink = Callable[[CallEvent], None]


class DialError(CallbackError):
    """A dialer could not start a call; the subclass says what the dispatcher should do."""


class RetryableDialError(DialError):
    """The provider could not take the request now (rate limit, 5xx, network): try later.

    ``retry_after`` is how many seconds to wait (the provider's ``Retry-After`` when it sent
    one). ``maybe_placed`` is True when the request may have reached the provider before the
    connection broke: the call may exist, so the dispatcher records the attempt as placed
    without a call id and leaves its fate to the call's callbacks, or to ``reconcile`` when
    none come; the case is not dialled again meanwhile.
    """

    def __init__(
        self,
        message: str,
        retry_after: float,
        *,
        status: int | None = None,
        code: int | None = None,
        maybe_placed: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.code = code
        self.maybe_placed = maybe_placed


class DialRejected(DialError):
    """The provider refused this call (an invalid number, say); retrying will not help.

    The outcome was already reported through the event sink as ``event`` (with an empty
    ``provider_call_id``); the exception tells the dispatcher there is no call to follow.
    """

    def __init__(self, message: str, event: CallEvent) -> None:
        super().__init__(message)
        self.event = event


@dataclass(frozen=True)
class Pacing:
    """Limits the dispatcher must respect for a dialer (Twilio's default is 1 call/second)."""

    calls_per_second: float = 1.0
    max_concurrent: int = 1


class Dialer(ABC):
    """A telephony backend. Subclasses are registered by plugins under a unique name.

    ``settings`` is the dialer's table of callback.toml (``[dialers.<name>]``); ``events`` is
    where every CallEvent goes. Vendor clients are built lazily, so a dialer can be listed
    without its SDK being importable.
    """

    #: True when the dialer runs the survey itself (IVR); False when a person talks (manual).
    interactive: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any], events: EventSink) -> None:
        self.settings = settings
        self.events = events

    @property
    def pacing(self) -> Pacing:
        return Pacing()

    @abstractmethod
    def start(self, call: CallRequest) -> str:
        """Place the call and return the provider's call id at once; never wait for it."""

    def hangup(self, provider_call_id: str) -> None:  # noqa: B027 - optional for dialers
        """End a call in progress (graceful stop, deadline). Default: nothing to do."""

    def status(self, provider_call_id: str, attempt_id: int) -> CallEvent | None:
        """Ask the provider what became of a call (after a crash); None if it cannot say.

        ``attempt_id`` is the core's, for the event: providers do not know it.
        """
        return None

    def poll(self, now: datetime) -> None:  # noqa: B027 - optional for dialers
        """Deliver events whose time has come, for dialers that live in this process.

        Network dialers report from their own threads or webhooks and need nothing here; the
        simulated dialer plays its calls when polled, so a rehearsal can run on a virtual
        clock.
        """

    def close(self) -> None:  # noqa: B027 - optional for dialers
        """Release connections and threads."""


@quick_init
@dataclass(frozen=True)
class Turn:
    """What an interactive dialer must do next on a call: say or play a prompt, then listen.

    The core builds turns from the survey session (callback.surveys); dialers render them
    (TwiML ``<Say>``/``<Play>`` inside ``<Gather>``, or SIP audio playback and RFC 2833 digits).
    """

    #: Text to speak (Mandarin by default); always present, used when there is no audio.
    text: str
    #: Path of a recorded or synthesised prompt (8 kHz mono WAV for SIP), or None.
    audio: str | None = None
    #: BCP 47 language of ``text``: "cmn-CN" (Mandarin), "en-US".
    language: str = "cmn-CN"
    #: "digits" to collect keypad input, "speech" for speech, "digits speech" for either,
    #: "" to only speak (e.g. a goodbye).
    expect: str = "digits"
    #: Stop collecting after this many digits (1 for a menu choice).
    max_digits: int = 1
    #: A key that ends input early ("#" after a phone number), or "".
    finish_on_key: str = ""
    #: Seconds of silence before the dialer answers with no input.
    timeout_seconds: int = 8
    #: True when the call should end after this turn is spoken.
    hangup: bool = False
    #: The script's question id and kind, and the keys it accepts: what a simulated
    #: respondent needs to answer like a person would; telephony dialers ignore them.
    question: str = ""
    kind: str = ""
    choices: tuple[str, ...] = ()


class Conversation(ABC):
    """The core's side of an IVR call, handed to interactive dialers.

    Dialers call ``begin`` when a person answers and ``reply`` with each input; both return
    the next Turn. ``digits`` is "" and ``speech`` None when the caller said nothing before
    the timeout. Calls for unknown or finished attempts get a polite goodbye turn.
    """

    @abstractmethod
    def begin(self, attempt_id: int) -> Turn: ...

    @abstractmethod
    def reply(self, attempt_id: int, digits: str, speech: str | None = None) -> Turn: ...
