"""callback-twilio: the ``twilio`` dialer, TwiML for IVR turns, and a fake Twilio for tests.

Importing this package does not import the twilio library; the names that need it
(``render_turn``, ``TurnRenderer``, ``render_goodbye``, ``verify_request``, ``SignatureCheck``,
``public_url``) load it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from callback_twilio.dialer import TwilioDialer
from callback_twilio.errors import DialRejected, RetryableDialError, TwilioConfigError
from callback_twilio.mapping import event_from_call, events_from_webhook, kinds_for_status
from callback_twilio.settings import TwilioSettings

__all__ = [
    "DialRejected",
    "RetryableDialError",
    "SignatureCheck",
    "TwilioConfigError",
    "TwilioDialer",
    "TwilioSettings",
    "TurnRenderer",
    "event_from_call",
    "events_from_webhook",
    "kinds_for_status",
    "public_url",
    "render_goodbye",
    "render_turn",
    "verify_request",
]

_LAZY = {
    "render_turn": "callback_twilio.twiml",
    "render_goodbye": "callback_twilio.twiml",
    "TurnRenderer": "callback_twilio.twiml",
    "SignatureCheck": "callback_twilio.signatures",
    "verify_request": "callback_twilio.signatures",
    "public_url": "callback_twilio.signatures",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'callback_twilio' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
