"""Screen a share of a SQLite frame in a second process while this one screens the rest.

Sampling a million-case frame is mostly two single-threaded jobs: SQLite joining cases to
their numbers and Python turning the rows into objects (1.25 s), then the exclusions
(callback.screening, 0.58 s). A child process takes the cases above a split id: it reads
them on a connection of its own, screens them, and sends its ``Share`` back, which
``callback.screening.combine`` joins to this process's. The two halves overlap on two cores.

Only for a SQLite file, and only inside the caller's write transaction (``BEGIN
IMMEDIATE``): no other writer can commit while it is held, so the child's read sees the same
frame as the caller's, and the caller writes nothing to cases or contacts before the draw.
The child never writes; if it fails, its exception is raised here and the caller's
transaction rolls back.

As callback.readerprocess, the child is ``python -m callback.screenprocess``: the job goes in
by pickle on its standard input, the share comes back by marshal on its standard output.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

from callback.childprocess import serve_stdio, stop
from callback.errors import CallbackError
from callback.screening import Share, screen_share

#: Below this many case ids a second process costs more to start (about 60 ms) than it saves.
PARALLEL_MIN_CASES = 100_000
#: The caller's share of the cases: the child also starts up and sends its share back.
CALLER_SHARE = 0.55
_SHARE, _ERROR = b"s", b"e"


class ScreeningFailed(CallbackError):
    """The screening process failed; the message says how."""


def worth_a_process(database: str | None, lowest: int | None, highest: int | None) -> bool:
    """Whether to screen in two processes: a SQLite file, a large frame, two cores."""
    return (
        database is not None
        and os.path.isfile(database)
        and lowest is not None
        and highest is not None
        and highest - lowest >= PARALLEL_MIN_CASES
        and (os.cpu_count() or 1) > 1
    )


def split_id(lowest: int, highest: int) -> int:
    """The last case id of the caller's share; the child screens the ids above it."""
    return lowest + int((highest - lowest) * CALLER_SHARE)


@contextmanager
def screening_child(
    database: str,
    sql: str,
    parameters: Sequence[Any],
    do_not_call: Collection[str],
    recently_called: Collection[str],
    one_per_phone: bool,
) -> Iterator[Callable[[], Share]]:
    """Start a child that screens the rows of ``sql``; yield a function returning its Share.

    The child is stopped when the block ends, whether or not its share was taken.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "callback.screenprocess"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    job = (
        database, sql, tuple(parameters), list(do_not_call), list(recently_called), one_per_phone
    )  # fmt: skip
    # The job (half a megabyte with the barred numbers) fills the pipe before the child has
    # started to read it: a thread waits for it, not this process, which has its own share.
    feeder = threading.Thread(target=_send, args=(child.stdin, job))
    feeder.start()
    try:

        def result() -> Share:
            assert child.stdout is not None
            kind = child.stdout.read(1)
            if kind == _ERROR:
                raise pickle.load(child.stdout)
            body = child.stdout.read()
            if kind != _SHARE or not body:
                code = child.wait()
                raise ScreeningFailed(
                    f"the screening process ended unexpectedly (exit code {code})"
                )
            return Share(*marshal.loads(body))  # the fields in order: see _serve

        yield result
    finally:
        stop(child)
        feeder.join()


def _send(stream: IO[bytes], job: tuple[Any, ...]) -> None:
    try:
        with stream:
            pickle.dump(job, stream, protocol=pickle.HIGHEST_PROTOCOL)
    except (BrokenPipeError, ValueError):  # the child died first: ``result`` says how
        pass


def _serve(job_in: BinaryIO, out: BinaryIO) -> None:
    database, sql, parameters, do_not_call, recently_called, one_per_phone = pickle.load(job_in)
    try:
        # Read-only: the child can never write to the frame, whatever goes wrong.
        conn = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(sql, parameters).fetchall()
        finally:
            conn.close()
        share = screen_share(rows, set(do_not_call), set(recently_called), one_per_phone)
        del rows
        # Field by field in the dataclass's order (``astuple`` would copy every list).
        body = marshal.dumps(tuple(getattr(share, f.name) for f in dataclasses.fields(share)))
        out.write(_SHARE)
        out.write(body)
    except Exception as exc:  # report everything: the parent decides, and rolls back
        try:
            message = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot be pickled
            message = pickle.dumps(ScreeningFailed(f"screening failed: {exc!r}"))
        out.write(_ERROR)
        out.write(message)
    out.flush()


def main() -> None:
    serve_stdio(_serve)


if __name__ == "__main__":
    main()
