"""Every hook callback offers to plugins, fully documented; nothing else lives here.

Plugins implement hooks with ``callback.hookimpl`` and are found through the entry-point
group ``callback``. Hooks gain arguments over time, never lose them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from callback.dialing import Dialer

hookspec = pluggy.HookspecMarker("callback")
hookimpl = pluggy.HookimplMarker("callback")


@hookspec
def register_dialers(register: Callable[[str, type[Dialer]], None]) -> None:
    """Offer dialing backends by calling ``register(name, DialerClass)``.

    ``name`` is what campaigns name as their dialer (``--dialer sip``); it is unique across
    installed plugins. ``DialerClass`` subclasses ``callback.dialing.Dialer`` and is built
    with its ``[dialers.<name>]`` settings table and the core's event sink.
    """


@hookspec
def register_survey_scripts(register: Callable[[Any], None]) -> None:
    """Offer survey scripts by calling ``register(script)``.

    ``script`` is a ``callback.surveys.Script`` (usually ``load_script(path)`` of a TOML or
    YAML file the plugin ships). Its ``name`` is unique across installed plugins.
    """


@hookspec
def register_frame_exporters(register: Callable[[str, Callable[..., None]], None]) -> None:
    """Offer formats for ``callback frame export --format NAME`` by calling
    ``register(name, export)``.

    ``export(rows, out)`` writes the corrected frame: ``rows`` is an iterable of
    ``callback.export.FrameRow`` and ``out`` a binary file object.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``callback`` command line, e.g. with ``@cli.command()``."""
