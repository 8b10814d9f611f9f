"""Helpers for the SIP dialer's tests: sipp as the called party, keypad pcaps, a fake survey.

sipp plays the citizen's phone (a UAS) on the loopback interface; the dialer under test is the
real thing, PJSIP included. Nothing is mocked and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from callback.dialing import FINAL_EVENTS, CallEvent, Conversation, EventKind, Turn

SCENARIOS = Path(__file__).parent / "scenarios"
LOOPBACK = "127.0.0.1"

#: PJSIP numbers telephone-event formats from 120 upwards, one per clock rate of the enabled
#: codecs (pjsua_media.c); with only 8 kHz codecs enabled (our default), 8 kHz events are 120.
#: The scenarios answer with the offered number, but the pcap is written before the call.
TELEPHONE_EVENT_PT = 120
#: answer_keypad.xml waits 1600 ms for keypad.pcap before it sends its SIP INFO key.
KEYPAD_PCAP_MAX_SECONDS = 1.4
#: How long a test waits for a call's final event.
CALL_TIMEOUT = 20.0

_EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_KEY_OF_CODE = {code: key for key, code in _EVENT_CODES.items()}


def _have_pjsua2() -> bool:
    try:
        import pjsua2  # noqa: F401
    except ImportError:
        return False
    return True


needs_pjsua2 = pytest.mark.skipif(not _have_pjsua2(), reason="needs pjsua2-python")
needs_sipp = pytest.mark.skipif(
    shutil.which("sipp") is None or not _have_pjsua2(),
    reason="needs sipp (Debian package sip-tester) and pjsua2-python",
)


def _below_ephemeral() -> int:
    """The first port the kernel may hand out on its own (bind to 0, or connect without one)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_udp_ports(count: int) -> int:
    """Return the first of ``count`` consecutive free UDP ports on the loopback interface.

    A port found free is released before sipp or PJSIP binds it. Ports the kernel hands out
    by itself (the ephemeral range: every client socket of the suite) could be taken in
    between, and were: sipp failed with "Address already in use" on its RTP port. So the
    ports come from below that range, where only a test that asks for a port gets one.
    """
    top = min(_below_ephemeral(), 60000) - count
    if top < 21000:  # a kernel that hands out nearly every port: take our chances
        top = 60000
    for _ in range(200):
        base = random.randrange(20000, top, 2)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((LOOPBACK, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free UDP ports on the loopback interface")


def free_tcp_port() -> int:
    """Return a TCP port on which nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def write_tone_wav(path: Path, seconds: float = 0.4, hertz: float = 440.0) -> Path:
    """Write an 8 kHz mono 16-bit tone: a prompt whose RTP is easy to tell from silence."""
    frames = int(8000 * seconds)
    samples = [int(8000 * math.sin(2 * math.pi * hertz * i / 8000)) for i in range(frames)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack(f"<{frames}h", *samples))
    return path


def write_keypad_pcap(path: Path, keys: str, event_pt: int = TELEPHONE_EVENT_PT) -> float:
    """Write RFC 4733 telephone-events for ``keys`` as a pcap for sipp's play_pcap_audio.

    Each key is six 20 ms updates (marker on the first) and three end packets, as a phone
    sends them; a space is an extra pause. sipp rewrites addresses and ports, not RTP, so the
    payload type must be the one PJSIP offered. Returns the playing time in seconds.
    """
    packets: list[tuple[float, bytes]] = []
    at, sequence, timestamp, ssrc = 0.0, 4000, 16000, 0x5EED1234
    for key in keys:
        if key == " ":
            at += 0.1
            continue
        code = _EVENT_CODES[key]
        duration = 0
        for update in range(6):
            duration = 160 * (update + 1)
            marker = 0x80 if update == 0 else 0
            rtp = _rtp(marker | event_pt, sequence, timestamp, ssrc, code, 0, duration)
            packets.append((at, rtp))
            sequence += 1
            at += 0.02
        for _ in range(3):
            packets.append((at, _rtp(event_pt, sequence, timestamp, ssrc, code, 0x80, duration)))
            sequence += 1
            at += 0.02
        timestamp += duration + 800  # the gap below, in 8 kHz samples
        at += 0.1
    frames = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet link type
    for when, rtp in packets:
        udp = struct.pack("!HHHH", 4000, 4000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
            socket.inet_aton(LOOPBACK), socket.inet_aton(LOOPBACK),
        ) + udp  # fmt: skip
        frame = bytes(12) + b"\x08\x00" + ip
        seconds, micros = divmod(round(when * 1_000_000), 1_000_000)
        frames.append(struct.pack("<IIII", 1_700_000_000 + seconds, micros, len(frame), len(frame)))
        frames.append(frame)
    path.write_bytes(b"".join(frames))
    return packets[-1][0] if packets else 0.0


def _rtp(
    second_byte: int, sequence: int, timestamp: int, ssrc: int, code: int, end: int, duration: int
) -> bytes:
    header = struct.pack("!BBHII", 0x80, second_byte, sequence & 0xFFFF, timestamp, ssrc)
    return header + struct.pack("!BBH", code, end | 10, duration)  # volume -10 dBm0


@dataclass
class Sipp:
    """A running sipp playing one scenario for one call."""

    process: subprocess.Popen[bytes]
    port: int
    media_port: int
    workdir: Path

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def wait(self, timeout: float = CALL_TIMEOUT) -> int:
        """Wait for sipp to finish its call; its exit status is 0 when the scenario passed."""
        return self.process.wait(timeout)

    def messages(self) -> str:
        """The SIP messages sipp saw and sent, and its errors: for assertion messages."""
        parts = []
        for name in ("messages.log", "errors.log", "stderr.log"):
            log = self.workdir / name
            if log.exists():
                parts.append(f"--- {name}\n{log.read_text(errors='replace')}")
        return "\n".join(parts)


def wait_until_bound(peer: Sipp, timeout: float = 5.0) -> None:
    """Return once sipp holds its SIP port, so our first INVITE is not lost to a race."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise AssertionError(f"sipp exited with {peer.process.returncode}\n{peer.messages()}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, peer.port))
            except OSError:
                return
        time.sleep(0.01)
    raise AssertionError(f"sipp did not bind {peer.address} within {timeout}s")


class EventLog:
    """The event sink: keeps every CallEvent and lets a test wait for a call's final one."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.threads: set[str] = set()
        self._changed = threading.Condition()

    def __call__(self, event: CallEvent) -> None:
        with self._changed:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()

    def of(self, provider_id: str) -> list[CallEvent]:
        with self._changed:
            return [e for e in self.events if e.provider_call_id == provider_id]

    def wait_kind(self, provider_id: str, kind: EventKind, timeout: float = CALL_TIMEOUT) -> None:
        """Wait until the call has had an event of ``kind``."""
        with self._changed:
            seen = self._changed.wait_for(
                lambda: any(
                    e.provider_call_id == provider_id and e.kind == kind for e in self.events
                ),
                timeout,
            )
        assert seen, f"no {kind} event within {timeout}s; got {kinds(self.of(provider_id))}"

    def wait_final(self, provider_id: str, timeout: float = CALL_TIMEOUT) -> list[CallEvent]:
        """Wait for the call's final event and return all of its events, in order."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: any(
                    e.provider_call_id == provider_id and e.kind in FINAL_EVENTS
                    for e in self.events
                ),
                timeout,
            )
        events = self.of(provider_id)
        assert done, f"no final event within {timeout}s; got {[e.kind for e in events]}"
        return events


def kinds(events: list[CallEvent]) -> list[EventKind]:
    return [event.kind for event in events]


@dataclass
class ScriptedConversation(Conversation):
    """A survey of fixed turns: the n-th reply gets turn n+1; the last turn repeats."""

    turns: list[Turn]
    begun: list[int] = field(default_factory=list)
    replies: list[tuple[int, str, str | None]] = field(default_factory=list)

    def begin(self, attempt_id: int) -> Turn:
        self.begun.append(attempt_id)
        return self.turns[0]

    def reply(self, attempt_id: int, digits: str, speech: str | None = None) -> Turn:
        self.replies.append((attempt_id, digits, speech))
        return self.turns[min(len(self.replies), len(self.turns) - 1)]

    @property
    def digits(self) -> list[str]:
        return [digits for _, digits, _ in self.replies]


class AudioTap:
    """Watch the RTP sent to a UDP port on the loopback interface: sound and keys.

    Reads raw frames from ``lo`` (AF_PACKET, needs root or CAP_NET_RAW), so it sees exactly
    what the peer receives. A G.711 A-law byte of 0xD5/0x55 (or its neighbours) is silence.
    """

    _QUIET = frozenset({0xD5, 0x55, 0xD4, 0x54})

    def __init__(self, port: int) -> None:
        self.port = port
        self.loud_packets = 0
        self.packets = 0
        #: Keys sent as RFC 2833 telephone-events, in order.
        self.keys = ""
        self._event_stamps: set[int] = set()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, name="audio-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != socket.PACKET_OUTGOING:
                continue  # loopback shows each packet twice: count the sending copy only
            self._count(frame[14:])

    def _count(self, ip: bytes) -> None:
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            return
        udp = ip[(ip[0] & 0x0F) * 4 :]
        if struct.unpack("!H", udp[2:4])[0] != self.port or len(udp) < 8 + 12:
            return
        rtp = udp[8:]
        payload_type = rtp[1] & 0x7F
        if payload_type == TELEPHONE_EVENT_PT and len(rtp) >= 16:
            # One event is several packets with the same RTP timestamp (RFC 4733 §2.5.1).
            timestamp = struct.unpack("!I", rtp[4:8])[0]
            if timestamp not in self._event_stamps:
                self._event_stamps.add(timestamp)
                self.keys += _KEY_OF_CODE.get(rtp[12], "?")
            return
        if payload_type != 8:  # PCMA only; other formats are not what we offered first
            return
        self.packets += 1
        payload = rtp[12:]
        loud = sum(1 for byte in payload if byte not in self._QUIET)
        if payload and loud > len(payload) // 2:
            self.loud_packets += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self._sock.close()


def start_sipp(
    workdir: Path,
    scenario: str,
    *,
    calls: int = 1,
    keys: dict[str, str] | None = None,
    fill: dict[str, str] | None = None,
    pcaps: tuple[Path, ...] = (),
    timeout: float = CALL_TIMEOUT,
) -> Sipp:
    """Start sipp as the called party outside a test's own fixtures (``stop_sipp`` ends it).

    As the ``sipp`` fixture does: the scenario is copied into ``workdir`` with its @MARKERS@
    filled, next to ``pcaps``; sipp answers ``calls`` calls and exits, and gives up after
    ``timeout`` seconds in all (sipp's -timeout is global, not per call).
    """
    workdir.mkdir(parents=True)
    for pcap in pcaps:
        shutil.copy(pcap, workdir)
    text = (SCENARIOS / scenario).read_text()
    for marker, value in (fill or {}).items():
        text = text.replace(f"@{marker}@", value)
    script = workdir / scenario
    script.write_text(text)
    port = free_udp_ports(1)
    media_port = free_udp_ports(4)
    argv = [
        "sipp", "-sf", str(script),
        "-i", LOOPBACK, "-p", str(port), "-mi", LOOPBACK, "-mp", str(media_port),
        "-m", str(calls), "-nostdin", "-timeout", f"{timeout:g}s", "-timeout_error",
        "-trace_msg", "-message_file", "messages.log",
        "-trace_err", "-error_file", "errors.log",
    ]  # fmt: skip
    for key, value in (keys or {}).items():
        argv += ["-key", key, value]
    with (workdir / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
    peer = Sipp(process, port, media_port, workdir)
    try:
        wait_until_bound(peer)
    except BaseException:
        stop_sipp(peer)
        raise
    return peer


def stop_sipp(peer: Sipp) -> None:
    """Terminate sipp if it still runs (kill it if it will not go)."""
    if peer.process.poll() is None:
        peer.process.terminate()
        try:
            peer.process.wait(5)
        except subprocess.TimeoutExpired:
            peer.process.kill()
            peer.process.wait()


@dataclass(frozen=True)
class SippMessage:
    """One SIP message in sipp's -trace_msg log: when, which way, and its text."""

    at: datetime
    received: bool  # False: sipp sent it
    text: str

    @property
    def start_line(self) -> str:
        """The request or status line, e.g. ``INVITE sip:...`` or ``SIP/2.0 200 OK``."""
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")

    def header(self, name: str) -> str:
        found = re.search(rf"^\s*{name}:\s*(.*?)\s*$", self.text, flags=re.M | re.I)
        return found.group(1) if found else ""


def sipp_messages(peer: Sipp) -> list[SippMessage]:
    """The messages sipp received and sent, in order, from its messages.log."""
    log = (peer.workdir / "messages.log").read_text(errors="replace")
    banner = r"^-{5,} (\S+ \S+)\n\S+ message (received|sent) .*?:\n(.*?)(?=^-{5,}|\Z)"
    return [
        SippMessage(datetime.fromisoformat(at), way == "received", text)
        for at, way, text in re.findall(banner, log, flags=re.M | re.S)
    ]


def received_invites(peer: Sipp) -> dict[str, str]:
    """The INVITEs sipp received (retransmissions once), by Call-ID: the user part dialled."""
    dialled: dict[str, str] = {}
    for message in sipp_messages(peer):
        request = re.match(r"INVITE sip:([^@;>]+)@", message.start_line)
        call_id = message.header("Call-ID")
        if message.received and request and call_id:
            dialled[call_id] = request.group(1)
    return dialled
