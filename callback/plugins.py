"""The plugin manager, the built-in plugins, and the registries the hooks fill.

Installed plugins load from the entry-point group ``callback``; the built-ins load after them
through the same hooks, as any third party's would. ``CALLBACK_LOAD_PLUGINS`` limits what is
installed-and-loaded: unset loads every installed plugin, ``""`` none, ``"a,b"`` only those
entry points (built-ins always load: they are part of callback).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pluggy

from callback import hookspecs
from callback.errors import PluginError

#: Modules of callback that register its own dialers, scripts and exporters.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "callback.default_plugins.dialers",
    "callback.default_plugins.survey_scripts",
    "callback.default_plugins.exporters",
)
ENTRY_POINT_GROUP = "callback"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,49}")

T = TypeVar("T")

pm = pluggy.PluginManager("callback")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins() -> pluggy.PluginManager:
    """Load installed and built-in plugins once per process and return the manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    wanted = os.environ.get("CALLBACK_LOAD_PLUGINS")
    if wanted is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        names = {name.strip() for name in wanted.split(",") if name.strip()}
        found = set()
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in names:
                pm.register(entry_point.load(), name=entry_point.name)
                found.add(entry_point.name)
        if names - found:
            missing = ", ".join(sorted(names - found))
            raise PluginError(f"CALLBACK_LOAD_PLUGINS names {missing}: no such plugin is installed")
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
    # A misspelt hook name in a plugin fails here, at load, instead of being silently ignored.
    pm.check_pending()
    _clear_registries()
    return pm


def reset_for_tests() -> None:
    """Forget every plugin, so that a test can load a different set."""
    global _loaded
    for name, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin, name=name)
    _loaded = False
    _clear_registries()


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A thing a plugin registered, and which plugin it was."""

    name: str
    value: T
    plugin: str


def plugin_name(plugin: object) -> str:
    return pm.get_name(plugin) or repr(plugin)


def _collect(
    hook: str, accept: Callable[[str, tuple[Any, ...]], tuple[str, T]]
) -> dict[str, Registered[T]]:
    """Call each implementation of ``hook`` with a ``register`` of its own, so that every
    registration is attributed to its plugin and a duplicate names both."""
    load_plugins()
    found: dict[str, Registered[T]] = {}
    # In registration order: installed plugins, then the built-ins.
    for impl in getattr(pm.hook, hook).get_hookimpls():
        owner = plugin_name(impl.plugin)

        def register(*args: Any, _owner: str = owner) -> None:
            name, value = accept(_owner, args)
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise PluginError(
                    f"plugin {_owner} registered the name {name!r} in {hook}: names are lower "
                    "case letters, digits, - and _, starting with a letter"
                )
            if name in found:
                raise PluginError(
                    f"{hook}: both {found[name].plugin} and {_owner} register {name!r}; "
                    "uninstall one or limit CALLBACK_LOAD_PLUGINS"
                )
            found[name] = Registered(name, value, _owner)

        impl.function(register=register)
    return found


_registries: dict[str, dict[str, Registered[Any]]] = {}


def _clear_registries() -> None:
    _registries.clear()


def _cached(hook: str, accept: Callable[[str, tuple[Any, ...]], tuple[str, Any]]) -> dict[str, Any]:
    if hook not in _registries:
        _registries[hook] = _collect(hook, accept)
    return _registries[hook]


def _accept_dialer(owner: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    from callback.dialing import Dialer

    if len(args) != 2:
        raise PluginError(f"plugin {owner}: register_dialers calls register(name, DialerClass)")
    name, cls = args
    if not (isinstance(cls, type) and issubclass(cls, Dialer)):
        raise PluginError(
            f"plugin {owner} registered dialer {name!r} as {cls!r}, which is not a subclass "
            "of callback.dialing.Dialer"
        )
    return name, cls


def _accept_script(owner: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    from callback.survey_format import Script

    if len(args) != 1 or not isinstance(args[0], Script):
        raise PluginError(
            f"plugin {owner}: register_survey_scripts calls register(script) with a "
            "callback.surveys Script (load_script(path))"
        )
    return args[0].name, args[0]


def _accept_exporter(owner: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    if len(args) != 2 or not callable(args[1]):
        raise PluginError(
            f"plugin {owner}: register_frame_exporters calls register(name, export) with a "
            "callable export(rows, out)"
        )
    return args[0], args[1]


def dialers() -> dict[str, Registered[Any]]:
    """Every dialer class by name."""
    return _cached("register_dialers", _accept_dialer)


def survey_scripts() -> dict[str, Registered[Any]]:
    """Every survey script by name."""
    return _cached("register_survey_scripts", _accept_script)


def frame_exporters() -> dict[str, Registered[Any]]:
    """Every frame export format by name."""
    return _cached("register_frame_exporters", _accept_exporter)


def get_dialer(name: str) -> Any:
    """The dialer class registered as ``name``, or a clear error listing the installed ones."""
    found = dialers()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise PluginError(f"no dialer named {name!r} is installed (installed: {known})")
    return found[name].value


def get_script(name: str) -> Any:
    """The survey script registered as ``name``, or a clear error listing the installed ones."""
    found = survey_scripts()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise PluginError(f"no survey script named {name!r} is installed (installed: {known})")
    return found[name].value


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    builtin: bool
    hooks: tuple[str, ...]
    dialers: tuple[str, ...]
    scripts: tuple[str, ...]
    exporters: tuple[str, ...]


def describe() -> list[PluginInfo]:
    """What `callback plugins` prints: every plugin with its hooks and what it registered."""
    load_plugins()
    by_plugin: dict[str, dict[str, list[str]]] = {}
    for kind, registry in (("dialers", dialers()), ("scripts", survey_scripts()),
                           ("exporters", frame_exporters())):  # fmt: skip
        for item in registry.values():
            by_plugin.setdefault(item.plugin, {}).setdefault(kind, []).append(item.name)
    versions = _distribution_versions()
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or []))
        mine = by_plugin.get(name, {})
        infos.append(
            PluginInfo(
                name=name,
                version=versions.get(name),
                builtin=name in DEFAULT_PLUGINS,
                hooks=hooks,
                dialers=tuple(sorted(mine.get("dialers", []))),
                scripts=tuple(sorted(mine.get("scripts", []))),
                exporters=tuple(sorted(mine.get("exporters", []))),
            )
        )
    return sorted(infos, key=lambda info: (info.builtin, info.name))


def _distribution_versions() -> dict[str, str]:
    versions = {}
    for dist, entry_point in _entry_points():
        versions[entry_point.name] = dist.version
    return versions


def _entry_points() -> Iterator[tuple[importlib.metadata.Distribution, Any]]:
    for dist in importlib.metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group == ENTRY_POINT_GROUP:
                yield dist, entry_point


def register_commands(cli: Any) -> None:
    """Let every plugin add its commands to the root group."""
    load_plugins().hook.register_commands(cli=cli)
