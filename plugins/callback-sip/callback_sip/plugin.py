"""The plugin module named by the ``callback`` entry point: offers the ``sip`` dialer."""

from __future__ import annotations

from collections.abc import Callable

from callback import hookimpl
from callback.dialing import Dialer


@hookimpl
def register_dialers(register: Callable[[str, type[Dialer]], None]) -> None:
    """Offer ``SipDialer`` as ``sip``; PJSIP itself is imported only when a call is placed."""
    from callback_sip.dialer import SipDialer

    register("sip", SipDialer)
