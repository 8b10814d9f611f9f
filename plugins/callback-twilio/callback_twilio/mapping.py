"""What Twilio's words for a call (CallStatus, AnsweredBy, SIP codes) mean as CallEvents.

Pure functions: webhook parameters and REST fields in, ``CallEvent``s out. Sources:
Twilio's Call resource (``status``), status callbacks (``CallStatus``, ``SipResponseCode``,
``Timestamp``, ``SequenceNumber``) and answering machine detection (``AnsweredBy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from callback.dialing import ANSWERED_BY_PERSON, ANSWERED_BY_UNKNOWN, CallEvent, EventKind

#: Twilio CallStatus -> EventKind, before AnsweredBy and SIP codes refine it.
CALL_STATUS_EVENTS: Mapping[str, EventKind] = {
    "queued": EventKind.QUEUED,
    # "initiated" means Twilio handed the call to a carrier; nothing rings yet, so to us it is
    # still waiting like "queued".
    "initiated": EventKind.QUEUED,
    "ringing": EventKind.RINGING,
    "in-progress": EventKind.ANSWERED,
    "completed": EventKind.COMPLETED,
    "busy": EventKind.BUSY,
    # Twilio reports a declined call (SIP 603) as no-answer too, which is what EventKind wants.
    "no-answer": EventKind.NO_ANSWER,
    "failed": EventKind.FAILED,
    # "canceled" is our own hangup() of a queued or ringing call. It says nothing about the
    # number or the person, so it is a technical failure, not a no-answer that would count
    # toward non-contact.
    "canceled": EventKind.FAILED,
}

#: Twilio AnsweredBy -> EventKind.
ANSWERED_BY_EVENTS: Mapping[str, EventKind] = {
    "human": EventKind.ANSWERED,
    "machine_start": EventKind.MACHINE,
    "machine_end_beep": EventKind.MACHINE,
    "machine_end_silence": EventKind.MACHINE,
    "machine_end_other": EventKind.MACHINE,
    # A fax line is no person's phone either; detail["AnsweredBy"] == "fax" lets the core
    # tell it from voicemail (AAPOR codes fax lines apart).
    "fax": EventKind.MACHINE,
    # Twilio could not tell. A person may be there, and the survey itself finds out (no
    # keys pressed), whereas calling it a machine would hang up on a citizen.
    "unknown": EventKind.ANSWERED,
}

#: AnsweredBy -> CallEvent.answered_by, the core's words for detection's verdict on an
#: answered call (a machine is its own event kind; no AnsweredBy, no verdict yet).
ANSWERED_BY_VERDICTS: Mapping[str, str] = {
    "human": ANSWERED_BY_PERSON,
    "unknown": ANSWERED_BY_UNKNOWN,
}

#: SIP answers that mean the number does not exist: 404 Not Found, 410 Gone (number changed or
#: withdrawn, 已停机/改号), 484 Address Incomplete, 604 Does Not Exist Anywhere.
WRONG_NUMBER_SIP_CODES = frozenset({404, 410, 484, 604})

#: Twilio error codes that mean the same (https://www.twilio.com/docs/api/errors):
#: 13223 invalid phone number format, 13224 number invalid or not supported, 21211 invalid
#: 'To' number, 21214 'To' cannot be reached, 21217 number does not appear valid,
#: 21401 invalid phone number.
WRONG_NUMBER_ERROR_CODES = frozenset({13223, 13224, 21211, 21214, 21217, 21401})

#: Webhook parameters kept in CallEvent.detail, in Twilio's own spelling.
DETAIL_PARAMS = (
    "CallStatus",
    "AnsweredBy",
    "CallDuration",
    "SipResponseCode",
    "ErrorCode",
    "ErrorMessage",
    "MachineDetectionDuration",
    "SequenceNumber",
    "Timestamp",
)
_INTEGER_PARAMS = frozenset(
    {"CallDuration", "SipResponseCode", "ErrorCode", "MachineDetectionDuration", "SequenceNumber"}
)

#: The webhooks Twilio calls for one attempt (paths /twilio/<kind>/<attempt_id>).
WEBHOOK_KINDS = ("voice", "gather", "status", "amd")


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _first(value: Any) -> Any:
    # Form parsers hand over lists (parse_qs) or single values; Twilio sends each name once.
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def event_detail(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the parameters worth storing, with numbers as ints (SIP and error codes)."""
    detail: dict[str, Any] = {}
    for name in DETAIL_PARAMS:
        value = _first(params.get(name))
        if value is None or value == "":
            continue
        if name in _INTEGER_PARAMS:
            number = _integer(value)
            detail[name] = number if number is not None else value
        else:
            detail[name] = value
    return detail


def is_wrong_number(sip_response_code: Any = None, error_code: Any = None) -> bool:
    """Return True when a SIP answer or Twilio error code says the number does not exist."""
    return (
        _integer(sip_response_code) in WRONG_NUMBER_SIP_CODES
        or _integer(error_code) in WRONG_NUMBER_ERROR_CODES
    )


def kind_for_answered_by(answered_by: str) -> EventKind:
    """Map AnsweredBy; a value Twilio may add later counts as ``unknown`` (a person)."""
    return ANSWERED_BY_EVENTS.get(answered_by, EventKind.ANSWERED)


def kinds_for_status(
    call_status: str,
    answered_by: str | None = None,
    sip_response_code: Any = None,
    error_code: Any = None,
) -> list[EventKind]:
    """Map one CallStatus (and what came with it) to the events it tells, in order.

    ``in-progress`` is ``machine`` rather than ``answered`` when AnsweredBy already says so.
    ``completed`` with a machine AnsweredBy yields ``machine`` then ``completed``, so the
    outcome survives even if the asynchronous AMD callback never arrived. ``failed`` becomes
    ``wrong-number`` when the SIP or error code says the number does not exist.
    An unknown CallStatus yields nothing.
    """
    kind = CALL_STATUS_EVENTS.get(call_status)
    if kind is None:
        return []
    machine = bool(answered_by) and kind_for_answered_by(answered_by or "") is EventKind.MACHINE
    if kind is EventKind.ANSWERED and machine:
        return [EventKind.MACHINE]
    if kind is EventKind.COMPLETED and machine:
        return [EventKind.MACHINE, EventKind.COMPLETED]
    if kind is EventKind.FAILED and call_status == "failed":
        if is_wrong_number(sip_response_code, error_code):
            return [EventKind.WRONG_NUMBER]
    return [kind]


def parse_timestamp(value: Any) -> datetime | None:
    """Parse Twilio's RFC 2822 timestamps ("Tue, 10 Jan 2023 08:30:00 +0000"), or None."""
    value = _first(value)
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


def events_from_webhook(
    path_kind: str,
    params: Mapping[str, Any],
    attempt_id: int,
    received_at: datetime,
) -> list[CallEvent]:
    """Turn one webhook request from Twilio into the CallEvents it reports.

    ``path_kind`` is the webhook (``voice``, ``gather``, ``status``, ``amd``), ``params`` its
    form fields, ``attempt_id`` the id in its path, ``received_at`` when it arrived (aware);
    Twilio's own ``Timestamp`` wins when a status callback carries one. ``gather`` reports no
    event (its input belongs to the survey), ``amd`` one from AnsweredBy, ``voice`` and
    ``status`` follow ``kinds_for_status``.

    Twilio may deliver the same fact twice (the voice webhook and the ``answered`` status
    callback both say answered; status callbacks can arrive out of order, see
    ``SequenceNumber`` in detail), so the core must treat a repeated kind as a no-op.
    """
    if path_kind not in WEBHOOK_KINDS:
        raise ValueError(f"unknown Twilio webhook {path_kind!r}; expected one of {WEBHOOK_KINDS}")
    call_sid = str(_first(params.get("CallSid")) or "")
    at = parse_timestamp(params.get("Timestamp")) or received_at
    detail = event_detail(params)
    answered_by = _first(params.get("AnsweredBy")) or None
    if path_kind == "gather":
        kinds: list[EventKind] = []
    elif path_kind == "amd":
        kinds = [kind_for_answered_by(answered_by)] if answered_by else []
    else:
        call_status = _first(params.get("CallStatus"))
        if path_kind == "voice" and not call_status:
            # Twilio asks for TwiML only once the call is answered.
            call_status = "in-progress"
        kinds = kinds_for_status(
            str(call_status or ""),
            answered_by,
            _first(params.get("SipResponseCode")),
            _first(params.get("ErrorCode")),
        )
    verdict = ANSWERED_BY_VERDICTS.get(answered_by or "")
    return [
        CallEvent(
            attempt_id, call_sid, kind, at, dict(detail),
            verdict if kind is EventKind.ANSWERED else None,
        )
        for kind in kinds
    ]  # fmt: skip


def event_from_call(
    call: Mapping[str, Any], attempt_id: int, fetched_at: datetime
) -> CallEvent | None:
    """Map a Call resource as the REST API returns it (snake_case JSON) to its latest event.

    Used to reconcile after a crash: one event, the furthest the call got. A completed call
    answered by a machine stays ``completed`` (final) with AnsweredBy in detail.
    """
    status = str(call.get("status") or "")
    answered_by = call.get("answered_by") or None
    kinds = kinds_for_status(status, answered_by)
    if not kinds:
        return None
    detail: dict[str, Any] = {"CallStatus": status, "Source": "rest"}
    if answered_by:
        detail["AnsweredBy"] = answered_by
    duration = _integer(call.get("duration"))
    if duration is not None:
        detail["CallDuration"] = duration
    at = call.get("end_time") or call.get("start_time") or call.get("date_updated")
    when = at if isinstance(at, datetime) else parse_timestamp(at)
    return CallEvent(attempt_id, str(call.get("sid") or ""), kinds[-1], when or fetched_at, detail)
