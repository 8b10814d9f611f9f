"""Run work for the core in order per call, in parallel across calls, off the PJSIP thread.

The event sink and the Conversation are core code that may write to a database or render a
prompt; on the PJSIP thread that would stall every call's signalling and RTP. Each call gets a
lane: its jobs (events, ``begin``, ``reply``) run one after another in submission order, so the
core always hears "answered" before it is asked for the first turn and hears "completed" only
after the last reply. Lanes share one thread pool.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Lanes:
    """Per-key serial job queues on a shared pool of threads."""

    def __init__(self, workers: int, name: str = "callback-sip-core") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._closed = False

    def submit(self, key: str, job: Callable[[], None]) -> None:
        """Queue ``job`` behind the earlier jobs of ``key``."""
        with self._lock:
            if self._closed:
                log.warning("dropped a job for call %s: the dialer is closed", key)
                return
            queue = self._queues.get(key)
            if queue is not None:  # a drain is running for this key and will pick it up
                queue.append(job)
                return
            self._queues[key] = deque([job])
        self._pool.submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                job = queue.popleft()
            try:
                job()
            except Exception:  # a failing sink must not stop the lane or the pool
                log.exception("a job for call %s failed", key)

    def close(self) -> None:
        """Run what is queued, then stop the threads."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
