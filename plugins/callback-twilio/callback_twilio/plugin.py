"""Entry point of the ``callback`` group: offers the ``twilio`` dialer to callback."""

from __future__ import annotations

from collections.abc import Callable

from callback import hookimpl
from callback.dialing import Dialer
from callback_twilio.dialer import TwilioDialer


@hookimpl
def register_dialers(register: Callable[[str, type[Dialer]], None]) -> None:
    """Register ``TwilioDialer`` as ``twilio``."""
    register("twilio", TwilioDialer)
