"""Load calling windows from a rules file (JSON or TOML), naming the field at fault in errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from types import MappingProxyType

from callback.errors import ConfigError
from callback.rules import ALL_WEEKDAYS, Window

#: Day names a window's weekdays may be given by in rules files, besides 0-6 (Monday = 0).
DAY_NAMES: Mapping[str, int] = MappingProxyType(
    {
        name: day
        for day, names in enumerate(
            [
                ("mon", "monday", "周一", "星期一"),
                ("tue", "tuesday", "周二", "星期二"),
                ("wed", "wednesday", "周三", "星期三"),
                ("thu", "thursday", "周四", "星期四"),
                ("fri", "friday", "周五", "星期五"),
                ("sat", "saturday", "周六", "星期六"),
                ("sun", "sunday", "周日", "星期日", "星期天"),
            ]
        )
        for name in names
    }
)
_WALL_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WINDOW_KEYS = ("start", "end", "weekdays")


def windows_from_json(value: object, where: str = "rules.windows") -> tuple[Window, ...]:
    """Build calling windows from a rules file's ``windows``, or raise a ConfigError naming
    the field at fault (``rules.windows[1].end``) and what it expects.

    ``value`` is a list of objects ``{"start": "09:00", "end": "12:00", "weekdays": [...]}``;
    ``weekdays`` is optional (every day), its days 0-6 (Monday = 0) or names (mon, monday, 周一).
    A key a window does not have is refused: a misspelt "days" silently ignored would let
    calls go out on every day.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise ConfigError(
            f'{where}: expected a list of windows like [{{"start": "09:00", "end": "12:00"}}],'
            f" not {value!r}"
        )
    if not value:
        raise ConfigError(f"{where}: empty; give at least one window, or leave it out")
    windows = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f'{here}: expected an object like {{"start": "09:00", "end": "12:00"}}, '
                f"not {item!r}"
            )
        unknown = sorted(str(k) for k in item if k not in _WINDOW_KEYS)
        if unknown:
            raise ConfigError(
                f"{here}: unknown key(s) {', '.join(unknown)}: a window has start, end and"
                " (optionally) weekdays"
            )
        start, end = (_wall_time(item, key, f"{here}.{key}") for key in ("start", "end"))
        if not start < end:
            raise ConfigError(
                f"{here}.end: {end:%H:%M} is not after start {start:%H:%M}: a window ends"
                " after it starts, the same day"
            )
        weekdays = _weekdays(item["weekdays"], f"{here}.weekdays") if "weekdays" in item else None
        windows.append(Window(start, end, weekdays if weekdays is not None else ALL_WEEKDAYS))
    return tuple(windows)


def _wall_time(item: Mapping[str, object], key: str, where: str) -> time:
    if key not in item:
        raise ConfigError(f'{where}: missing; give the local time as "HH:MM", e.g. "09:00"')
    value = item[key]
    match = _WALL_TIME.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        hour, minute, second = (int(part or 0) for part in match.groups())
        return time(hour, minute, second)
    except ValueError:
        # TOML reads an unquoted 09:00:00 as a time; rules are stored as JSON strings.
        hint = ' (in TOML, quote it: "09:00")' if isinstance(value, time) else ""
        raise ConfigError(
            f'{where}: expected a local time written "HH:MM" (00:00-23:59), e.g. "09:00",'
            f" not {value!r}{hint}"
        ) from None


def _weekdays(value: object, where: str) -> frozenset[int]:
    expected = "0-6 (Monday = 0) or a day name (mon, monday, 周一)"
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list of days, each {expected}; not {value!r}")
    if not value:
        raise ConfigError(f"{where}: empty; leave it out for every day, or list the days")
    days = set()
    for j, day in enumerate(value):
        if isinstance(day, str) and day.strip().lower() in DAY_NAMES:
            days.add(DAY_NAMES[day.strip().lower()])
        elif isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6:
            days.add(day)
        else:
            raise ConfigError(f"{where}[{j}]: {day!r} is not a day: expected {expected}")
    return frozenset(days)
