"""Errors the Twilio dialer raises, sorted by what the dispatcher should do next."""

from __future__ import annotations

import re

# The dispatcher's errors belong to the core's dialer contract; they are re-exported here
# because the Twilio dialer is the first to raise them.
from callback.dialing import DialRejected, RetryableDialError
from callback.errors import ConfigError

__all__ = ["DialRejected", "RetryableDialError", "TwilioConfigError", "mask_numbers"]


class TwilioConfigError(ConfigError):
    """Twilio refused us rather than the call: credentials, caller id, geographic permissions.

    Raised instead of reporting a failed call because every other call would fail the same way;
    marking cases failed one after another would burn through the queue for nothing.
    """


_LONG_NUMBER = re.compile(r"\+?\d{7,}")


def mask_numbers(text: str) -> str:
    """Hide the middle of every phone number in ``text`` (Twilio quotes the number it refused).

    Messages of callback's errors never carry a citizen's full phone number (callback.errors).
    """

    def mask(match: re.Match[str]) -> str:
        number = match.group(0)
        keep = min(4, len(number) // 3)
        return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]

    return _LONG_NUMBER.sub(mask, text)
