"""The package is installable as declared: every package is listed, migrations ship in it."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_under_callback_is_listed_in_setup_cfg() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "callback").rglob("__init__.py")
    }
    assert found <= listed, f"add to setup.cfg [options] packages: {sorted(found - listed)}"
    assert {"callback.migrations", "callback.migrations.versions"} <= listed


def test_the_migrations_are_found() -> None:
    from callback.migrate import script_location

    assert (Path(script_location()) / "env.py").is_file()
