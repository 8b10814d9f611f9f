"""Fixtures for the SIP dialer's tests; the helpers they use live in sipp_support.py."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callback.dialing import CallEvent, Conversation

from sipp_support import (
    CALL_TIMEOUT,
    LOOPBACK,
    SCENARIOS,
    EventLog,
    Sipp,
    free_udp_ports,
    wait_until_bound,
)


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
        workdir = tmp_path / f"sipp-{len(started)}"
        workdir.mkdir()
        for pcap in tmp_path.glob("*.pcap"):
            shutil.copy(pcap, workdir)
        script = workdir / scenario
        text = (SCENARIOS / scenario).read_text()
        for marker, value in (fill or {}).items():
            text = text.replace(f"@{marker}@", value)
        script.write_text(text)
        port = free_udp_ports(1)
        media_port = free_udp_ports(4)
        argv = [
            "sipp", "-sf", str(script),
            "-i", LOOPBACK, "-p", str(port), "-mi", LOOPBACK, "-mp", str(media_port),
            "-m", str(calls), "-nostdin", "-timeout", f"{CALL_TIMEOUT:g}s", "-timeout_error",
            "-trace_msg", "-message_file", "messages.log",
            "-trace_err", "-error_file", "errors.log",
        ]  # fmt: skip
        for key, value in (keys or {}).items():
            argv += ["-key", key, value]
        with (workdir / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
        peer = Sipp(process, port, media_port, workdir)
        started.append(peer)
        wait_until_bound(peer)
        return peer

    yield start
    for peer in started:
        if peer.process.poll() is None:
            peer.process.terminate()
            try:
                peer.process.wait(5)
            except subprocess.TimeoutExpired:
                peer.process.kill()
                peer.process.wait()


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
