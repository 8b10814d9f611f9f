"""The PJSIP thread: it owns the endpoint (``callback_sip.endpoint``), a command queue and a poll.

Threading model (why it looks like this):

* PJSIP keeps one endpoint per process and wants every thread that calls it registered
  (pj_thread_register); pjsua2 objects (Call, Account, AudioMediaPlayer) must also be destroyed
  on such a thread. Python's garbage collector may drop an object on any thread, so the only
  safe rule is: **one thread creates, calls and drops every pjsua2 object** — this one. It
  calls ``libCreate`` (which makes it PJSIP's "main thread"), ``libHandleEvents`` in a loop,
  and ``libDestroy`` at the end.
* ``UaConfig.threadCnt = 0`` stops PJSIP from starting SIP worker threads, so SIP messages and
  timers are handled inside ``libHandleEvents`` here. RTP keeps PJSIP's own media thread (the
  jitter buffer needs steady service), and the null sound device's clock thread drives the
  conference bridge that plays prompts. Both are C threads; with ``mainThreadOnly = True``
  pjsua2 posts their callbacks (RFC 2833 digits, log lines) as pending jobs that run inside
  ``libHandleEvents`` on this thread (pjsua2 endpoint.cpp, ``utilAddPendingJob``). So every
  Python callback from PJSIP runs here, one at a time, and needs no lock.
* The SWIG wrapper releases the GIL inside ``libHandleEvents`` (the wheel is built with
  ``-threads``), so a 10 ms poll costs other Python threads nothing.
* Other threads talk to this one only through ``post`` (a SimpleQueue of callables run between
  polls), and this one talks back only through the ``report`` and ``ask`` callables the dialer
  hands in; those queue work for the core on other threads (``lanes.Lanes``) and return at once,
  because a slow database write here would stall every call's signalling.
* Prompt playback ends by the clock (the WAV's length from its header), not by pjsua2's
  ``onEof2``: that callback comes from the bridge's clock thread and is *not* posted to the main
  thread, so using it would bring a second Python thread into PJSIP.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from callback.dialing import CallRequest, EventKind
from callback.errors import CallbackError, ConfigError
from callback.phones import mask
from callback_sip.endpoint import POLL_MS, UNREGISTER_TIMEOUT, SipEndpoint
from callback_sip.ivr import PreparedTurn, TurnProgress
from callback_sip.outcomes import Ending, unanswered_outcome
from callback_sip.settings import TABLE, SipSettings

log = logging.getLogger("callback_sip")

#: Seconds close() lets calls hang up (BYE/CANCEL answered) before it gives up on them.
CLOSE_TIMEOUT = 5.0
#: Seconds close() keeps polling after hanging calls up, for the peer's 487/200 and our ACK.
CLOSE_LINGER = 0.5

#: Report an event: (provider call id, attempt id, kind, detail).
Report = Callable[[str, int, EventKind, dict[str, Any]], None]
#: Ask the core for the next turn: (provider call id, attempt id, digits or None for the first).
Ask = Callable[[str, int, str | None], None]

# PJSIP has one endpoint per process; a second Engine would fail deep inside libCreate.
_PROCESS_CLAIM = threading.Lock()


@dataclass
class CallRecord:
    """What the engine knows of one call; touched only on the PJSIP thread."""

    provider_id: str
    request: CallRequest
    ring_timeout: float
    call: Any = None  # _SipCall while the call lives
    sip_call_id: str = ""
    invite_at: float = 0.0
    queued: bool = False
    ringing_at: float | None = None
    answered_at: float | None = None
    #: Any response at all (even 100 Trying) came back from the peer.
    heard_from_peer: bool = False
    #: Why we ended a call that was not answered (cancel at ring timeout, ...).
    ending: Ending | None = None
    #: Why we ended an answered call ("survey-finished", "hangup-requested", ...).
    local_hangup: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    progress: TurnProgress | None = None
    pending_turn: PreparedTurn | None = None
    awaiting_core: bool = False
    #: Keys pressed while no turn was listening; the next listening turn takes them.
    typeahead: list[str] = field(default_factory=list)
    dtmf_methods: set[str] = field(default_factory=set)
    player: Any = None
    hold_until: float = 0.0
    turns: int = 0
    survey_finished: bool = False
    finished: bool = False


class _SipCall(pj.Call):
    """A pjsua2 Call that hands its callbacks to the engine.

    A Python exception must never escape a SWIG director callback (it would unwind through
    C code), so every callback goes through ``Engine._guard``.
    """

    def __init__(self, account: pj.Account, engine: Engine, provider_id: str) -> None:
        super().__init__(account)
        self._engine = engine
        self._provider_id = provider_id

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pjsua2 name
        self._engine._guard(self._engine._on_call_state, self._provider_id, prm)

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:  # noqa: N802
        self._engine._guard(self._engine._on_tsx_state, self._provider_id, prm)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        self._engine._guard(self._engine._on_digit, self._provider_id, prm)


class Engine:
    """Owns the PJSIP thread. ``start``, ``post`` and ``stop`` may be called from any thread."""

    def __init__(
        self, settings: SipSettings, report: Report, ask: Ask, *, interactive: bool = True
    ) -> None:
        self._settings = settings
        self._report = report
        self._ask = ask
        self._interactive = interactive
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="callback-sip", daemon=True)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._startup_error: BaseException | None = None
        # Everything below belongs to the PJSIP thread.
        self._endpoint = SipEndpoint(settings)
        self._calls: dict[str, CallRecord] = {}
        self._graveyard: list[Any] = []
        self._closing = False

    # -- any thread ------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the PJSIP thread and wait until it is ready; raise what stopped it."""
        if not _PROCESS_CLAIM.acquire(blocking=False):
            raise ConfigError(
                f"{TABLE}: only one SIP dialer can run in a process (PJSIP keeps one endpoint "
                "per process); close the other one first"
            )
        try:
            self._thread.start()
        except BaseException:
            _PROCESS_CLAIM.release()
            raise
        if not self._ready.wait(timeout):
            self._stop.set()  # if it ever gets going, it shuts down again
            raise CallbackError(f"the SIP stack did not start within {timeout:g} seconds")
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            if isinstance(error, CallbackError):
                raise error
            raise CallbackError(f"the SIP stack failed to start: {error}") from error

    def post(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the PJSIP thread between two polls."""
        self._commands.put(command)

    def stop(self) -> None:
        """Hang up every call, wait for them to end (bounded), and destroy the endpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(CLOSE_TIMEOUT + UNREGISTER_TIMEOUT + 5.0)
            if self._thread.is_alive():
                log.error("the PJSIP thread did not stop; abandoning it")

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    # -- commands (posted by the dialer, run on the PJSIP thread) --------------------------

    def place_call(self, record: CallRecord) -> None:
        """Send the INVITE for ``record``."""
        if self._closing:
            self._report_final_unplaced(record, EventKind.FAILED, "the dialer is closing")
            return
        try:
            uri = self._settings.target_uri(record.request.to)
        except ValueError as exc:
            self._report_final_unplaced(record, EventKind.WRONG_NUMBER, str(exc))
            return
        # pjsua frees a call's slot at DISCONNECTED, but the dead Call object still holds the
        # slot number, and its C++ destructor clears that slot's user data and hangs up
        # whatever call is active there (pjsua2 call.cpp, Call::~Call). Drop dead calls before
        # makeCall can hand their slot to a new call.
        self._graveyard.clear()
        try:
            account = self._endpoint.account(record.request.caller_id)
        except pj.Error as exc:
            self._report_final_unplaced(record, EventKind.FAILED, exc.reason)
            return
        call = _SipCall(account, self, record.provider_id)
        record.call = call
        self._calls[record.provider_id] = record
        param = pj.CallOpParam(True)
        param.opt.audioCount = 1
        param.opt.videoCount = 0
        record.invite_at = time.monotonic()
        log.info("calling %s for attempt %s", mask(record.request.to), record.request.attempt_id)
        try:
            call.makeCall(uri, param)
        except pj.Error as exc:
            # Raised before anything was sent: a bad URI, no transport, no free call slot.
            if not record.finished:
                record.ending = Ending.TRANSPORT
                self._finish(record, EventKind.FAILED, self._detail(record, error=exc.reason))

    def hang_up(self, provider_id: str, reason: str = "hangup-requested") -> None:
        """End a call in progress: CANCEL before answer, BYE after."""
        record = self._calls.get(provider_id)
        if record is not None:
            self._end_call(record, reason)

    def deliver_turn(self, provider_id: str, result: PreparedTurn | BaseException) -> None:
        """Take the core's next turn (or its failure) for a call and play it."""
        record = self._calls.get(provider_id)
        if record is None or record.answered_at is None or record.local_hangup is not None:
            return  # the call ended while the core was thinking
        record.awaiting_core = False
        if isinstance(result, BaseException):
            log.error("no next turn for attempt %s: %s", record.request.attempt_id, result)
            self._end_call(record, "conversation-error", error=str(result))
            return
        if time.monotonic() < record.hold_until:
            record.pending_turn = result
            return
        self._start_turn(record, result, time.monotonic())

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._endpoint.open()
            except BaseException as exc:
                self._startup_error = exc
                self._endpoint.close()
                return
            finally:
                self._ready.set()
            try:
                self._loop()
            except Exception:
                log.exception("the SIP polling loop failed; ending every call")
            self._shutdown()
        finally:
            _PROCESS_CLAIM.release()

    def _loop(self) -> None:
        give_up_at = linger_until = 0.0
        while True:
            self._endpoint.poll(POLL_MS)
            self._graveyard.clear()
            self._run_commands()
            now = time.monotonic()
            self._tick(now)
            # pjsua2 objects released by callbacks die here, outside any PJSIP callback.
            self._graveyard.clear()
            if self._stop.is_set():
                if not self._closing:
                    self._closing = True
                    give_up_at = now + CLOSE_TIMEOUT
                    # pjsua reports a call DISCONNECTED as soon as it sends CANCEL or BYE; the
                    # peer's 487 (which we must ACK) or 200 comes later, and pjsua2 cannot tell
                    # us when those transactions end: keep polling a little after the last call.
                    linger_until = now + (CLOSE_LINGER if self._calls else 0.0)
                    for record in list(self._calls.values()):
                        self._end_call(record, "dialer-closing")
                if (not self._calls and now >= linger_until) or now >= give_up_at:
                    return

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            self._guard(command)

    def _guard(self, function: Callable[..., None], *args: Any) -> None:
        """Run a callback; log instead of raising (exceptions must not reach PJSIP's C code)."""
        try:
            function(*args)
        except Exception:
            log.exception("error in the SIP dialer's %s", getattr(function, "__name__", function))

    # -- endpoint life -----------------------------------------------------------------------

    def _shutdown(self) -> None:
        self._closing = True
        for record in list(self._calls.values()):
            self._force_finish(record)
        self._graveyard.clear()
        # Commands that arrived too late: calls posted during close never started.
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            self._guard(command)
        self._graveyard.clear()
        self._endpoint.close()

    # -- call progress ------------------------------------------------------------------------

    def _on_tsx_state(self, provider_id: str, prm: pj.OnCallTsxStateParam) -> None:
        record = self._calls.get(provider_id)
        event = prm.e
        if record is None or event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        # 100 Trying changes no call state; this is where we learn that the peer is alive.
        if event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            record.heard_from_peer = True

    def _on_call_state(self, provider_id: str, prm: pj.OnCallStateParam) -> None:
        record = self._calls.get(provider_id)
        if record is None or record.finished:
            return
        info = record.call.getInfo()
        now = time.monotonic()
        if not record.sip_call_id:
            record.sip_call_id = info.callIdString
        state = info.state
        if state == pj.PJSIP_INV_STATE_CALLING and not record.queued:
            record.queued = True
            self._emit(record, EventKind.QUEUED, {"sip_call_id": record.sip_call_id})
        elif state == pj.PJSIP_INV_STATE_EARLY:
            record.heard_from_peer = True
            if record.ringing_at is None:
                record.ringing_at = now
                self._emit(
                    record,
                    EventKind.RINGING,
                    self._detail(record, status=info.lastStatusCode, reason=info.lastReason),
                )
        elif state == pj.PJSIP_INV_STATE_CONNECTING:
            record.heard_from_peer = True
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and record.answered_at is None:
            self._answered(record, info, now)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._disconnected(record, info, prm, now)

    def _answered(self, record: CallRecord, info: Any, now: float) -> None:
        record.answered_at = now
        record.heard_from_peer = True
        detail = self._detail(record, status=info.lastStatusCode, reason=info.lastReason)
        detail["ring_seconds"] = _seconds(now - record.invite_at)
        self._emit(record, EventKind.ANSWERED, detail)
        if record.request.extension:
            try:
                record.call.dialDtmf(record.request.extension)
                # RFC 2833 digits go out ~200 ms apart; let them finish before the first prompt.
                record.hold_until = now + 0.25 * len(record.request.extension) + 0.5
            except pj.Error as exc:
                log.warning("could not key the extension: %s", exc.reason)
        if not self._interactive:
            self._end_call(record, "no-conversation")
            return
        record.awaiting_core = True
        self._ask(record.provider_id, record.request.attempt_id, None)

    def _disconnected(self, record: CallRecord, info: Any, prm: Any, now: float) -> None:
        detail = self._detail(record, status=info.lastStatusCode, reason=info.lastReason)
        if record.answered_at is not None:
            assert record.answered_at is not None
            detail["ring_seconds"] = _seconds(record.answered_at - record.invite_at)
            detail["talk_seconds"] = _seconds(now - record.answered_at)
            detail["hangup_by"] = "dialer" if record.local_hangup else "callee"
            if record.local_hangup:
                detail["hangup_reason"] = record.local_hangup
            detail["survey_finished"] = record.survey_finished
            detail["turns"] = record.turns
            detail.update(record.extra)
            self._finish(record, EventKind.COMPLETED, detail)
            return
        ending = record.ending or _ending_of(prm.e)
        detail["ring_seconds"] = _seconds(now - record.invite_at)
        detail["ending"] = ending.value
        if ending is Ending.RING_TIMEOUT:
            detail["ring_timeout"] = True
        detail.update(record.extra)
        kind = unanswered_outcome(info.lastStatusCode, ending, record.heard_from_peer)
        self._finish(record, kind, detail)

    def _tick(self, now: float) -> None:
        for record in list(self._calls.values()):
            if record.answered_at is None:
                if record.ending is not None:
                    continue  # already cancelling
                waited = now - record.invite_at
                if not record.heard_from_peer and waited >= self._settings.response_timeout:
                    self._cancel(record, Ending.NO_RESPONSE)
                elif waited >= record.ring_timeout:
                    self._cancel(record, Ending.RING_TIMEOUT)
                continue
            if record.local_hangup is not None:
                continue
            if record.pending_turn is not None and now >= record.hold_until:
                prepared, record.pending_turn = record.pending_turn, None
                self._start_turn(record, prepared, now)
            progress = record.progress
            if progress is None:
                continue
            if record.player is not None and now >= progress.prompt_ends_at:
                self._stop_prompt(record)
            if progress.is_due(now):
                self._complete_turn(record)

    # -- the IVR ------------------------------------------------------------------------------

    def _start_turn(self, record: CallRecord, prepared: PreparedTurn, now: float) -> None:
        self._stop_prompt(record)
        progress = TurnProgress(prepared, started_at=now)
        record.progress = progress
        record.turns += 1
        if prepared.audio is not None:
            try:
                media = record.call.getAudioMedia(-1)  # -1: the first active audio stream
                player = pj.AudioMediaPlayer()
                player.createPlayer(str(prepared.audio), pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(media)
            except pj.Error as exc:
                attempt = record.request.attempt_id
                log.error("cannot play a prompt on attempt %s: %s", attempt, exc.reason)
                self._end_call(record, "no-media", error=exc.reason)
                return
            record.player = player
        if progress.collects_digits and record.typeahead:
            keys, record.typeahead = record.typeahead, []
            for index, key in enumerate(keys):
                if progress.feed(key, now):
                    record.typeahead = keys[index + 1 :]
                    break
            if self._settings.barge_in:
                self._stop_prompt(record)

    def _on_digit(self, provider_id: str, prm: pj.OnDtmfDigitParam) -> None:
        record = self._calls.get(provider_id)
        if record is None or record.answered_at is None or record.local_hangup is not None:
            return
        record.dtmf_methods.add(
            "sip-info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833"
        )
        key = prm.digit
        progress = record.progress
        if progress is not None and progress.turn.hangup:
            return  # the goodbye is playing; nothing more to collect
        if progress is None or not progress.collects_digits or progress.finished:
            record.typeahead.append(key)
            return
        progress.feed(key, time.monotonic())
        if self._settings.barge_in:
            self._stop_prompt(record)
        if progress.finished:
            self._complete_turn(record)

    def _complete_turn(self, record: CallRecord) -> None:
        progress = record.progress
        if progress is None:
            return
        record.progress = None
        self._stop_prompt(record)
        if progress.turn.hangup:
            record.survey_finished = True
            self._end_call(record, "survey-finished")
            return
        record.awaiting_core = True
        digits = progress.digits if progress.collects_digits else ""
        self._ask(record.provider_id, record.request.attempt_id, digits)

    def _stop_prompt(self, record: CallRecord) -> None:
        player, record.player = record.player, None
        if player is not None:
            # Destroying the player removes it from the bridge; it dies after this callback.
            self._graveyard.append(player)

    # -- ending calls -----------------------------------------------------------------------------

    def _end_call(self, record: CallRecord, reason: str, **extra: Any) -> None:
        if record.finished:
            return
        if record.answered_at is None:
            record.extra.update(extra)
            self._cancel(record, Ending.CANCELLED, reason)
            return
        if record.local_hangup is not None:
            return
        record.local_hangup = reason
        record.extra.update(extra)
        record.progress = None
        record.pending_turn = None
        self._stop_prompt(record)
        try:
            record.call.hangup(pj.CallOpParam())
        except pj.Error as exc:
            log.warning("BYE failed on attempt %s: %s", record.request.attempt_id, exc.reason)
            self._force_finish(record)

    def _cancel(self, record: CallRecord, ending: Ending, reason: str | None = None) -> None:
        if record.ending is not None or record.finished:
            return
        record.ending = ending
        if reason:
            record.extra["cancel_reason"] = reason
        try:
            # Before any provisional response PJSIP may not send CANCEL (RFC 3261 §9.1); it
            # then ends the call locally with 487, which _disconnected handles the same way.
            record.call.hangup(pj.CallOpParam())
        except pj.Error as exc:
            log.warning("CANCEL failed on attempt %s: %s", record.request.attempt_id, exc.reason)
            self._force_finish(record)

    def _force_finish(self, record: CallRecord) -> None:
        """Report a call that PJSIP could not end in time as ended anyway."""
        if record.finished:
            return
        now = time.monotonic()
        detail = self._detail(record, forced=True)
        if record.answered_at is not None:
            detail["ring_seconds"] = _seconds(record.answered_at - record.invite_at)
            detail["talk_seconds"] = _seconds(now - record.answered_at)
            detail["hangup_by"] = "dialer"
            detail["hangup_reason"] = record.local_hangup or "dialer-closing"
            detail["survey_finished"] = record.survey_finished
            detail["turns"] = record.turns
            self._finish(record, EventKind.COMPLETED, detail)
        else:
            ending = record.ending or Ending.CANCELLED
            detail["ring_seconds"] = _seconds(now - record.invite_at)
            detail["ending"] = ending.value
            self._finish(record, unanswered_outcome(0, ending, record.heard_from_peer), detail)

    def _finish(self, record: CallRecord, kind: EventKind, detail: dict[str, Any]) -> None:
        if record.finished:
            return
        record.finished = True
        self._stop_prompt(record)
        self._calls.pop(record.provider_id, None)
        if record.call is not None:
            # We may be inside this Call's own callback; it is dropped after the poll returns.
            self._graveyard.append(record.call)
            record.call = None
        if record.dtmf_methods:
            detail["dtmf"] = sorted(record.dtmf_methods)
        self._emit(record, kind, detail)

    def _report_final_unplaced(self, record: CallRecord, kind: EventKind, reason: str) -> None:
        record.finished = True
        self._emit(record, kind, {"error": reason, "ring_seconds": 0.0})

    def _emit(self, record: CallRecord, kind: EventKind, detail: dict[str, Any]) -> None:
        self._report(record.provider_id, record.request.attempt_id, kind, detail)

    def _detail(
        self,
        record: CallRecord,
        *,
        status: int | None = None,
        reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        detail: dict[str, Any] = {"sip_call_id": record.sip_call_id}
        if status is not None:
            detail["sip_status"] = int(status)
            detail["sip_reason"] = reason or ""
        detail.update(extra)
        return detail


def _ending_of(event: Any) -> Ending:
    """Tell from the SipEvent that ended a call whether the peer, a timer or a transport did."""
    if event.type == pj.PJSIP_EVENT_TSX_STATE:
        source = event.body.tsxState.type
        if source == pj.PJSIP_EVENT_TIMER:
            return Ending.TIMEOUT
        if source == pj.PJSIP_EVENT_TRANSPORT_ERROR:
            return Ending.TRANSPORT
    return Ending.PEER


def _seconds(value: float) -> float:
    return round(max(value, 0.0), 3)
