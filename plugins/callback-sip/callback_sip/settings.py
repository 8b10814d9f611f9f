"""The ``[dialers.sip]`` table of callback.toml, read and checked once into ``SipSettings``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from callback.errors import ConfigError

TABLE = "[dialers.sip]"

#: PJSIP's compile-time PJSUA_MAX_CALLS in the pjsua2-python wheel. Calls still being torn down
#: hold a slot too, so ``max_concurrent`` leaves room below it (``SipSettings.pjsua_max_calls``).
PJSUA_MAX_CALLS = 32
_CALL_SLOT_SLACK = 4

_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$")


def _default_prompt_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "callback" / "prompts"


@dataclass(frozen=True)
class SipSettings:
    """Everything the SIP dialer needs to reach a trunk or PBX, checked and with defaults."""

    #: host[:port] of the trunk, PBX or SIP server that calls are sent to.
    server: str
    #: "udp" or "tcp": the SIP transport to the server.
    transport: str = "udp"
    #: Domain of our own SIP identity (From, registration); the server's host by default.
    domain: str = ""
    #: A SIP URI every request is routed through, e.g. "sip:proxy.example.gov.cn;lr".
    outbound_proxy: str | None = None
    #: REGISTER with the registrar before calling (a PBX extension); trunks usually do not.
    register: bool = False
    #: The registrar's SIP URI; "sip:<server>" by default.
    registrar: str = ""
    #: Digest credentials, answered to 401/407 challenges on REGISTER and INVITE.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    realm: str = "*"
    #: User part of our From when a CallRequest names no caller id.
    caller_id: str = "callback"
    display_name: str = ""
    #: Local address the SIP and RTP sockets bind to, and what Contact and SDP advertise
    #: (``public_address`` when behind NAT).
    bind_address: str = "0.0.0.0"
    public_address: str = ""
    #: Local SIP port (0 = any free port).
    sip_port: int = 5060
    #: First local RTP port (0 = any) and how many ports above it calls may use.
    rtp_port: int = 4000
    rtp_port_range: int = 1000
    #: Seconds to let a call ring when the CallRequest says 0.
    ring_timeout: int = 30
    #: Seconds to wait for any response to INVITE (even 100 Trying) before calling the peer
    #: unreachable. Over UDP a dead peer sends nothing, and RFC 3261 Timer B would wait 32 s.
    response_timeout: float = 8.0
    #: Pacing the dispatcher must respect (a trunk's channels and its call-attempt rate).
    calls_per_second: float = 1.0
    max_concurrent: int = 4
    #: Codecs to offer, in order of preference; others are disabled. G.711 A-law is what
    #: Chinese networks carry natively, so it comes first.
    codecs: tuple[str, ...] = ("PCMA", "PCMU")
    #: How CallRequest.to (E.164) is dialled: "e164" (+8613812345678) or "national"
    #: (13812345678, 057187654321); ``dial_prefix`` goes in front (e.g. "9" for an outside line).
    number_format: str = "e164"
    dial_prefix: str = ""
    #: Where synthesised prompts are cached and where recordings that replace them live.
    prompt_cache: Path = field(default_factory=_default_prompt_cache)
    recorded_prompts: Path | None = None
    #: espeak-ng voice for Mandarin turns without audio.
    voice: str = "cmn"
    #: A key pressed during a prompt stops the prompt and counts as input.
    barge_in: bool = True
    #: PJSIP log verbosity (0-6) forwarded to the "callback_sip.pjsip" logger. Level 3 logs
    #: call states and 4 whole SIP messages, both with full phone numbers: keep it low.
    log_level: int = 1
    user_agent: str = "callback-sip"

    @property
    def server_host(self) -> str:
        return _split_hostport(self.server)[0]

    @property
    def identity_domain(self) -> str:
        return self.domain or self.server_host

    @property
    def registrar_uri(self) -> str:
        return self.registrar or f"sip:{self.server}"

    @property
    def pjsua_max_calls(self) -> int:
        return min(PJSUA_MAX_CALLS, self.max_concurrent + _CALL_SLOT_SLACK)

    def target_uri(self, number: str) -> str:
        """Return the Request-URI for dialling ``number`` (E.164) at the configured server."""
        user = self.dial_prefix + format_number(number, self.number_format)
        params = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{user}@{self.server}{params}"


def format_number(number: str, number_format: str) -> str:
    """Turn an E.164 number into the digits a trunk expects; raise ValueError if it is not one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not an E.164 number: {exc}") from exc
    if number_format == "e164":
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return re.sub(r"\D", "", national)


def load_settings(table: Mapping[str, Any]) -> SipSettings:
    """Check a ``[dialers.sip]`` table and return its settings; ConfigError names the key."""
    known = set(SipSettings.__dataclass_fields__)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{TABLE}: unknown setting(s) {', '.join(unknown)}")
    if not table.get("server"):
        raise ConfigError(f"{TABLE}: 'server' is required (host[:port] of the trunk or PBX)")
    values: dict[str, Any] = {}
    for key, value in table.items():
        values[key] = _coerce(key, value)
    settings = SipSettings(**values)
    _validate(settings)
    return settings


_INTS = {"sip_port", "rtp_port", "rtp_port_range", "ring_timeout", "max_concurrent", "log_level"}
_FLOATS = {"response_timeout", "calls_per_second"}
_BOOLS = {"register", "barge_in"}
_PATHS = {"prompt_cache", "recorded_prompts"}


def _coerce(key: str, value: Any) -> Any:
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(f"{TABLE}: '{key}' must be true or false, not {value!r}")
        return value
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{TABLE}: '{key}' must be a whole number, not {value!r}")
        return value
    if key in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{TABLE}: '{key}' must be a number, not {value!r}")
        return float(value)
    if key in _PATHS:
        if not isinstance(value, str | os.PathLike):
            raise ConfigError(f"{TABLE}: '{key}' must be a path, not {value!r}")
        return Path(os.path.expanduser(os.fspath(value)))
    if key == "codecs":
        if isinstance(value, str):
            value = [part for part in re.split(r"[,\s]+", value) if part]
        if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
            raise ConfigError(f"{TABLE}: 'codecs' must be a list of codec names like [\"PCMA\"]")
        return tuple(value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{TABLE}: '{key}' must be text, not {value!r}")
    return value


def _validate(s: SipSettings) -> None:
    if _HOSTPORT.match(s.server) is None:
        raise ConfigError(f"{TABLE}: 'server' must be host or host:port, not {s.server!r}")
    if s.transport not in ("udp", "tcp"):
        raise ConfigError(f'{TABLE}: \'transport\' must be "udp" or "tcp", not {s.transport!r}')
    if s.number_format not in ("e164", "national"):
        raise ConfigError(
            f'{TABLE}: \'number_format\' must be "e164" or "national", not {s.number_format!r}'
        )
    if s.dial_prefix and not re.fullmatch(r"[0-9*#]+", s.dial_prefix):
        raise ConfigError(f"{TABLE}: 'dial_prefix' may hold only digits, * and #")
    for key in ("outbound_proxy",):
        uri = getattr(s, key)
        if uri and not uri.startswith(("sip:", "sips:")):
            raise ConfigError(f"{TABLE}: '{key}' must be a SIP URI (sip:host;lr), not {uri!r}")
    if s.registrar and not s.registrar.startswith(("sip:", "sips:")):
        raise ConfigError(f"{TABLE}: 'registrar' must be a SIP URI, not {s.registrar!r}")
    if (s.username is None) != (s.password is None):
        raise ConfigError(f"{TABLE}: 'username' and 'password' go together")
    if s.register and s.username is None:
        raise ConfigError(f"{TABLE}: 'register = true' needs 'username' and 'password'")
    for key in ("sip_port", "rtp_port"):
        if not 0 <= getattr(s, key) <= 65535:
            raise ConfigError(f"{TABLE}: '{key}' must be a port number (0 = any)")
    if s.rtp_port_range < 0:
        raise ConfigError(f"{TABLE}: 'rtp_port_range' cannot be negative")
    if s.ring_timeout <= 0 or s.response_timeout <= 0:
        raise ConfigError(f"{TABLE}: 'ring_timeout' and 'response_timeout' must be positive")
    if s.calls_per_second <= 0:
        raise ConfigError(f"{TABLE}: 'calls_per_second' must be positive")
    if not 1 <= s.max_concurrent <= PJSUA_MAX_CALLS - _CALL_SLOT_SLACK:
        raise ConfigError(
            f"{TABLE}: 'max_concurrent' must be between 1 and "
            f"{PJSUA_MAX_CALLS - _CALL_SLOT_SLACK} (PJSIP's PJSUA_MAX_CALLS is {PJSUA_MAX_CALLS})"
        )
    if not s.codecs:
        raise ConfigError(f"{TABLE}: 'codecs' needs at least one codec")
    if not 0 <= s.log_level <= 6:
        raise ConfigError(f"{TABLE}: 'log_level' must be between 0 and 6")
    if not re.fullmatch(r"[A-Za-z0-9+._-]+", s.caller_id):
        raise ConfigError(f"{TABLE}: 'caller_id' must be a SIP user part such as +8657112345")


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    match = _HOSTPORT.match(hostport)
    if match is None:
        return hostport, None
    return match.group(1), int(match.group(2)) if match.group(2) else None
