"""Read and normalise an export in a second process while this one writes to the database.

On a two-core machine an import is two jobs of about the same size: turning text into facts
(CSV parsing, phones, dates, fingerprints) and writing them (SQLite B-trees). In one process
they add up; here a child process reads the file and sends normalised chunks back, so the two
overlap. The child is ``python -m callback.readerprocess`` writing to its standard output:
unlike multiprocessing's spawn it never re-imports the caller's ``__main__``, so the importer
works the same from the CLI, from tests and from anyone's script. The pipe holds less than a
chunk, which keeps memory flat: the child runs at most one chunk ahead. The child never
touches the database; if it fails, its exception is raised here and the import's transaction
rolls back.

Each message is a kind byte and its body. A chunk goes as a tuple of its columns in marshal's
format: both ends are the same interpreter, and for lists of text and numbers marshal writes
and reads in less than half pickle's time (0.66 s and 0.50 s for a million rows, against
1.64 s and 1.10 s), the largest cost of the transport. The job and an exception go by pickle.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from callback.childprocess import serve_stdio, stop
from callback.config import Settings
from callback.errors import ImportFileError
from callback.records import Chunk, Problem
from callback.sources import Layout, Mapping, Source

#: Below this size a second process costs more to start (about half a second) than it saves.
PARALLEL_MIN_BYTES = 8 << 20
#: Message kinds: a chunk (marshal), an exception (pickle), the end of the file.
_CHUNK, _ERROR, _END = b"c", b"e", b"."
_FIELDS = tuple(f.name for f in dataclasses.fields(Chunk))
_PROBLEMS = _FIELDS.index("problems")


def _to_wire(chunk: Chunk) -> tuple[Any, ...]:
    values = [getattr(chunk, name) for name in _FIELDS]
    values[_PROBLEMS] = [dataclasses.astuple(problem) for problem in chunk.problems]
    return tuple(values)


def _from_wire(values: tuple[Any, ...]) -> Chunk:
    chunk = Chunk(*values)
    chunk.problems = [Problem(*fields) for fields in values[_PROBLEMS]]
    return chunk


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
                kind, message = _receive(child.stdout)
            except (EOFError, ValueError):  # the child died (a message cut short, or none)
                code = child.wait()
                raise ImportFileError(
                    str(path), f"the reader process ended unexpectedly (exit code {code})"
                ) from None
            if kind == _END:
                return
            if kind == _ERROR:
                raise message
            yield message
    finally:
        stop(child)


def _receive(stream: IO[bytes]) -> tuple[bytes, Any]:
    """The next message: (kind, its chunk or exception); EOFError or ValueError if cut."""
    kind = stream.read(1)
    if kind == _CHUNK:
        size = int.from_bytes(stream.read(8), "little")
        body = stream.read(size)
        if len(body) != size:
            raise EOFError(f"a chunk of {size} bytes was cut at {len(body)}")
        return kind, _from_wire(marshal.loads(body))
    if kind == _ERROR:
        return kind, pickle.load(stream)
    if kind == _END:
        return kind, None
    raise EOFError(f"no message, but {kind!r}")


def _serve(job_in: BinaryIO, out: BinaryIO) -> None:
    from callback.importing import find_header, read_chunks
    from callback.sources import open_source

    job: tuple[str, str | None, str | None, Layout, Mapping, Settings, datetime, int]
    job = pickle.load(job_in)
    path, encoding, sheet, layout, mapping, settings, now, chunk_rows = job

    def send(kind: bytes, message: Any = None) -> None:
        out.write(kind)
        if kind == _CHUNK:
            # Read back from one bytes object: marshal.load on a pipe reads each string by a
            # call of its own.
            body = marshal.dumps(_to_wire(message))
            out.write(len(body).to_bytes(8, "little"))
            out.write(body)
        elif kind == _ERROR:
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        source = open_source(path, encoding, sheet, checksum=False)
        try:
            found, first = find_header(source, mapping)
            if found != layout:
                raise ImportFileError(path, "the file changed while it was being imported")
            for chunk in read_chunks(source, layout, first, mapping, settings, now, chunk_rows):
                send(_CHUNK, chunk)
        finally:
            source.close()
        send(_END)
    except Exception as exc:  # report everything: the parent decides, and rolls back
        try:
            send(_ERROR, exc)
        except Exception:  # an exception that cannot be pickled
            send(_ERROR, ImportFileError(path, f"reading failed: {exc!r}"))


def main() -> None:
    serve_stdio(_serve)


if __name__ == "__main__":
    main()
