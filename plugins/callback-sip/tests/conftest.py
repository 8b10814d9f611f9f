"""Fixtures for the SIP dialer's tests; the helpers they use live in sipp_support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callback.dialing import CallEvent, Conversation

from sipp_support import LOOPBACK, EventLog, Sipp, free_udp_ports, start_sipp, stop_sipp


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that --strict-markers passes when the suite runs from the
    # repository root under the core's pytest settings.
    config.addinivalue_line(
        "markers", "sipp: a test that places real SIP calls to sipp on the loopback interface"
    )


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """Start sipp as the called party: ``sipp("reject.xml", fill={"STATUS": "486", ...})``.

    sipp answers ``calls`` calls with the scenario and exits; the test checks its exit status.
    """
    started: list[Sipp] = []

    def start(
        scenario: str,
        keys: dict[str, str] | None = None,
        calls: int = 1,
        fill: dict[str, str] | None = None,
    ) -> Sipp:
        peer = start_sipp(
            tmp_path / f"sipp-{len(started)}", scenario, calls=calls, keys=keys, fill=fill,
            pcaps=tuple(tmp_path.glob("*.pcap")),
        )  # fmt: skip
        started.append(peer)
        return peer

    yield start
    for peer in started:
        stop_sipp(peer)


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def make_dialer(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build SipDialers bound to the loopback interface; closed after the test."""
    from callback_sip import SipDialer

    dialers: list[SipDialer] = []

    def make(
        events: Callable[[CallEvent], None],
        conversation: Conversation | None = None,
        clock: Callable[[], datetime] | None = None,
        **settings: Any,
    ) -> SipDialer:
        table: dict[str, Any] = {
            "server": f"{LOOPBACK}:5060",
            "bind_address": LOOPBACK,
            "sip_port": 0,
            "rtp_port": free_udp_ports(8),
            "rtp_port_range": 8,
            "prompt_cache": str(tmp_path / "prompts"),
            "log_level": 3,
        }
        table.update(settings)
        dialer = SipDialer(table, events, conversation, clock=clock)
        dialers.append(dialer)
        return dialer

    yield make
    for dialer in dialers:
        dialer.close()
