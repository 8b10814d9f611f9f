"""The built-in survey scripts: 办事服务回访 (service-callback) and 咨询电话抽查 (hotline-check)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from callback.hookspecs import hookimpl
from callback.survey_loader import load_script

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@hookimpl
def register_survey_scripts(register: Callable[[Any], None]) -> None:
    for path in sorted(SCRIPTS.glob("*.toml")):
        register(load_script(path))
