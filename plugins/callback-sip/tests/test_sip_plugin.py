"""Tests for how the sip dialer plugs into callback: entry point, hook, lazy PJSIP."""

from __future__ import annotations

import subprocess
import sys

import pluggy
import pytest

import callback.hookspecs
from callback.dialing import CallEvent, Dialer, Pacing
from callback.errors import CallbackError, ConfigError
from callback_sip import SipDialer


def test_the_sip_dialer_is_registered_through_the_callback_entry_point_group() -> None:
    manager = pluggy.PluginManager("callback")
    manager.add_hookspecs(callback.hookspecs)
    manager.load_setuptools_entrypoints("callback", name="sip")
    manager.check_pending()
    registered: dict[str, type[Dialer]] = {}

    manager.hook.register_dialers(register=registered.__setitem__)

    assert registered == {"sip": SipDialer}
    assert SipDialer.interactive is True


def test_listing_and_building_the_dialer_needs_no_pjsip() -> None:
    code = (
        "import sys\n"
        "import callback_sip.plugin\n"
        "from callback_sip import SipDialer\n"
        "SipDialer({'server': 'pbx.example'}, print)\n"
        "assert 'pjsua2' not in sys.modules, 'pjsua2 imported too early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_base_dialer_signature_still_builds_it() -> None:
    events: list[CallEvent] = []
    dialer = SipDialer({"server": "pbx.example", "calls_per_second": 2, "max_concurrent": 6},
                       events.append)  # fmt: skip

    assert dialer.conversation is None
    assert dialer.pacing == Pacing(calls_per_second=2.0, max_concurrent=6)
    assert dialer.status("unknown") is None
    dialer.close()


def test_bad_settings_fail_when_the_dialer_is_built() -> None:
    with pytest.raises(ConfigError, match="'server' is required"):
        SipDialer({}, print)


def test_a_closed_dialer_refuses_new_calls() -> None:
    from callback.dialing import CallRequest

    dialer = SipDialer({"server": "pbx.example"}, print)
    dialer.close()

    with pytest.raises(CallbackError, match="closed"):
        dialer.start(CallRequest(attempt_id=1, to="+8613812345678"))
