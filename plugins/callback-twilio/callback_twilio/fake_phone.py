"""Twilio's part of a call, for tests: signed webhook requests, and reading our TwiML back.

``TwilioPhone`` builds the requests Twilio would send for one call (voice, gather, status and
AMD callbacks), signed with the official validator's algorithm; ``parse_twiml`` reads what we
answer the way Twilio executes it; ``walk_survey`` follows a whole survey key by key.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "test-auth-token-not-a-secret"
DEFAULT_FROM = "+8657188880000"
API_VERSION = "2010-04-01"
#: Where FakeTwilioAPI.settings() says our webhooks are.
DEFAULT_PUBLIC_BASE_URL = "https://callback.example.gov.cn"


def rfc2822(moment: datetime | None) -> str | None:
    """Format like Twilio's REST API and webhooks: "Tue, 31 Aug 2010 20:36:28 +0000"."""
    return format_datetime(moment.astimezone(UTC)) if moment else None


def sign(url: str, params: Mapping[str, str], auth_token: str, algorithm: str | None = None) -> str:
    """Compute X-Twilio-Signature for a POST to ``url`` with ``params``, as Twilio does
    (``algorithm`` HMAC_SHA1 unless a shared key's setting says HMAC_SHA256)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params), algorithm))


@dataclass(frozen=True)
class SharedKey:
    """A Webhook Rule's shared key: Twilio signs with its secret instead of the auth token."""

    key_id: str
    secret: str
    algorithm: str = "HMAC_SHA256"

    @property
    def header(self) -> str:
        """X-Twilio-Webhooks-Signature-Settings, as Twilio writes it."""
        return f"key={self.key_id},algorithm={self.algorithm}"


@dataclass(frozen=True)
class WebhookRequest:
    """A signed webhook request, as Twilio would POST it to our public URL."""

    url: str
    params: dict[str, str]
    headers: dict[str, str]

    @property
    def signature(self) -> str:
        return self.headers[SIGNATURE_HEADER]

    @property
    def body(self) -> bytes:
        return urlencode(self.params).encode()

    @property
    def path(self) -> str:
        """Path and query of ``url``: what a local server sees behind the proxy."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def send_to(self, local_base_url: str, timeout: float = 10.0) -> tuple[int, str]:
        """POST to a local server at ``local_base_url`` + ``path``; return (status, body)."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            local_base_url.rstrip("/") + self.path, data=self.body, headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


class TwilioPhone:
    """Plays Twilio's part of one call: builds the signed webhooks Twilio would send.

    ``voice_url``, ``status_url`` and ``amd_url`` are the URLs the call was created with
    (``FakeTwilioAPI.phone`` fills them in; ``for_attempt`` builds them by our convention).
    """

    def __init__(
        self,
        auth_token: str,
        *,
        voice_url: str,
        status_url: str | None = None,
        amd_url: str | None = None,
        call_sid: str | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        to: str = "+8613800000000",
        from_: str = DEFAULT_FROM,
        shared_key: SharedKey | None = None,
    ) -> None:
        self.auth_token = auth_token
        #: When set, requests are signed as a Webhook Rule with this key signs them.
        self.shared_key = shared_key
        self.voice_url = voice_url
        self.status_url = status_url
        self.amd_url = amd_url
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.account_sid = account_sid
        self.to = to
        self.from_ = from_
        self._sequence = 0

    @classmethod
    def for_attempt(
        cls, public_base_url: str, attempt_id: int, auth_token: str, **kwargs: Any
    ) -> TwilioPhone:
        """Build a phone whose URLs follow /twilio/<kind>/<attempt_id> under our base URL."""
        base = public_base_url.rstrip("/")
        return cls(
            auth_token,
            voice_url=f"{base}/twilio/voice/{attempt_id}",
            status_url=f"{base}/twilio/status/{attempt_id}",
            amd_url=f"{base}/twilio/amd/{attempt_id}",
            **kwargs,
        )

    def request(self, url: str, **params: str | None) -> WebhookRequest:
        """Sign a POST of Twilio's common call parameters plus ``params`` to ``url``."""
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "Direction": "outbound-api",
            "From": self.from_,
            "To": self.to,
            "Called": self.to,
            "Caller": self.from_,
        }
        form.update({k: str(v) for k, v in params.items() if v is not None})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
        }
        key = self.shared_key
        if key is None:
            headers[SIGNATURE_HEADER] = sign(url, form, self.auth_token)
        else:
            headers[SIGNATURE_HEADER] = sign(url, form, key.secret, key.algorithm)
            headers[SIGNATURE_SETTINGS_HEADER] = key.header
        return WebhookRequest(url, form, headers)

    def voice(self, answered_by: str | None = None) -> WebhookRequest:
        """The request for the first TwiML, made when the callee answers."""
        return self.request(self.voice_url, CallStatus="in-progress", AnsweredBy=answered_by)

    def gather(
        self, url: str, digits: str | None = None, speech: str | None = None
    ) -> WebhookRequest:
        """The request a Gather's action (digits or speech) or a Redirect (neither) makes."""
        return self.request(
            url,
            CallStatus="in-progress",
            Digits=digits or None,
            SpeechResult=speech,
            Confidence="0.9" if speech else None,
        )

    def status(
        self,
        call_status: str,
        *,
        duration: int | None = None,
        sip_response_code: int | None = None,
        answered_by: str | None = None,
        error_code: int | None = None,
        timestamp: datetime | None = None,
    ) -> WebhookRequest:
        """A status callback (Timestamp only when given, so tests stay clock-free)."""
        if self.status_url is None:
            raise ValueError("this call has no status callback URL")
        self._sequence += 1
        return self.request(
            self.status_url,
            CallStatus=call_status,
            CallbackSource="call-progress-events",
            SequenceNumber=str(self._sequence - 1),
            Timestamp=rfc2822(timestamp),
            CallDuration=None if duration is None else str(duration),
            SipResponseCode=None if sip_response_code is None else str(sip_response_code),
            AnsweredBy=answered_by,
            ErrorCode=None if error_code is None else str(error_code),
        )

    def amd(self, answered_by: str, detection_ms: int = 2400) -> WebhookRequest:
        """The asynchronous answering machine detection callback."""
        if self.amd_url is None:
            raise ValueError("this call has no AMD callback URL")
        return self.request(
            self.amd_url, AnsweredBy=answered_by, MachineDetectionDuration=str(detection_ms)
        )


# -- reading the TwiML we answer -------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A ``<Say>`` or ``<Play>``: ``verb``, its text or URL, its attributes."""

    verb: str
    text: str
    attrs: dict[str, str]


@dataclass(frozen=True)
class TwimlPage:
    """A TwiML document, read the way Twilio executes it."""

    xml: str
    #: Top-level verbs in order, e.g. ["Gather", "Redirect"].
    verbs: list[str]
    #: Attributes of the (first) <Gather>, or None.
    gather: dict[str, str] | None
    #: Every <Say>/<Play>, inside the Gather or not, in order.
    prompts: list[Prompt]
    redirect: str | None
    hangup: bool
    _root: ET.Element = field(repr=False, compare=False)

    @property
    def says(self) -> list[str]:
        return [p.text for p in self.prompts if p.verb == "Say"]

    def collect(self, keys: str) -> str:
        """Return the Digits Twilio would send after the caller pressed ``keys``.

        Input stops at ``numDigits`` keys or at ``finishOnKey`` (which is not sent); Twilio's
        default finishOnKey is "#" when the attribute is absent.
        """
        if self.gather is None:
            return ""
        finish = self.gather.get("finishOnKey", "#")
        limit = int(self.gather.get("numDigits", "0")) or None
        digits = ""
        for key in keys:
            if finish and key == finish:
                break
            digits += key
            if limit is not None and len(digits) >= limit:
                break
        return digits

    def next_url(self, digits: str = "") -> str | None:
        """Return the URL Twilio requests next: the Gather's action when input came, else
        the Redirect that follows; None when the document hangs up or simply ends."""
        for verb in self._root:
            if verb.tag == "Gather" and digits:
                return verb.get("action")
            if verb.tag == "Redirect":
                return (verb.text or "").strip()
            if verb.tag == "Hangup":
                return None
        return None


def parse_twiml(xml: str) -> TwimlPage:
    """Parse a TwiML document; raises ValueError when it is not one."""
    try:
        root = ET.fromstring(xml.encode() if isinstance(xml, str) else xml)
    except ET.ParseError as error:
        raise ValueError(f"not XML: {error}") from error
    if root.tag != "Response":
        raise ValueError(f"TwiML's root is <Response>, not <{root.tag}>")
    gather = root.find("Gather")
    prompts = [
        Prompt(el.tag, (el.text or "").strip(), dict(el.attrib))
        for el in root.iter()
        if el.tag in ("Say", "Play")
    ]
    redirect = root.find("Redirect")
    return TwimlPage(
        xml=xml,
        verbs=[el.tag for el in root],
        gather=dict(gather.attrib) if gather is not None else None,
        prompts=prompts,
        redirect=(redirect.text or "").strip() if redirect is not None else None,
        hangup=root.find("Hangup") is not None,
        _root=root,
    )


def walk_survey(
    send: Callable[[WebhookRequest], str],
    phone: TwilioPhone,
    keys: Iterable[str | None],
    *,
    answered_by: str | None = None,
    max_pages: int = 200,
) -> list[TwimlPage]:
    """Follow a call through our TwiML: answer, then press each of ``keys`` in turn.

    ``send`` delivers a signed request to our server and returns the TwiML body (in-process,
    or ``lambda r: r.send_to(base)[1]``). Each key string is what the caller presses at the
    next <Gather> ("" or None: silence until timeout); pages that only speak are followed
    without using a key. Stops when the TwiML hangs up, ends, or the keys run out.
    """
    pending = iter(keys)
    page = parse_twiml(send(phone.voice(answered_by)))
    pages = [page]
    while len(pages) < max_pages:
        if page.gather is not None:
            try:
                pressed = next(pending)
            except StopIteration:
                break
            digits = page.collect(pressed or "")
        else:
            digits = ""
        url = page.next_url(digits)
        if not url:
            break
        page = parse_twiml(send(phone.gather(url, digits=digits)))
        pages.append(page)
    return pages
