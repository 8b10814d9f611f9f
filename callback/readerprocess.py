"""Read and normalise an export in a second process while this one writes to the database.

On a two-core machine an import is two jobs of about the same size: turning text into facts
(CSV parsing, phones, dates, fingerprints) and writing them (SQLite B-trees). In one process
they add up; here a child process reads the file and sends normalised chunks back, so the two
overlap. The child is ``python -m callback.readerprocess`` speaking pickle over its standard
output: unlike multiprocessing's spawn it never re-imports the caller's ``__main__``, so the
importer works the same from the CLI, from tests and from anyone's script. The pipe holds
less than a chunk, which keeps memory flat: the child runs at most one chunk ahead. The child
never touches the database; if it fails, its exception is raised here and the import's
transaction rolls back.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from callback.config import Settings
from callback.errors import ImportFileError
from callback.records import Chunk
from callback.sources import Layout, Mapping, Source

#: Below this size a second process costs more to start (about half a second) than it saves.
PARALLEL_MIN_BYTES = 8 << 20
_END = "end"


def use_reader_process(source: Source, processes: int | None) -> bool:
    if processes is not None:
        return processes > 1
    return source.size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1


def chunks_from_child(
    path: str | Path,
    source: Source,
    layout: Layout,
    mapping: Mapping,
    settings: Settings,
    now: datetime,
    chunk_rows: int,
    encoding: str | None,
) -> Iterator[Chunk]:
    """Yield the file's chunks as a child process reads and normalises them."""
    job = (str(path), encoding, source.sheet, layout, mapping, settings, now, chunk_rows)
    child = subprocess.Popen(
        [sys.executable, "-m", "callback.readerprocess"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        pickle.dump(job, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.close()
        while True:
            try:
                message = pickle.load(child.stdout)
            except EOFError:
                code = child.wait()
                raise ImportFileError(
                    str(path), f"the reader process ended unexpectedly (exit code {code})"
                ) from None
            if message == _END:
                return
            if isinstance(message, BaseException):
                raise message
            yield message
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()
        child.wait()


def _serve(job_in: BinaryIO, out: BinaryIO) -> None:
    from callback.importing import find_header, read_chunks
    from callback.sources import open_source

    job: tuple[str, str | None, str | None, Layout, Mapping, Settings, datetime, int]
    job = pickle.load(job_in)
    path, encoding, sheet, layout, mapping, settings, now, chunk_rows = job

    def send(message: Any) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        source = open_source(path, encoding, sheet, checksum=False)
        try:
            found, first = find_header(source, mapping)
            if found != layout:
                raise ImportFileError(path, "the file changed while it was being imported")
            for chunk in read_chunks(source, layout, first, mapping, settings, now, chunk_rows):
                send(chunk)
        finally:
            source.close()
        send(_END)
    except Exception as exc:  # report everything: the parent decides, and rolls back
        try:
            send(exc)
        except Exception:  # an exception that cannot be pickled
            send(ImportFileError(path, f"reading failed: {exc!r}"))


def main() -> None:
    # This process makes millions of short-lived lists and no reference cycles worth
    # collecting; the cycle collector's passes cost a fifth of its time (measured), and
    # the process ends with the import.
    gc.disable()
    # Chunks go to the real standard output; anything printed by mistake goes to stderr
    # instead of corrupting the stream.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(sys.stdin.buffer, out)
    except BrokenPipeError:  # the parent stopped listening (it failed or was interrupted)
        pass
    finally:
        try:
            out.close()
        except BrokenPipeError:
            pass


if __name__ == "__main__":
    main()
