"""The standard streams of callback's helper processes (callback.readerprocess, .screenprocess).

A helper is ``python -m callback.<module>``: its job comes in on standard input, its messages
go out on standard output, and it never re-imports the caller's ``__main__`` as
multiprocessing's spawn would.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable
from typing import BinaryIO


def serve_stdio(serve: Callable[[BinaryIO, BinaryIO], None]) -> None:
    """Run ``serve(job_in, out)`` as the helper's whole life, on its standard streams.

    The cycle collector is off: a helper makes millions of short-lived rows and no reference
    cycles worth collecting (its passes cost the reader a fifth of its time), and it ends
    with its job. Messages go to the real standard output; anything printed by mistake goes
    to standard error instead of corrupting the stream.
    """
    gc.disable()
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin.buffer, out)
    except BrokenPipeError:  # the parent stopped listening (it failed or was interrupted)
        pass
    finally:
        try:
            out.close()
        except BrokenPipeError:
            pass


def stop(child: subprocess.Popen[bytes]) -> None:
    """End a helper whose messages are no longer wanted (or all read), and reap it."""
    if child.stdout is not None:
        child.stdout.close()
    if child.poll() is None:
        child.kill()
    child.wait()
