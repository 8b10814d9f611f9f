"""The SIP side of each call: INVITE, call states to events, ring timeouts, CANCEL and BYE.

Like the rest of the engine this runs only on the PJSIP thread (``callback_sip.engine``);
what happens on a call once it is answered is ``callback_sip.dialogue``'s business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from callback.dialing import EventKind
from callback.phones import mask
from callback_sip.dialogue import Ask, Dialogue
from callback_sip.endpoint import SipEndpoint
from callback_sip.ivr import PreparedTurn
from callback_sip.outcomes import Ending, unanswered_outcome
from callback_sip.record import CallRecord
from callback_sip.settings import SipSettings

log = logging.getLogger("callback_sip")

#: Report an event: (provider call id, attempt id, kind, detail).
Report = Callable[[str, int, EventKind, dict[str, Any]], None]


def guard(function: Callable[..., None], *args: Any) -> None:
    """Run a callback; log instead of raising (exceptions must not reach PJSIP's C code)."""
    try:
        function(*args)
    except Exception:
        log.exception("error in the SIP dialer's %s", getattr(function, "__name__", function))


class SipCall(pj.Call):
    """A pjsua2 Call that hands its callbacks to the ``Calls`` that placed it.

    A Python exception must never escape a SWIG director callback (it would unwind through
    C code), so every callback goes through ``guard``.
    """

    def __init__(self, account: pj.Account, calls: Calls, provider_id: str) -> None:
        super().__init__(account)
        self._calls = calls
        self._provider_id = provider_id

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pjsua2 name
        guard(self._calls._on_call_state, self._provider_id, prm)

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:  # noqa: N802
        guard(self._calls._on_tsx_state, self._provider_id, prm)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        guard(self._calls._on_digit, self._provider_id, prm)


class Calls:
    """The calls in progress and their SIP state machine; touched only on the PJSIP thread.

    ``graveyard`` takes the pjsua2 Calls this releases: they must not die inside their own
    callbacks, so the engine drops them between polls.
    """

    def __init__(
        self,
        settings: SipSettings,
        endpoint: SipEndpoint,
        report: Report,
        ask: Ask,
        graveyard: list[Any],
        *,
        interactive: bool,
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._report = report
        self._graveyard = graveyard
        self._records: dict[str, CallRecord] = {}
        self._dialogue = Dialogue(settings, ask, self.end_call, graveyard, interactive=interactive)
        #: Set once the dialer closes: calls placed from then on fail without an INVITE.
        self.closing = False

    def __len__(self) -> int:
        """Count the calls in progress."""
        return len(self._records)

    # -- commands (posted by the dialer through the engine) ---------------------------------

    def place_call(self, record: CallRecord) -> None:
        """Send the INVITE for ``record``."""
        if self.closing:
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
        call = SipCall(account, self, record.provider_id)
        record.call = call
        self._records[record.provider_id] = record
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
        record = self._records.get(provider_id)
        if record is not None:
            self.end_call(record, reason)

    def deliver_turn(self, provider_id: str, result: PreparedTurn | BaseException) -> None:
        """Take the core's next turn (or its failure) for a call and play it."""
        record = self._records.get(provider_id)
        if record is not None:
            self._dialogue.deliver_turn(record, result)

    # -- the engine's loop ------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Give up on calls past their response or ring timeout; move answered calls along."""
        for record in list(self._records.values()):
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
            self._dialogue.tick(record, now)

    def end_all(self, reason: str) -> None:
        """End every call in progress; their final events follow as PJSIP ends them."""
        for record in list(self._records.values()):
            self.end_call(record, reason)

    def force_finish_all(self) -> None:
        """Report every call still in progress as ended, without waiting for PJSIP."""
        for record in list(self._records.values()):
            self._force_finish(record)

    # -- call progress ------------------------------------------------------------------------

    def _on_tsx_state(self, provider_id: str, prm: pj.OnCallTsxStateParam) -> None:
        record = self._records.get(provider_id)
        event = prm.e
        if record is None or event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        # 100 Trying changes no call state; this is where we learn that the peer is alive.
        if event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            record.heard_from_peer = True

    def _on_call_state(self, provider_id: str, prm: pj.OnCallStateParam) -> None:
        record = self._records.get(provider_id)
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

    def _on_digit(self, provider_id: str, prm: pj.OnDtmfDigitParam) -> None:
        record = self._records.get(provider_id)
        if record is not None:
            self._dialogue.on_digit(record, prm)

    def _answered(self, record: CallRecord, info: Any, now: float) -> None:
        record.answered_at = now
        record.heard_from_peer = True
        detail = self._detail(record, status=info.lastStatusCode, reason=info.lastReason)
        detail["ring_seconds"] = _seconds(now - record.invite_at)
        self._emit(record, EventKind.ANSWERED, detail)
        self._dialogue.answered(record, now)

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

    # -- ending calls -----------------------------------------------------------------------------

    def end_call(self, record: CallRecord, reason: str, **extra: Any) -> None:
        """End a call: CANCEL before answer, BYE after; ``extra`` goes into its final event."""
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
        self._dialogue.stop_prompt(record)
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
        self._dialogue.stop_prompt(record)
        self._records.pop(record.provider_id, None)
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
