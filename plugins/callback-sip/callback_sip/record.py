"""``CallRecord``: what the PJSIP thread knows of one call, from its INVITE to its final event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callback.dialing import CallRequest
from callback_sip.ivr import PreparedTurn, TurnProgress
from callback_sip.outcomes import Ending


@dataclass
class CallRecord:
    """What the engine knows of one call; touched only on the PJSIP thread."""

    provider_id: str
    request: CallRequest
    ring_timeout: float
    call: Any = None  # callback_sip.calls.SipCall while the call lives
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
