"""``SipDialer``: callback's dialer for a SIP trunk or PBX, with the survey run as an IVR.

This module is the thread-safe face of the dialer; ``callback_sip.engine`` (imported on the
first call, so that listing dialers needs no PJSIP) owns the SIP stack on its own thread. Work
for the core (events, ``Conversation.begin``/``reply``, prompt synthesis) runs on a small pool
of threads with one ordered lane per call (``callback_sip.lanes``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from callback.dialing import (
    ANSWERED_BY_UNKNOWN,
    FINAL_EVENTS,
    CallEvent,
    CallRequest,
    Conversation,
    Dialer,
    DialRejected,
    EventKind,
    EventSink,
    Pacing,
    RetryableDialError,
    Turn,
)
from callback.errors import CallbackError
from callback.phones import mask
from callback.prompt_audio import PromptAudioError, conform_wav, describe_wav, prompt_audio
from callback_sip.ivr import PreparedTurn, voice_for
from callback_sip.lanes import Lanes
from callback_sip.record import CallRecord
from callback_sip.settings import SipSettings, load_settings

if TYPE_CHECKING:
    from callback_sip.engine import Engine

log = logging.getLogger("callback_sip")

#: Finished calls whose last event ``status`` still remembers.
STATUS_MEMORY = 10_000

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SipDialer(Dialer):
    """Place calls through a SIP trunk or PBX and run the survey on them as an IVR.

    ``settings`` is the ``[dialers.sip]`` table (see the plugin's README); ``events`` receives
    every CallEvent; ``conversation`` is the core's side of the IVR. Without a conversation an
    answered call is hung up at once (the dialer is interactive: it has nobody to put through).
    ``clock`` gives the events' timestamps (timezone-aware).
    """

    interactive: ClassVar[bool] = True

    def __init__(
        self,
        settings: Mapping[str, Any],
        events: EventSink,
        conversation: Conversation | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, events)
        self.config: SipSettings = load_settings(settings)
        self.conversation = conversation
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._lanes: Lanes | None = None
        self._closed = False
        self._last: OrderedDict[str, CallEvent] = OrderedDict()
        #: Calls started and not yet ended: they hold PJSIP call slots.
        self._live: set[str] = set()

    @property
    def pacing(self) -> Pacing:
        return Pacing(
            calls_per_second=self.config.calls_per_second,
            max_concurrent=self.config.max_concurrent,
        )

    def open(self) -> None:
        """Start the SIP stack now (bind ports, register) instead of on the first ``start``.

        Optional: a dispatcher may call it at startup so that a port in use or a wrong
        codec list shows before the first call, and a PBX extension is registered early.
        """
        self._running()

    def start(self, call: CallRequest) -> str:
        """Queue the INVITE on the SIP thread and return our call id at once.

        The id is ours (a UUID), not the SIP Call-ID: PJSIP makes that up on its own thread
        when it builds the INVITE. Events carry the SIP Call-ID as ``detail["sip_call_id"]``.
        The first call starts the SIP stack unless ``open`` did, and raises CallbackError if
        it cannot start (port in use, unknown codec, a second SIP dialer in this process).

        Raises ``DialRejected`` (after reporting ``wrong-number``) for a number that is not
        E.164, and ``RetryableDialError`` when every PJSIP call slot is taken.
        """
        engine = self._running()
        try:
            self.config.target_uri(call.to)
        except ValueError as exc:
            event = CallEvent(
                call.attempt_id, "", EventKind.WRONG_NUMBER, self._clock(), {"error": str(exc)}
            )
            self.events(event)
            raise DialRejected(f"cannot dial {mask(call.to)}: {exc}", event) from None
        provider_id = uuid.uuid4().hex
        with self._lock:
            if len(self._live) >= self.config.pjsua_max_calls:
                raise RetryableDialError(
                    f"all {self.config.pjsua_max_calls} SIP call slots are in use "
                    f"(max_concurrent is {self.config.max_concurrent})",
                    retry_after=1.0,
                )
            self._live.add(provider_id)
        ring_timeout = call.ring_timeout if call.ring_timeout > 0 else self.config.ring_timeout
        record = CallRecord(provider_id, call, ring_timeout=float(ring_timeout))
        self._remember(CallEvent(call.attempt_id, provider_id, EventKind.QUEUED, self._clock()))
        engine.post(lambda: engine.place_call(record))
        return provider_id

    def hangup(self, provider_call_id: str) -> None:
        """Cancel a ringing call or say goodbye with BYE; the final event follows as usual."""
        with self._lock:
            engine = self._engine
        if engine is not None and engine.running:
            engine.post(lambda: engine.hang_up(provider_call_id))

    def status(self, provider_call_id: str, attempt_id: int | None = None) -> CallEvent | None:
        """Return the last event of a call placed by this process, or None.

        SIP has no call history to ask after a crash, so a call placed by another process, or
        forgotten after ``STATUS_MEMORY`` newer calls, is unknown. ``attempt_id`` is not
        needed: the events remember their attempt.
        """
        with self._lock:
            return self._last.get(provider_call_id)

    def close(self) -> None:
        """Hang up calls in progress, report their ends, and stop the SIP stack and threads."""
        with self._lock:
            self._closed = True
            engine, lanes = self._engine, self._lanes
        # The engine reports the ends of the calls it hangs up through the lanes, so the lanes
        # close after it.
        if engine is not None:
            engine.stop()
        if lanes is not None:
            lanes.close()
        with self._lock:
            self._engine = self._lanes = None

    def __enter__(self) -> SipDialer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- wiring -----------------------------------------------------------------------------

    def _running(self) -> Engine:
        with self._lock:
            if self._closed:
                raise CallbackError("the SIP dialer is closed")
            if self._engine is not None:
                if not self._engine.running:
                    raise CallbackError("the SIP stack has stopped; see the callback_sip log")
                return self._engine
            from callback_sip.engine import Engine

            lanes = Lanes(workers=max(2, self.config.max_concurrent))
            engine = Engine(
                self.config,
                report=self._report,
                ask=self._ask,
                interactive=self.conversation is not None,
            )
            self._lanes = lanes
            try:
                engine.start()
            except BaseException:
                self._lanes = None
                lanes.close()
                raise
            self._engine = engine
            return engine

    def _remember(self, event: CallEvent) -> None:
        with self._lock:
            if event.kind in FINAL_EVENTS:
                self._live.discard(event.provider_call_id)
            self._last[event.provider_call_id] = event
            self._last.move_to_end(event.provider_call_id)
            while len(self._last) > STATUS_MEMORY:
                self._last.popitem(last=False)

    def _report(
        self, provider_id: str, attempt_id: int, kind: EventKind, detail: dict[str, Any]
    ) -> None:
        """Called on the SIP thread: stamp the event now, deliver it on the call's lane.

        SIP has no answering-machine detection (a 200 OK is the same whoever picks up), so
        an answer comes with the verdict "cannot tell" at once, never with a promise of one.
        """
        verdict = ANSWERED_BY_UNKNOWN if kind is EventKind.ANSWERED else None
        event = CallEvent(attempt_id, provider_id, kind, self._clock(), detail, verdict)
        self._remember(event)
        lanes = self._lanes
        if lanes is not None:
            lanes.submit(provider_id, lambda: self.events(event))

    def _ask(self, provider_id: str, attempt_id: int, digits: str | None) -> None:
        """Called on the SIP thread: fetch the next turn on the call's lane, then play it."""
        engine, lanes = self._engine, self._lanes
        if engine is None or lanes is None:
            return

        def next_turn() -> None:
            result: PreparedTurn | BaseException
            try:
                conversation = self.conversation
                if conversation is None:
                    raise CallbackError("the SIP dialer was built without a conversation")
                if digits is None:
                    turn = conversation.begin(attempt_id)
                else:
                    turn = conversation.reply(attempt_id, digits)
                result = self._prepare(turn)
            except Exception as exc:
                result = exc
            engine.post(lambda: engine.deliver_turn(provider_id, result))

        lanes.submit(provider_id, next_turn)

    def _prepare(self, turn: Turn) -> PreparedTurn:
        """Find or make the audio of a turn: its own file, a recording, or synthesised text."""
        cache = self.config.prompt_cache
        audio: Path | None = None
        if turn.audio:
            try:
                audio = conform_wav(turn.audio, cache)
            except (PromptAudioError, OSError) as exc:
                log.warning("prompt audio %s unusable (%s); speaking the text", turn.audio, exc)
        if audio is None and turn.text.strip():
            # SIP carries audio, not text: render the text (cached by a hash of voice and text).
            audio = prompt_audio(
                turn.text,
                cache,
                recorded_dir=self.config.recorded_prompts,
                voice=voice_for(turn.language, self.config.voice),
            )
        seconds = describe_wav(audio).seconds if audio is not None else 0.0
        return PreparedTurn(turn, audio, seconds)
