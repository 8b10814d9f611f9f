"""Checks of campaign designs read from JSON or TOML: each failure names the key and value."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callback.errors import CallbackError


class DesignError(CallbackError):
    """A sampling or spot-check design is malformed."""


def invalid(what: str) -> DesignError:
    """The error to raise for a design that is malformed in ``what``."""
    return DesignError(f"sampling design: {what}")


def check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(f"unknown time zone {name!r}") from None


def check_int(value: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{what} must be a whole number, not {value!r}")
    if minimum is not None and value < minimum:
        raise invalid(f"{what} must be at least {minimum}, not {value}")
    return value


def check_share(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise invalid(f"{what} must be a number strictly between 0 and 1, not {value!r}")
    return float(value)


def check_date(value: Any, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(f"{what} must be a date like 2018-06-01, not {value!r}") from None


def check_period(start: date, end: date) -> None:
    if start > end:
        raise invalid(f"the period ends ({end}) before it starts ({start})")


def check_keys(data: Mapping[str, Any], allowed: Collection[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise invalid(f"{what} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:  # a misspelt key would otherwise be silently ignored
        raise invalid(f"unknown {what} key(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
