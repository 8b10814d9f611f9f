"""docs/cli.md: every built-in command's --help, rendered from the commands themselves.

``scripts/cli_docs`` writes the file; a test fails when a command's help changed and the file
was not regenerated, so the reference never drifts from the code.
"""

from __future__ import annotations

import click

#: Wide enough for the longest option lines, narrow enough to read in a browser.
WIDTH = 100

HEADER = """\
# Command reference

Generated from `--help` by `scripts/cli_docs`; do not edit by hand (a test compares).
Plugins add their own commands (`callback plugins` lists them); they are not shown here.
"""


def _builtin(command: click.Command) -> bool:
    module = getattr(command.callback, "__module__", "") or ""
    return module.startswith("callback.") or isinstance(command, click.Group)


def _walk(
    command: click.Command, path: list[str], parent: click.Context | None
) -> list[tuple[str, str]]:
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **command.context_settings,
    )
    found = [(" ".join(path), command.get_help(ctx))]
    if isinstance(command, click.Group):
        # The commands registered on the group itself: list_commands() would load plugins.
        for name in sorted(command.commands):
            sub = command.commands[name]
            if sub.hidden or not _builtin(sub):
                continue
            found.extend(_walk(sub, [*path, name], ctx))
    return found


def render() -> str:
    """Return docs/cli.md's text."""
    from callback.cli import cli

    parts = [HEADER]
    for name, help_text in _walk(cli, ["callback"], None):
        parts.append(f"\n## `{name}`\n\n```text\n{help_text.rstrip()}\n```\n")
    return "".join(parts)
