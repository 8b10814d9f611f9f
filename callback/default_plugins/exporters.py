"""The built-in formats of ``callback frame export``: CSV and XLSX, through the same hook a
province's own template would use."""

from __future__ import annotations

from collections.abc import Callable

from callback.export import write_csv, write_xlsx
from callback.hookspecs import hookimpl


@hookimpl
def register_frame_exporters(register: Callable[[str, Callable[..., None]], None]) -> None:
    register("csv", write_csv)
    register("xlsx", write_xlsx)
