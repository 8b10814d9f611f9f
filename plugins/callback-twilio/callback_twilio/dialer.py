"""``TwilioDialer``: places IVR calls through Twilio Programmable Voice.

This module imports the twilio library only when a call is placed or a page rendered, so the
dialer can be registered and listed where twilio is not installed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import quote_plus

from callback.dialing import (
    ANSWERED_BY_UNKNOWN,
    CallEvent,
    CallRequest,
    Conversation,
    Dialer,
    EventKind,
    EventSink,
    Pacing,
    Turn,
)
from callback_twilio.errors import (
    DialRejected,
    RetryableDialError,
    TwilioConfigError,
    mask_numbers,
)
from callback_twilio.mapping import event_from_call, events_from_webhook, is_wrong_number
from callback_twilio.settings import TwilioSettings

if TYPE_CHECKING:
    from twilio.rest import Client

    from callback_twilio.signatures import SignatureCheck
    from callback_twilio.twiml import TurnRenderer

Clock = Callable[[], datetime]

#: Status callback events we ask for: every step, so ringing and answered reach the core as
#: they happen, not only the final status (Calls resource, ``StatusCallbackEvent``).
STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]

#: Seconds to wait when Twilio says 429 without Retry-After: one call slot at the default pace.
DEFAULT_RETRY_AFTER_429 = 1.0
#: Seconds to wait after a 5xx or a broken connection without Retry-After.
DEFAULT_RETRY_AFTER_5XX = 5.0

#: HTTP statuses and Twilio error codes that are about our account, not this call:
#: 20003 authentication failed, 20404 (on Calls.json) wrong account SID, 21210 caller id not
#: verified, 21212 invalid caller id, 21215 geographic permissions forbid the destination
#: (calling +86 must be enabled in the console), 21216 destination blocked for the account.
CONFIG_STATUSES = frozenset({401, 403})
CONFIG_ERROR_CODES = frozenset({20003, 20404, 21210, 21212, 21215, 21216})

#: How many recent calls' attempt ids a dialer remembers for ``status``.
REMEMBERED_CALLS = 10_000

#: Updating a call that already ended: Twilio says 21220 "invalid call state".
INVALID_CALL_STATE = 21220

#: The query our voice and status URLs carry when the call was placed without answering
#: machine detection. No verdict will come for such a call, and the web app that reads its
#: webhooks may be another process, with no way to know how the call was placed; the URL is
#: the call's own record of it (and Twilio signs it with the rest).
NO_DETECTION = "machine_detection=off"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Parse ``Retry-After``: delay seconds, or an HTTP date (RFC 9110, section 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


#: ``quote_plus``, remembered: a script has a few dozen positions, quoted on every turn (1.4 µs).
_quoted = lru_cache(maxsize=1024)(quote_plus)


class TwilioDialer(Dialer):
    """Dial through Twilio and run the survey as IVR over TwiML webhooks.

    ``settings`` is ``[dialers.twilio]`` (see ``TwilioSettings``); ``events`` the core's sink;
    ``client`` an official ``twilio.rest.Client`` (or anything with its ``calls`` API), built
    lazily from the settings when None; ``clock`` returns aware datetimes (tests inject it).
    """

    interactive: ClassVar[bool] = True

    def __init__(
        self,
        settings: Mapping[str, Any],
        events: EventSink,
        client: Client | None = None,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, events)
        self.config = TwilioSettings.from_mapping(settings, environ)
        self.clock: Clock = clock or _utcnow
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()
        # Which attempt each recent call of this process belongs to, for status() without
        # attempt_id; bounded, since a dispatcher runs for months.
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._signature_check: SignatureCheck | None = None
        self._turns: TurnRenderer | None = None

    # -- the dialer contract -------------------------------------------------------------

    @property
    def pacing(self) -> Pacing:
        # Twilio queues calls beyond the account's CPS (1 by default) instead of refusing
        # them, so the real limit must be paced here or calls start minutes late.
        return Pacing(self.config.calls_per_second, self.config.max_concurrent)

    @property
    def client(self) -> Client:
        """The Twilio REST client, built on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Client:
        from twilio.rest import Client

        from callback_twilio.transport import CallbackHttpClient

        c = self.config
        http_client = CallbackHttpClient(c.api_base_url, timeout=c.http_timeout)
        username, password = (c.api_key, c.api_secret) if c.api_key else (c.account_sid, None)
        return Client(
            username,
            password or c.auth_token,
            account_sid=c.account_sid,
            region=c.region,
            edge=c.edge,
            http_client=http_client,
        )

    def call_params(self, call: CallRequest) -> dict[str, Any]:
        """Return the keyword arguments of ``client.calls.create`` for ``call``."""
        c = self.config
        # Not with an extension: the switchboard's recorded greeting would be taken for a
        # voicemail.
        detects = c.machine_detection != "off" and not call.extension
        query = "" if detects else NO_DETECTION
        params: dict[str, Any] = {
            "to": call.to,
            "from_": call.caller_id or c.from_number,
            "url": c.webhook_url("voice", call.attempt_id, query),
            "method": "POST",
            "status_callback": c.webhook_url("status", call.attempt_id, query),
            "status_callback_method": "POST",
            "status_callback_event": list(STATUS_CALLBACK_EVENTS),
            # Twilio may let it ring about 5 s longer than asked (Calls resource, Timeout).
            "timeout": max(1, min(call.ring_timeout, c.ring_timeout)),
        }
        if call.extension:
            params["send_digits"] = c.extension_pause + call.extension
        if detects:
            # Asynchronous, so the first prompt plays while detection listens and the verdict
            # comes to /twilio/amd/<id> instead of delaying the voice webhook.
            params["machine_detection"] = c.machine_detection
            params["async_amd"] = "true"
            params["async_amd_status_callback"] = c.webhook_url("amd", call.attempt_id)
            params["async_amd_status_callback_method"] = "POST"
            if c.machine_detection_timeout is not None:
                params["machine_detection_timeout"] = c.machine_detection_timeout
        return params

    def start(self, call: CallRequest) -> str:
        """Create the call and return its SID (``CA…``) as soon as Twilio has queued it.

        Raises ``RetryableDialError`` for 429, 5xx and network failures (with
        ``retry_after``), ``TwilioConfigError`` when the account is at fault, and
        ``DialRejected`` for any other 4xx after reporting ``wrong-number`` or ``failed``.
        """
        try:
            created = self.client.calls.create(**self.call_params(call))
        except Exception as exc:
            self._reraise(exc, call)
        sid = str(created.sid)
        with self._lock:
            self._attempts[sid] = call.attempt_id
            if len(self._attempts) > REMEMBERED_CALLS:
                self._attempts.popitem(last=False)
        status = str(getattr(created, "status", None) or "queued")
        self.events(
            CallEvent(call.attempt_id, sid, EventKind.QUEUED, self.clock(), {"CallStatus": status})
        )
        return sid

    def hangup(self, provider_call_id: str) -> None:
        """End the call whatever its state; a call that already ended is left alone."""
        try:
            # "completed" hangs up in-progress calls too; "canceled" would not touch them
            # (Calls resource, update Status).
            self.client.calls(provider_call_id).update(status="completed")
        except Exception as exc:
            # Already ended (21220), or never existed: either way nothing is left to end.
            if _rest_code(exc) == INVALID_CALL_STATE or _rest_status(exc) == 404:
                return
            self._reraise(exc, None)

    def status(self, provider_call_id: str, attempt_id: int | None = None) -> CallEvent | None:
        """Fetch the call from Twilio and return its latest state as a CallEvent.

        For reconciliation after a crash. ``attempt_id`` fills the event; when None, the
        attempt this process started the call for, else 0 (the core knows which attempt it
        asked about). Returns None for a call Twilio does not know (404).
        """
        try:
            call = self.client.calls(provider_call_id).fetch()
        except Exception as exc:
            if _rest_status(exc) == 404:
                return None
            self._reraise(exc, None)
        if attempt_id is None:
            with self._lock:
                attempt_id = self._attempts.get(provider_call_id, 0)
        fields = {
            name: getattr(call, name, None)
            for name in ("sid", "status", "answered_by", "duration", "end_time", "start_time")
        }
        fields["sid"] = fields["sid"] or provider_call_id
        return event_from_call(fields, attempt_id, self.clock())

    def close(self) -> None:
        """Close the HTTP connections of a client this dialer built (an injected one is the
        caller's to close); the next call builds a new one."""
        with self._lock:
            client, self._client = self._client, None
            owned, self._owns_client = self._owns_client, True
        if not owned:
            return
        session = getattr(getattr(client, "http_client", None), "session", None)
        if session is not None:
            session.close()

    # -- webhooks (the core's web app checks with signature_check, answers with render) --

    def verify(
        self,
        url: str,
        params: Mapping[str, Any],
        signature: str | None,
        settings: str | None = None,
    ) -> bool:
        """Check a webhook's X-Twilio-Signature against the account's auth token, or against
        the shared key that ``settings`` (X-Twilio-Webhooks-Signature-Settings) names."""
        return self.signature_check(url, params, signature, settings)

    @property
    def signature_check(self) -> SignatureCheck:
        """The check of this account's webhook signatures (auth token, shared keys)."""
        if self._signature_check is None:
            from callback_twilio.signatures import SignatureCheck

            self._signature_check = SignatureCheck(self.config.auth_token, self.config.webhook_keys)
        return self._signature_check

    def render(self, turn: Turn, attempt_id: int, at: str = "") -> str:
        """Render ``turn`` as TwiML whose input comes back to /twilio/gather/<attempt_id>,
        with ``?at=<at>`` when given: the position the turn is asked at (see callback.web.ivr).
        """
        url = self.config.webhook_url("gather", attempt_id)
        if at:
            url += "?at=" + _quoted(at)  # as urlencode({"at": at}) writes it
        return self.turns(turn, url)

    @property
    def turns(self) -> TurnRenderer:
        """This account's TwiML renderer (voice, recorded prompts, speech languages)."""
        if self._turns is None:
            from callback_twilio.twiml import TurnRenderer, audio_url_mapper

            c = self.config
            audio = (
                audio_url_mapper(c.audio_root, c.audio_base_url)
                if c.audio_root and c.audio_base_url
                else None
            )
            self._turns = TurnRenderer(
                voice=c.voice, audio_url=audio, speech_languages=c.speech_languages
            )
        return self._turns

    def webhook_events(
        self,
        path_kind: str,
        attempt_id: int,
        params: Mapping[str, Any],
        query: Mapping[str, Any] | None = None,
    ) -> list[CallEvent]:
        """The CallEvents one (already verified) webhook reports, stamped now.

        ``events_from_webhook`` with what only the dialer knows: for a call placed without
        detection (turned off, or an extension to key; ``query`` is the webhook URL's, which
        says so), an answer will never get a verdict, so it comes as "cannot tell" at once
        rather than as "not yet" (a hotline check by machine would otherwise wait for one).
        """
        events = events_from_webhook(path_kind, params, attempt_id, self.clock())
        detected = self.config.machine_detection != "off" and not _no_detection(query)
        if detected:
            return events
        return [
            dataclasses.replace(event, answered_by=ANSWERED_BY_UNKNOWN)
            if event.kind is EventKind.ANSWERED and event.answered_by is None
            else event
            for event in events
        ]

    def handle_webhook(
        self,
        path_kind: str,
        attempt_id: int,
        params: Mapping[str, Any],
        conversation: Conversation | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Answer one (already verified) webhook: report its events, return TwiML or None.

        ``voice`` begins the survey and ``gather`` replies with the caller's input (``Digits``
        and ``SpeechResult``; both absent after silence); both return TwiML. ``status`` and
        ``amd`` only report events and return None (answer 204). Without a conversation
        (e.g. the attempt is unknown), voice and gather get the goodbye. ``query`` is the
        webhook URL's query (see ``webhook_events``).
        """
        for event in self.webhook_events(path_kind, attempt_id, params, query):
            self.events(event)
        if path_kind not in ("voice", "gather"):
            return None
        from callback_twilio.twiml import render_goodbye

        if conversation is None:
            return render_goodbye(voice=self.config.voice)
        if path_kind == "voice":
            turn = conversation.begin(attempt_id)
        else:
            digits = _param(params, "Digits") or ""
            speech = _param(params, "SpeechResult") or None
            turn = conversation.reply(attempt_id, digits, speech)
        return self.render(turn, attempt_id)

    # -- errors ----------------------------------------------------------------------------

    def _reraise(self, exc: Exception, call: CallRequest | None) -> NoReturn:
        translated = self._translate(exc, call)
        if translated is exc:
            raise exc
        raise translated from exc

    def _translate(self, exc: Exception, call: CallRequest | None) -> Exception:
        """Sort an exception from the library into retry, configuration or rejection."""
        status = _rest_status(exc)
        if status is None:
            return self._network_error(exc)
        code = _rest_code(exc)
        message = mask_numbers(_rest_message(exc))
        what = f"Twilio answered HTTP {status}" + (f" (error {code})" if code else "")
        if status == 429 or status >= 500:
            header = None
            http_client = getattr(self._client, "http_client", None)
            if http_client is not None:
                from callback_twilio.transport import last_response_header

                header = last_response_header(http_client, "Retry-After")
            default = DEFAULT_RETRY_AFTER_429 if status == 429 else DEFAULT_RETRY_AFTER_5XX
            retry_after = parse_retry_after(header, self.clock())
            return RetryableDialError(
                f"{what}: {message}; retry later",
                default if retry_after is None else retry_after,
                status=status,
                code=code,
            )
        if status in CONFIG_STATUSES or code in CONFIG_ERROR_CODES:
            return TwilioConfigError(
                f"{what}: {message}. Check account_sid, auth_token or api_key, from_number "
                "and the account's voice geographic permissions in [dialers.twilio]."
            )
        if call is None:
            return TwilioConfigError(f"{what}: {message}")
        kind = EventKind.WRONG_NUMBER if is_wrong_number(error_code=code) else EventKind.FAILED
        detail: dict[str, Any] = {"HttpStatus": status, "ErrorMessage": message}
        if code is not None:
            detail["ErrorCode"] = code
        event = CallEvent(call.attempt_id, "", kind, self.clock(), detail)
        self.events(event)
        return DialRejected(f"{what}: {message}", event)

    def _network_error(self, exc: Exception) -> Exception:
        try:
            import requests
        except ImportError:  # pragma: no cover - requests comes with twilio
            return exc
        if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
            maybe_placed = False
        elif isinstance(exc, requests.exceptions.ConnectionError):
            # Refused or reset: a reset after sending may still have created the call.
            maybe_placed = not _refused(exc)
        elif isinstance(exc, requests.exceptions.Timeout):
            # The request went out; Twilio may have created the call before we gave up.
            maybe_placed = True
        else:
            return exc
        return RetryableDialError(
            f"Twilio's REST API could not be reached ({type(exc).__name__}); retry later",
            DEFAULT_RETRY_AFTER_5XX,
            maybe_placed=maybe_placed,
        )


def _no_detection(query: Mapping[str, Any] | None) -> bool:
    """True when a webhook URL's query says its call was placed without detection."""
    name, value = NO_DETECTION.split("=")
    return query is not None and _param(query, name) == value


def _refused(exc: Exception) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if "refused" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _rest_status(exc: Exception) -> int | None:
    # TwilioRestException and TwilioServiceException both carry ``status``; others do not.
    from twilio.base.exceptions import TwilioException

    if not isinstance(exc, TwilioException):
        return None
    status = getattr(exc, "status", None)
    return int(status) if isinstance(status, int) else None


def _rest_code(exc: Exception) -> int | None:
    code = getattr(exc, "code", None)
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _rest_message(exc: Exception) -> str:
    for name in ("msg", "detail", "title"):
        value = getattr(exc, name, None)
        if value:
            return str(value)
    return type(exc).__name__


def _param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else str(value)
