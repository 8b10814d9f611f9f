"""docs/cli.md is the commands' --help as the code has it now."""

from __future__ import annotations

from pathlib import Path

from callback.cli.reference import render

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_the_command_reference_is_up_to_date() -> None:
    text = render()
    assert "## `callback campaign create`" in text and "--deadline" in text
    assert DOCS.read_text(encoding="utf-8") == text, "run scripts/cli_docs and commit docs/cli.md"
