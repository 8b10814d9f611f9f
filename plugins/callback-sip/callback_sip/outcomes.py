"""How the end of a SIP call maps to a callback ``EventKind``: pure, so it is tested alone."""

from __future__ import annotations

import enum

from callback.dialing import EventKind


class Ending(enum.StrEnum):
    """Who or what ended a call that was never answered."""

    #: The peer sent a final response (the status code says why).
    PEER = "peer"
    #: Our INVITE transaction timed out (RFC 3261 Timer B): PJSIP made up a 408.
    TIMEOUT = "timeout"
    #: The transport failed: TCP connection refused, no route, DNS failure.
    TRANSPORT = "transport"
    #: We cancelled at the ring timeout.
    RING_TIMEOUT = "ring-timeout"
    #: We gave up because nothing at all came back within ``response_timeout``.
    NO_RESPONSE = "no-response"
    #: We cancelled because the core asked (``Dialer.hangup``) or the dialer was closing.
    CANCELLED = "cancelled"


# RFC 3261 §21 and the outcomes a survey cares about. 603 Decline is a callee (or their phone)
# refusing the call: design.md counts "the callee declined" as no-answer. 410 Gone is what
# carriers send for a number that is no longer in service.
BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({408, 480, 487, 603})
WRONG_NUMBER_CODES = frozenset({404, 410, 484, 604})


def unanswered_outcome(code: int, ending: Ending, heard_from_peer: bool) -> EventKind:
    """Classify the end of a call that was never answered.

    ``heard_from_peer`` is True once any response to the INVITE arrived; a call that ends
    without one never reached anything, whatever PJSIP's made-up status code says.
    """
    if ending is Ending.TRANSPORT or ending is Ending.NO_RESPONSE:
        return EventKind.FAILED
    if ending in (Ending.TIMEOUT, Ending.RING_TIMEOUT, Ending.CANCELLED):
        return EventKind.NO_ANSWER if heard_from_peer else EventKind.FAILED
    if code in BUSY_CODES:
        return EventKind.BUSY
    if code in NO_ANSWER_CODES:
        return EventKind.NO_ANSWER
    if code in WRONG_NUMBER_CODES:
        return EventKind.WRONG_NUMBER
    # 5xx, authentication failures (401/403/407), unresolved redirects and anything else: the
    # call could not be placed, which is the trunk's or our configuration's problem.
    return EventKind.FAILED
