"""Twilio's side of a call, for tests (ours and the core's): no network, no sleeps.

- ``FakeTwilioAPI`` (``fake_api``): a real HTTP server on 127.0.0.1 speaking the slice of
  Twilio's REST API the dialer uses; records requests; fails on demand (429 + Retry-After, 5xx).
- ``TwilioPhone`` (``fake_phone``): the signed webhook requests Twilio would send for a call.
- ``parse_twiml`` and ``walk_survey``: read our TwiML as Twilio executes it and follow a
  whole survey key by key.

Usage::

    with FakeTwilioAPI() as api:
        dialer = TwilioDialer(api.settings(), sink)
        sid = dialer.start(CallRequest(7, "+8613800000001"))
        phone = api.phone(sid)                 # the webhook URLs the call was created with
        pages = walk_survey(send, phone, ["1", "2"])   # send: WebhookRequest -> TwiML text
"""

from __future__ import annotations

from callback_twilio.fake_api import FakeTwilioAPI, RecordedRequest
from callback_twilio.fake_phone import (
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_FROM,
    DEFAULT_PUBLIC_BASE_URL,
    Prompt,
    SharedKey,
    TwilioPhone,
    TwimlPage,
    WebhookRequest,
    parse_twiml,
    sign,
    walk_survey,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_FROM",
    "DEFAULT_PUBLIC_BASE_URL",
    "FakeTwilioAPI",
    "Prompt",
    "RecordedRequest",
    "SharedKey",
    "TwilioPhone",
    "TwimlPage",
    "WebhookRequest",
    "parse_twiml",
    "sign",
    "walk_survey",
]
