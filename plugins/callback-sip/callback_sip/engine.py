"""The PJSIP thread: it owns the endpoint (``callback_sip.endpoint``), a command queue and a poll.

The calls it runs are ``callback_sip.calls`` (INVITE to BYE) and ``callback_sip.dialogue`` (the
IVR on an answered call); this module is the thread they run on.

Threading model (why it looks like this):

* PJSIP keeps one endpoint per process and wants every thread that calls it registered
  (pj_thread_register); pjsua2 objects (Call, Account, AudioMediaPlayer) must also be destroyed
  on such a thread. Python's garbage collector may drop an object on any thread, so the only
  safe rule is: **one thread creates, calls and drops every pjsua2 object** — this one. It
  calls ``libCreate`` (which makes it PJSIP's "main thread"), ``libHandleEvents`` in a loop,
  and ``libDestroy`` at the end.
* ``UaConfig.threadCnt = 0`` stops PJSIP from starting SIP worker threads, so SIP messages and
  timers are handled inside ``libHandleEvents`` here. RTP keeps PJSIP's own media thread (the
  jitter buffer needs steady service), and the null sound device's clock thread drives the
  conference bridge that plays prompts. Both are C threads; with ``mainThreadOnly = True``
  pjsua2 posts their callbacks (RFC 2833 digits, log lines) as pending jobs that run inside
  ``libHandleEvents`` on this thread (pjsua2 endpoint.cpp, ``utilAddPendingJob``). So every
  Python callback from PJSIP runs here, one at a time, and needs no lock.
* The SWIG wrapper releases the GIL inside ``libHandleEvents`` (the wheel is built with
  ``-threads``), so a 10 ms poll costs other Python threads nothing.
* Other threads talk to this one only through ``post`` (a SimpleQueue of callables run between
  polls), and this one talks back only through the ``report`` and ``ask`` callables the dialer
  hands in; those queue work for the core on other threads (``lanes.Lanes``) and return at once,
  because a slow database write here would stall every call's signalling.
* Prompt playback ends by the clock (the WAV's length from its header), not by pjsua2's
  ``onEof2``: that callback comes from the bridge's clock thread and is *not* posted to the main
  thread, so using it would bring a second Python thread into PJSIP.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from callback.errors import CallbackError, ConfigError
from callback_sip.calls import Calls, Report, guard
from callback_sip.dialogue import Ask
from callback_sip.endpoint import POLL_MS, UNREGISTER_TIMEOUT, SipEndpoint
from callback_sip.ivr import PreparedTurn
from callback_sip.record import CallRecord
from callback_sip.settings import TABLE, SipSettings

log = logging.getLogger("callback_sip")

#: Seconds close() lets calls hang up (BYE/CANCEL answered) before it gives up on them.
CLOSE_TIMEOUT = 5.0
#: Seconds close() keeps polling after hanging calls up, for the peer's 487/200 and our ACK.
CLOSE_LINGER = 0.5

# PJSIP has one endpoint per process; a second Engine would fail deep inside libCreate.
_PROCESS_CLAIM = threading.Lock()


class Engine:
    """Owns the PJSIP thread. ``start``, ``post`` and ``stop`` may be called from any thread."""

    def __init__(
        self, settings: SipSettings, report: Report, ask: Ask, *, interactive: bool = True
    ) -> None:
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="callback-sip", daemon=True)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._startup_error: BaseException | None = None
        # Everything below belongs to the PJSIP thread.
        self._endpoint = SipEndpoint(settings)
        # pjsua2 objects released inside PJSIP callbacks; dropped between polls.
        self._graveyard: list[Any] = []
        self._calls = Calls(
            settings, self._endpoint, report, ask, self._graveyard, interactive=interactive
        )

    # -- any thread ------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the PJSIP thread and wait until it is ready; raise what stopped it."""
        if not _PROCESS_CLAIM.acquire(blocking=False):
            raise ConfigError(
                f"{TABLE}: only one SIP dialer can run in a process (PJSIP keeps one endpoint "
                "per process); close the other one first"
            )
        try:
            self._thread.start()
        except BaseException:
            _PROCESS_CLAIM.release()
            raise
        if not self._ready.wait(timeout):
            self._stop.set()  # if it ever gets going, it shuts down again
            raise CallbackError(f"the SIP stack did not start within {timeout:g} seconds")
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            if isinstance(error, CallbackError):
                raise error
            raise CallbackError(f"the SIP stack failed to start: {error}") from error

    def post(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the PJSIP thread between two polls."""
        self._commands.put(command)

    def stop(self) -> None:
        """Hang up every call, wait for them to end (bounded), and destroy the endpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(CLOSE_TIMEOUT + UNREGISTER_TIMEOUT + 5.0)
            if self._thread.is_alive():
                log.error("the PJSIP thread did not stop; abandoning it")

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    # -- commands (posted by the dialer, run on the PJSIP thread) --------------------------

    def place_call(self, record: CallRecord) -> None:
        """Send the INVITE for ``record``."""
        self._calls.place_call(record)

    def hang_up(self, provider_id: str, reason: str = "hangup-requested") -> None:
        """End a call in progress: CANCEL before answer, BYE after."""
        self._calls.hang_up(provider_id, reason)

    def deliver_turn(self, provider_id: str, result: PreparedTurn | BaseException) -> None:
        """Take the core's next turn (or its failure) for a call and play it."""
        self._calls.deliver_turn(provider_id, result)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._endpoint.open()
            except BaseException as exc:
                self._startup_error = exc
                self._endpoint.close()
                return
            finally:
                self._ready.set()
            try:
                self._loop()
            except Exception:
                log.exception("the SIP polling loop failed; ending every call")
            self._shutdown()
        finally:
            _PROCESS_CLAIM.release()

    def _loop(self) -> None:
        give_up_at = linger_until = 0.0
        while True:
            self._endpoint.poll(POLL_MS)
            self._graveyard.clear()
            self._run_commands()
            now = time.monotonic()
            self._calls.tick(now)
            # pjsua2 objects released by callbacks die here, outside any PJSIP callback.
            self._graveyard.clear()
            if self._stop.is_set():
                if not self._calls.closing:
                    self._calls.closing = True
                    give_up_at = now + CLOSE_TIMEOUT
                    # pjsua reports a call DISCONNECTED as soon as it sends CANCEL or BYE; the
                    # peer's 487 (which we must ACK) or 200 comes later, and pjsua2 cannot tell
                    # us when those transactions end: keep polling a little after the last call.
                    linger_until = now + (CLOSE_LINGER if self._calls else 0.0)
                    self._calls.end_all("dialer-closing")
                if (not self._calls and now >= linger_until) or now >= give_up_at:
                    return

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            guard(command)

    # -- endpoint life -----------------------------------------------------------------------

    def _shutdown(self) -> None:
        self._calls.closing = True
        self._calls.force_finish_all()
        self._graveyard.clear()
        # Commands that arrived too late: calls posted during close never started.
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            guard(command)
        self._graveyard.clear()
        self._endpoint.close()
