"""Fixtures: a running fake Twilio REST API, an event sink, a fixed clock, a dialer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from callback.dialing import CallEvent
from callback_twilio import TwilioDialer
from callback_twilio.testing import DEFAULT_PUBLIC_BASE_URL, FakeTwilioAPI

NOW = datetime(2025, 3, 6, 2, 30, tzinfo=UTC)  # 10:30 in Hangzhou, a Thursday


@pytest.fixture
def api() -> Iterator[FakeTwilioAPI]:
    with FakeTwilioAPI(clock=lambda: NOW) as fake:
        yield fake


@pytest.fixture
def events() -> list[CallEvent]:
    return []


@pytest.fixture
def dialer(api: FakeTwilioAPI, events: list[CallEvent]) -> Iterator[TwilioDialer]:
    made = TwilioDialer(
        api.settings(public_base_url=DEFAULT_PUBLIC_BASE_URL), events.append, clock=lambda: NOW
    )
    yield made
    made.close()
