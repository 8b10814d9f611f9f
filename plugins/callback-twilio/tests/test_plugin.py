"""The plugin as callback finds it: entry point, hook, and no twilio import until needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pluggy

import callback_twilio.plugin
from callback import hookspecs
from callback.dialing import Dialer
from callback_twilio import TwilioDialer


def test_the_entry_point_names_the_plugin_module() -> None:
    [entry] = [e for e in entry_points(group="callback") if e.name == "twilio"]
    assert entry.value == "callback_twilio.plugin"
    assert entry.load() is callback_twilio.plugin


def test_the_hook_registers_the_twilio_dialer() -> None:
    pm = pluggy.PluginManager("callback")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("callback", name="twilio")
    pm.check_pending()
    registered: dict[str, type[Dialer]] = {}
    pm.hook.register_dialers(register=registered.__setitem__)
    assert registered["twilio"] is TwilioDialer
    assert issubclass(TwilioDialer, Dialer)


def test_the_plugin_loads_and_lists_without_the_twilio_library() -> None:
    # A finder that refuses "twilio" stands in for an environment without it.
    script = textwrap.dedent(
        """
        import sys

        class NoTwilio:
            def find_spec(self, name, path=None, target=None):
                if name == "twilio" or name.startswith("twilio."):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, NoTwilio())
        import callback_twilio, callback_twilio.plugin
        from callback_twilio import TwilioDialer
        dialer = TwilioDialer(
            {"account_sid": "AC1", "auth_token": "t", "from_number": "+8657188880000",
             "public_base_url": "https://cb.example"},
            lambda event: None,
        )
        print(TwilioDialer.interactive, dialer.pacing.calls_per_second)
        assert not any(m == "twilio" or m.startswith("twilio.") for m in sys.modules)
        try:
            callback_twilio.render_goodbye
        except ModuleNotFoundError:
            print("render needs twilio")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True 1.0", "render needs twilio"]
