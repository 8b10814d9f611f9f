"""Plugins: built-ins through the same hooks, installed ones by entry point, clear errors."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pluggy
import pytest

from callback import hookimpl, hookspecs, plugins
from callback.dialing import CallRequest, Dialer
from callback.errors import PluginError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "plugins" / "callback-example"


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load only the built-ins, and put the process's plugins back afterwards."""
    monkeypatch.setenv("CALLBACK_LOAD_PLUGINS", "")
    plugins.reset_for_tests()
    yield
    plugins.reset_for_tests()


class OtherDialer(Dialer):
    def start(self, call: CallRequest) -> str:
        return "x"


def test_built_ins_register_through_the_hooks(fresh_plugins: None) -> None:
    assert {"manual", "simulated"} <= set(plugins.dialers())
    assert plugins.dialers()["manual"].plugin == "callback.default_plugins.dialers"
    assert {"service-callback", "hotline-check"} <= set(plugins.survey_scripts())
    assert plugins.get_script("service-callback").name == "service-callback"


def test_a_name_two_plugins_register_names_both(fresh_plugins: None) -> None:
    plugins.load_plugins()
    clash = SimpleNamespace(
        register_dialers=hookimpl(lambda register: register("manual", OtherDialer))
    )
    plugins.pm.register(clash, name="callback-clash")
    with pytest.raises(PluginError) as info:
        plugins.dialers()
    message = str(info.value)
    assert "callback-clash" in message and "callback.default_plugins.dialers" in message
    assert "'manual'" in message


@pytest.mark.parametrize(
    ("hook", "call", "message"),
    [
        ("register_dialers", lambda register: register("bad", object), "not a subclass"),
        ("register_dialers", lambda register: register("Bad Name", OtherDialer), "names are lower"),
        ("register_survey_scripts", lambda register: register("not a script"), "Script"),
        ("register_frame_exporters", lambda register: register("csv2", 42), "callable"),
    ],
)
def test_bad_registrations_name_the_plugin(
    fresh_plugins: None, hook: str, call, message: str
) -> None:
    plugins.load_plugins()
    plugins.pm.register(SimpleNamespace(**{hook: hookimpl(call)}), name="callback-broken")
    registry = {
        "register_dialers": plugins.dialers,
        "register_survey_scripts": plugins.survey_scripts,
        "register_frame_exporters": plugins.frame_exporters,
    }[hook]
    with pytest.raises(PluginError, match=message) as info:
        registry()
    assert "callback-broken" in str(info.value)


def test_a_misspelt_hook_fails_at_load(fresh_plugins: None) -> None:
    plugins.load_plugins()
    plugins.pm.register(
        SimpleNamespace(register_dialer=hookimpl(lambda register: None)), name="typo"
    )
    with pytest.raises(pluggy.PluginValidationError):
        plugins.pm.check_pending()


def test_unknown_dialer_is_a_clean_error(fresh_plugins: None) -> None:
    with pytest.raises(PluginError, match="no dialer named 'nope'.*manual"):
        plugins.get_dialer("nope")
    with pytest.raises(PluginError, match="no survey script named 'nope'"):
        plugins.get_script("nope")


def test_load_plugins_names_a_plugin_that_is_not_installed(
    fresh_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBACK_LOAD_PLUGINS", "no-such-plugin")
    with pytest.raises(PluginError, match="no-such-plugin"):
        plugins.load_plugins()


def test_every_hook_is_documented_and_tested() -> None:
    docs = (ROOT / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    example = (EXAMPLE / "callback_example" / "__init__.py").read_text(encoding="utf-8")
    specs = [name for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(f, "callback_spec")]  # fmt: skip
    assert set(specs) == {
        "register_dialers", "register_survey_scripts", "register_frame_exporters",
        "register_commands",
    }  # fmt: skip
    for name in specs:
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__) > 40, name
        arguments = ", ".join(inspect.signature(function).parameters)
        assert f"## {name}({arguments})" in docs, name
        assert name in tests or name in example, name


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed with pip into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    return target


def run_callback(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    environment.pop("CALLBACK_LOAD_PLUGINS", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "callback", *args], capture_output=True, text=True, env=environment
    )


def test_an_installed_plugin_appears_with_its_dialer_script_and_command(
    installed_example: Path,
) -> None:
    listed = run_callback(installed_example, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    example = {p["name"]: p for p in json.loads(listed.stdout)}["example"]
    assert example["dialers"] == ["echo"]
    assert example["scripts"] == ["quick-check"]
    assert example["exporters"] == ["lines"]
    assert set(example["hooks"]) == {
        "register_dialers", "register_survey_scripts", "register_frame_exporters",
        "register_commands",
    }  # fmt: skip
    hello = run_callback(installed_example, "hello")
    assert hello.stdout.strip() == "hello from callback-example"


def test_callback_load_plugins_limits_what_loads(installed_example: Path) -> None:
    none = run_callback(installed_example, "plugins", "--json", CALLBACK_LOAD_PLUGINS="")
    assert "example" not in {p["name"] for p in json.loads(none.stdout)}
    only = run_callback(installed_example, "plugins", "--json", CALLBACK_LOAD_PLUGINS="example")
    assert {p["name"] for p in json.loads(only.stdout)} == {"example"}
