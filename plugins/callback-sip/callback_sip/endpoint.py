"""The pjsua2 Endpoint of the SIP dialer: configuration, transport, codecs, accounts, teardown.

Used only on the PJSIP thread (see ``callback_sip.engine`` for why). Every setting that PJSIP
needs from ``[dialers.sip]`` is applied here, with the quirk behind each non-default choice.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import time
from typing import Any

import pjsua2 as pj

from callback.errors import CallbackError, ConfigError
from callback_sip.settings import TABLE, SipSettings

log = logging.getLogger("callback_sip")
pjsip_log = logging.getLogger("callback_sip.pjsip")

#: Longest wait inside libHandleEvents: how late a posted command or a deadline can run.
POLL_MS = 10
#: Seconds to let an un-REGISTER complete on close.
UNREGISTER_TIMEOUT = 1.0

_PJ_LOG_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


class _Account(pj.Account):
    """A pjsua2 Account that logs how registration went."""

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 - pjsua2 name
        try:
            level = logging.INFO if prm.code // 100 == 2 else logging.WARNING
            log.log(level, "SIP registration: %s %s", prm.code, prm.reason)
        except Exception:  # never let an exception into C
            pass


class _LogWriter(pj.LogWriter):
    """Send PJSIP's log lines to the ``callback_sip.pjsip`` logger instead of stdout."""

    def write(self, entry: pj.LogEntry) -> None:
        try:
            level = _PJ_LOG_LEVELS.get(entry.level, logging.DEBUG)
            pjsip_log.log(level, "%s", entry.msg.rstrip())
        except Exception:
            pass


class SipEndpoint:
    """The process's one pjsua2 Endpoint, its SIP transport and its accounts (one per From)."""

    def __init__(self, settings: SipSettings) -> None:
        self._settings = settings
        self._ep: Any = None
        self._transport_id: int | None = None
        self._accounts: dict[str, _Account] = {}

    def poll(self, msec: int = POLL_MS) -> None:
        """Handle SIP events and pjsua2's pending jobs for up to ``msec`` milliseconds."""
        self._ep.libHandleEvents(msec)

    def open(self) -> None:
        """Create, configure and start the endpoint; raise CallbackError if PJSIP refuses."""
        s = self._settings
        _quiet_pjlib_startup()
        self._ep = pj.Endpoint()
        self._ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # we poll: see callback_sip.engine
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = s.pjsua_max_calls
        config.uaConfig.userAgent = s.user_agent
        config.logConfig.level = s.log_level
        # pjsua hands only lines up to console_level to the log callback (pjsua_core.c).
        config.logConfig.consoleLevel = s.log_level
        config.logConfig.msgLogging = s.log_level >= 4
        writer = _LogWriter()
        # libDestroy deletes the writer (endpoint.cpp); C++ must own it, or Python frees it twice.
        config.logConfig.writer = writer.__disown__()
        # Narrowband telephony end to end: no resampling between G.711, prompts and the bridge.
        config.medConfig.clockRate = 8000
        config.medConfig.sndClockRate = 8000
        config.medConfig.channelCount = 1
        config.medConfig.ecTailLen = 0  # no microphone, nothing to cancel
        config.medConfig.noVad = True  # keep sending during silences in prompts
        try:
            self._ep.libInit(config)
            self._transport_id = self._create_transport()
            self._ep.libStart()
            # No sound card on a server; the null device still clocks the conference bridge
            # that carries prompts into calls (pjsua_set_null_snd_dev).
            self._ep.audDevManager().setNullDev()
            self._set_codecs()
            self.account(None)  # the default identity, which registers if configured
            return
        except pj.Error as exc:
            reason = exc.reason
        raise CallbackError(f"{TABLE}: the SIP stack failed to start: {reason}")

    def _create_transport(self) -> int:
        s = self._settings
        config = pj.TransportConfig()
        config.port = s.sip_port
        if s.bind_address not in ("", "0.0.0.0"):
            config.boundAddress = s.bind_address
        if s.public_address:
            config.publicAddress = s.public_address
        kind = pj.PJSIP_TRANSPORT_TCP if s.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
        try:
            return int(self._ep.transportCreate(kind, config))
        except pj.Error as exc:
            reason = exc.reason
        # Raised outside the except block, so the pj.Error (and its frames) are not chained.
        raise ConfigError(
            f"{TABLE}: cannot open SIP {s.transport.upper()} port "
            f"{s.bind_address}:{s.sip_port}: {reason}"
        )

    def _set_codecs(self) -> None:
        available = [info.codecId for info in self._ep.codecEnum2()]
        for codec_id in available:
            self._ep.codecSetPriority(codec_id, 0)  # priority 0 disables a codec
        chosen = 0
        for rank, wanted in enumerate(self._settings.codecs):
            for codec_id in available:
                if codec_id.lower().startswith(wanted.lower().rstrip("/") + "/"):
                    self._ep.codecSetPriority(codec_id, 255 - rank)
                    chosen += 1
        if not chosen:
            raise ConfigError(
                f"{TABLE}: none of the codecs {list(self._settings.codecs)} is available; "
                f"PJSIP offers {', '.join(available)}"
            )

    def account(self, caller_id: str | None) -> _Account:
        """Return the account whose From carries ``caller_id`` (pjsua sets From per account)."""
        s = self._settings
        user = caller_id or s.caller_id
        account = self._accounts.get(user)
        if account is not None:
            return account
        config = pj.AccountConfig()
        display = f'"{s.display_name}" ' if s.display_name else ""
        config.idUri = f"{display}<sip:{user}@{s.identity_domain}>"
        # Only the default identity registers; the others exist to put another From on INVITEs.
        registers = s.register and not self._accounts
        config.regConfig.registrarUri = s.registrar_uri if registers else ""
        config.regConfig.registerOnAdd = registers
        if s.username is not None:
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", s.realm, s.username, 0, s.password or "")
            )
        if s.outbound_proxy:
            config.sipConfig.proxies.append(s.outbound_proxy)
        if self._transport_id is not None:
            config.sipConfig.transportId = self._transport_id
        media = config.mediaConfig
        if s.bind_address not in ("", "0.0.0.0"):
            # Without this PJSIP binds RTP to every interface and advertises its guess of the
            # host's address in SDP, which is wrong on multi-homed servers (and in tests).
            media.transportConfig.boundAddress = s.bind_address
        if s.public_address:
            media.transportConfig.publicAddress = s.public_address
        media.transportConfig.port = s.rtp_port
        media.transportConfig.portRange = s.rtp_port_range
        # With codec locking on, pjsua sends a re-INVITE/UPDATE after answer whenever the answer
        # lists several codecs; many trunks (and sipp) do not expect it.
        media.lockCodecEnabled = False
        config.natConfig.iceEnabled = False
        config.natConfig.turnEnabled = False
        account = _Account()
        account.create(config, user == s.caller_id)
        self._accounts[user] = account
        return account

    def close(self) -> None:
        """Unregister (waiting briefly), drop the accounts and destroy the endpoint.

        The caller has ended every call and dropped every Call and player first: pjsua2
        objects must die before the library, on this thread.
        """
        if self._ep is None:
            return
        for account in self._accounts.values():
            try:
                account.shutdown()  # sends the un-REGISTER if registered
            except pj.Error as exc:
                log.warning("SIP account shutdown failed: %s", exc.reason)
        self._accounts.clear()
        if self._settings.register:
            deadline = time.monotonic() + UNREGISTER_TIMEOUT
            while time.monotonic() < deadline:
                self._ep.libHandleEvents(POLL_MS)
        try:
            # Calls and registrations were ended above; NO_NETWORK skips pjsua's fixed
            # one-second wait for them (pjsua_destroy2).
            self._ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        except pj.Error as exc:
            log.warning("PJSIP did not shut down cleanly: %s", exc.reason)
        # The Endpoint's C++ destructor clears pjsua2's singleton; only then can a later
        # dialer in this process create a new one. Destroy it now rather than when the proxy's
        # last reference goes: a traceback of a pj.Error (kept by a caller's exception chain)
        # may hold it for a long time. SWIG disowns the proxy, so it is not deleted twice.
        endpoint, self._ep = self._ep, None
        type(endpoint).__swig_destroy__(endpoint)


def _quiet_pjlib_startup() -> None:
    """Stop libCreate from printing its banner to stdout before our log settings apply.

    pjsua2 has no way to set the log level before ``libInit``, and ``libCreate`` logs at level
    5 to stdout, where callback writes results. ``pj_log_set_level`` is plain PJLIB API,
    exported by the extension module, so we call it through ctypes; if that fails we only
    lose the silence.
    """
    try:
        pattern = os.path.join(os.path.dirname(pj.__file__), "_pjsua2*")
        for library in glob.glob(pattern):
            ctypes.CDLL(library).pj_log_set_level(0)
            return
    except (OSError, AttributeError):
        pass
