"""Read and normalise an export in other processes while this one writes to the database.

On a two-core machine an import is two jobs: turning text into facts (CSV parsing, phones,
dates, fingerprints) and writing them (SQLite B-trees). In one process they add up; here child
processes read the file and send normalised chunks back, so the two overlap. The reading is the
larger job (about 8 s of CPU for a million rows against the writing's 6 s), so a large CSV
file is cut into segments of about a megabyte at line ends and two children take every other
segment: three processes share the two cores and none waits for long. A file that cannot be
cut (a workbook, UTF-16) has one child.

A child is ``python -m callback.readerprocess`` writing to its standard output: unlike
multiprocessing's spawn it never re-imports the caller's ``__main__``, so the importer works
the same from the CLI, from tests and from anyone's script. Its pipe holds about one chunk,
which keeps memory flat: a child runs at most a chunk or so ahead. A child never touches the
database; if it fails, its exception is raised here and the import's transaction rolls back.

Each message is a kind byte and its body. A chunk goes as a tuple of its columns in marshal's
format: both ends are the same interpreter, and for lists of text and numbers marshal writes
and reads in less than half pickle's time (0.66 s and 0.50 s for a million rows, against
1.64 s and 1.10 s), the largest cost of the transport. The job and an exception go by pickle.
"""

from __future__ import annotations

import codecs
import dataclasses
import fcntl
import itertools
import marshal
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from callback.childprocess import serve_stdio, stop
from callback.config import Settings
from callback.errors import ImportFileError
from callback.records import Chunk, Problem
from callback.sources import CsvSegment, Layout, Mapping, Source

#: Below this size reader processes cost more to start (a tenth of a second each, and the wait
#: for the first chunk) than they save.
PARALLEL_MIN_BYTES = 8 << 20
#: Encodings (as codecs names them) in which a CSV file can be cut at its line ends: no byte
#: of a line feed or a quote is ever part of another character (see record_boundaries).
SEGMENTED = frozenset({"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312"})
#: A child's pipe: a chunk of 5,000 rows is about 850 KB on the wire.
PIPE_BYTES = 1 << 20
#: Message kinds: a chunk (marshal), a segment's end (its record count), an exception
#: (pickle), the end of the file.
_CHUNK, _SEGMENT, _ERROR, _END = b"c", b"s", b"e", b"."
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


@dataclasses.dataclass(frozen=True)
class ReadJob:
    """What a reader process reads, and how."""

    path: str
    encoding: str | None
    sheet: str | None
    layout: Layout
    mapping: Mapping
    settings: Settings
    now: datetime
    chunk_rows: int
    delimiter: str = ","
    #: Byte ranges of a CSV file to read, in file order, each as a CsvSegment; the one that
    #: starts at 0 holds the header. None: the whole file, as open_source reads it.
    segments: tuple[tuple[int, int], ...] | None = None


def readers(size: int, format: str, encoding: str | None, processes: int | None) -> int:
    """How many reader processes to start for a file: 0 reads in this process.

    ``processes`` counts this one: 1, 2 or 3. By default a file of PARALLEL_MIN_BYTES or more
    gets one reader, and a CSV file in an encoding that can be cut at its line ends gets two
    (each takes every other segment; see CsvSegment), with this process writing. A CSV file's
    ``encoding`` None means not known yet: the answer is then the most it may get.
    """
    if processes is None:
        if size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
            return 0
        processes = 3
    if processes >= 3 and not (format == "csv" and (encoding is None or _cut_at_lines(encoding))):
        processes = 2
    return max(0, min(processes, 3) - 1)


def spawn(count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` reader processes before their jobs are known, so that their start (a
    tenth of a second) overlaps the caller's checksum and search for the header."""
    return [_spawn() for _ in range(count)]


def _cut_at_lines(encoding: str) -> bool:
    return codecs.lookup(encoding).name in SEGMENTED


def chunks_from_child(
    job: ReadJob, started: subprocess.Popen[bytes] | None = None
) -> Iterator[Chunk]:
    """Yield the file's chunks as a child process (``started``, or a new one) reads them."""
    child = started or _spawn()
    try:
        _send(child, job)
        while (chunk := _next_chunk(child, job.path)) is not None:
            assert isinstance(chunk, Chunk)  # a whole file has no segments
            yield chunk
    finally:
        stop(child)


def chunks_from_children(
    job: ReadJob, cuts: list[int], started: Sequence[subprocess.Popen[bytes]] = ()
) -> Iterator[Chunk]:
    """Yield the file's chunks, in order, as two child processes read its segments.

    ``cuts`` are the segments' ends (record_boundaries). Segment i goes to child i mod 2,
    whose pipe holds about one chunk: a child runs at most a segment or so ahead of this
    process, so memory stays flat. A child numbers the rows of a segment from 1; they are
    renumbered here from the records of the segments before. SegmentMisaligned from a child
    means a cut fell inside a quoted field: the caller reads the file again in one piece.
    ``started`` are children from spawn() to use first.
    """
    segments = list(itertools.pairwise([0, *cuts]))
    children: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2):
            child = started[i] if i < len(started) else _spawn()
            children.append(child)
            _send(child, dataclasses.replace(job, segments=tuple(segments[i::2])))
        before = 0
        for index in range(len(segments)):
            child = children[index % 2]
            while (chunk := _next_chunk(child, job.path)) is not None:
                if isinstance(chunk, int):  # the segment's end: how many records it held
                    before += chunk
                    break
                if before:
                    _renumber(chunk, before)
                yield chunk
            else:
                raise ImportFileError(job.path, "a reader process ended before its segments")
    finally:
        for child in children:
            stop(child)


def _renumber(chunk: Chunk, before: int) -> None:
    chunk.rows = [row + before for row in chunk.rows]
    for problem in chunk.problems:
        problem.row += before


def _spawn() -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "callback.readerprocess"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    _widen(child.stdout)
    return child


def _send(child: subprocess.Popen[bytes], job: ReadJob) -> None:
    """Give a child its job (the callers stop the child if this fails)."""
    assert child.stdin is not None
    pickle.dump(job, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    child.stdin.close()


def _widen(pipe: IO[bytes]) -> None:
    """Let the pipe hold a whole chunk, so that a child writes one and goes on to the next."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
            pass


def _next_chunk(child: subprocess.Popen[bytes], path: str) -> Chunk | int | None:
    """The child's next chunk, the record count at a segment's end, or None at the end."""
    assert child.stdout is not None
    try:
        kind, message = _receive(child.stdout)
    except (EOFError, ValueError):  # the child died (a message cut short, or none)
        code = child.wait()
        raise ImportFileError(
            path, f"the reader process ended unexpectedly (exit code {code})"
        ) from None
    if kind == _ERROR:
        raise message
    return message


def _receive(stream: IO[bytes]) -> tuple[bytes, Any]:
    """The next message: (kind, its chunk, count or exception); EOFError or ValueError if cut."""
    kind = stream.read(1)
    if kind == _CHUNK:
        size = int.from_bytes(stream.read(8), "little")
        body = stream.read(size)
        if len(body) != size:
            raise EOFError(f"a chunk of {size} bytes was cut at {len(body)}")
        return kind, _from_wire(marshal.loads(body))
    if kind == _SEGMENT:
        return kind, int.from_bytes(stream.read(8), "little")
    if kind == _ERROR:
        return kind, pickle.load(stream)
    if kind == _END:
        return kind, None
    raise EOFError(f"no message, but {kind!r}")


def _serve(job_in: BinaryIO, out: BinaryIO) -> None:
    from callback.fastlane import ChunkReader
    from callback.reading import find_header, read_chunks
    from callback.rowreader import RowReader
    from callback.sources import open_source

    job: ReadJob = pickle.load(job_in)

    def send(kind: bytes, message: Any = None) -> None:
        out.write(kind)
        if kind == _CHUNK:
            # Read back from one bytes object: marshal.load on a pipe reads each string by a
            # call of its own.
            body = marshal.dumps(_to_wire(message))
            out.write(len(body).to_bytes(8, "little"))
            out.write(body)
        elif kind == _SEGMENT:
            out.write(message.to_bytes(8, "little"))
        elif kind == _ERROR:
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    lane = None
    if job.segments is not None:  # one lane for all segments: its memos are warm
        lane = ChunkReader(RowReader(job.layout, job.mapping, job.settings, job.now))

    def read(source: Source, header: bool) -> None:
        first: list[tuple[int, list[Any]]] = []
        if header:
            found, first = find_header(source, job.mapping)
            if found != job.layout:
                raise ImportFileError(job.path, "the file changed while it was being imported")
        for chunk in read_chunks(
            source, job.layout, first, job.mapping, job.settings, job.now, job.chunk_rows, lane
        ):
            send(_CHUNK, chunk)

    try:
        if job.segments is None:
            source = open_source(job.path, job.encoding, job.sheet, checksum=False)
            try:
                read(source, header=True)
            finally:
                source.close()
        else:
            assert job.encoding is not None
            for start, end in job.segments:
                segment = CsvSegment(Path(job.path), job.encoding, job.delimiter, start, end)
                read(segment, header=start == 0)
                send(_SEGMENT, segment.records)
        send(_END)
    except Exception as exc:  # report everything: the parent decides, and rolls back
        try:
            send(_ERROR, exc)
        except Exception:  # an exception that cannot be pickled
            send(_ERROR, ImportFileError(job.path, f"reading failed: {exc!r}"))


def main() -> None:
    serve_stdio(_serve)


if __name__ == "__main__":
    main()
