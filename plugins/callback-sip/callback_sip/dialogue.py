"""The IVR on an answered call: play each turn's prompt, take its keys, ask the core for more.

One turn's rules (deadlines, finish key, type-ahead) are pure and live in ``callback_sip.ivr``;
this module is their pjsua2 side: the extension keyed as RFC 2833 digits, prompt players on
the conference bridge, keys received as RFC 2833 or SIP INFO. Like the rest of the engine it
runs only on the PJSIP thread (``callback_sip.engine``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from callback_sip.ivr import PreparedTurn, TurnProgress
from callback_sip.record import CallRecord
from callback_sip.settings import SipSettings

log = logging.getLogger("callback_sip")

#: Ask the core for the next turn: (provider call id, attempt id, digits or None for the first).
Ask = Callable[[str, int, str | None], None]


class EndCall(Protocol):
    """End a call with CANCEL or BYE, as ``callback_sip.calls.Calls.end_call`` does."""

    def __call__(self, record: CallRecord, reason: str, **extra: Any) -> None: ...


class Dialogue:
    """Run the survey's turns on answered calls; touched only on the PJSIP thread.

    ``graveyard`` takes the prompt players this releases: they must not die inside the PJSIP
    callback that stopped them, so the engine drops them between polls.
    """

    def __init__(
        self,
        settings: SipSettings,
        ask: Ask,
        end_call: EndCall,
        graveyard: list[Any],
        *,
        interactive: bool,
    ) -> None:
        self._settings = settings
        self._ask = ask
        self._end_call = end_call
        self._graveyard = graveyard
        self._interactive = interactive

    def answered(self, record: CallRecord, now: float) -> None:
        """Key the call's extension, then ask the core for the first turn (or hang up)."""
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

    def deliver_turn(self, record: CallRecord, result: PreparedTurn | BaseException) -> None:
        """Take the core's next turn (or its failure) for a call and play it."""
        if record.answered_at is None or record.local_hangup is not None:
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

    def tick(self, record: CallRecord, now: float) -> None:
        """Start a held turn, end a prompt by the clock and hand back a turn that is over."""
        if record.pending_turn is not None and now >= record.hold_until:
            prepared, record.pending_turn = record.pending_turn, None
            self._start_turn(record, prepared, now)
        progress = record.progress
        if progress is None:
            return
        # By the clock, not by onEof2: see "Prompt playback" in callback_sip.engine.
        if record.player is not None and now >= progress.prompt_ends_at:
            self.stop_prompt(record)
        if progress.is_due(now):
            self._complete_turn(record)

    def on_digit(self, record: CallRecord, prm: pj.OnDtmfDigitParam) -> None:
        """Take a key the callee pressed: for the listening turn, or as type-ahead."""
        if record.answered_at is None or record.local_hangup is not None:
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
            self.stop_prompt(record)
        if progress.finished:
            self._complete_turn(record)

    def stop_prompt(self, record: CallRecord) -> None:
        """Stop the prompt playing into a call, if any."""
        player, record.player = record.player, None
        if player is not None:
            # Destroying the player removes it from the bridge; it dies after this callback.
            self._graveyard.append(player)

    def _start_turn(self, record: CallRecord, prepared: PreparedTurn, now: float) -> None:
        self.stop_prompt(record)
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
                self.stop_prompt(record)

    def _complete_turn(self, record: CallRecord) -> None:
        progress = record.progress
        if progress is None:
            return
        record.progress = None
        self.stop_prompt(record)
        if progress.turn.hangup:
            record.survey_finished = True
            self._end_call(record, "survey-finished")
            return
        record.awaiting_core = True
        digits = progress.digits if progress.collects_digits else ""
        self._ask(record.provider_id, record.request.attempt_id, digits)
