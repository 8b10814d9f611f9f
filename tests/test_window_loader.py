"""Calling windows from a rules file: a malformed one names its field and what is expected."""

from __future__ import annotations

from datetime import time

import pytest

from callback.errors import ConfigError
from callback.queues import rules_from_json
from callback.rules import Window
from callback.window_loader import windows_from_json


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ("09:00-12:00", 'rules.windows: expected a list of windows like [{"start": "09:00"'),
        ({"start": "09:00", "end": "12:00"}, "rules.windows: expected a list of windows"),
        (None, "rules.windows: expected a list of windows"),
        ([], "rules.windows: empty; give at least one window"),
        (["09:00-12:00"], "rules.windows[0]: expected an object like {\"start\": \"09:00\""),
        ([{"start": "09:00", "end": "12:00"}, {"start": "14:00"}],
         'rules.windows[1].end: missing; give the local time as "HH:MM"'),
        ([{"end": "12:00"}], "rules.windows[0].start: missing"),
        ([{"start": "12:00", "end": "09:00"}],
         "rules.windows[0].end: 09:00 is not after start 12:00"),
        ([{"start": "09:00", "end": "09:00"}], "rules.windows[0].end: 09:00 is not after start"),
        ([{"start": 9, "end": "12:00"}],
         'rules.windows[0].start: expected a local time written "HH:MM" (00:00-23:59), e.g. '
         '"09:00", not 9'),
        ([{"start": "9am", "end": "12:00"}], "rules.windows[0].start: expected a local time"),
        ([{"start": "09:00", "end": "24:00"}], "rules.windows[0].end: expected a local time"),
        ([{"start": "09:00+08:00", "end": "12:00"}], "rules.windows[0].start: expected a local"),
        ([{"start": "09:00", "end": "12:00", "weekdays": ["mon", "Funday"]}],
         "rules.windows[0].weekdays[1]: 'Funday' is not a day: expected 0-6 (Monday = 0) or a "
         "day name (mon, monday, 周一)"),
        ([{"start": "09:00", "end": "12:00", "weekdays": [7]}],
         "rules.windows[0].weekdays[0]: 7 is not a day"),
        ([{"start": "09:00", "end": "12:00", "weekdays": [True]}],
         "rules.windows[0].weekdays[0]: True is not a day"),
        ([{"start": "09:00", "end": "12:00", "weekdays": "mon"}],
         "rules.windows[0].weekdays: expected a list of days"),
        ([{"start": "09:00", "end": "12:00", "weekdays": 1}],
         "rules.windows[0].weekdays: expected a list of days"),
        ([{"start": "09:00", "end": "12:00", "weekdays": []}],
         "rules.windows[0].weekdays: empty; leave it out for every day"),
        # A misspelt key silently ignored would let calls go out on every day.
        ([{"start": "09:00", "end": "12:00", "days": [0, 1]}],
         "rules.windows[0]: unknown key(s) days: a window has start, end and (optionally) "
         "weekdays"),
    ],
)  # fmt: skip
def test_a_malformed_window_names_its_field_and_what_is_expected(
    windows: object, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        windows_from_json(windows)
    assert message in str(refused.value)
    with pytest.raises(ConfigError) as also:  # the same through the campaign's rules JSON
        rules_from_json({"windows": windows})
    assert message in str(also.value)


def test_window_days_may_be_numbers_or_names() -> None:
    windows = windows_from_json(
        [
            {"start": "9:00", "end": "12:00", "weekdays": ["Mon", "tuesday", 2, "周四", "星期五"]},
            {"start": "14:00", "end": "17:30:00"},
        ]
    )
    assert windows == (
        Window(time(9), time(12), frozenset({0, 1, 2, 3, 4})),
        Window(time(14), time(17, 30)),
    )
