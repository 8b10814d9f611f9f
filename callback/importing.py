"""Import service cases from service-centre exports into the frame, one file per transaction."""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.bulk import collector_paused
from callback.childprocess import stop
from callback.config import Settings
from callback.db import bulk_pragmas, immediate
from callback.framewriter import CaseRecord, FrameWriter, Repeat
from callback.models import ImportBatch, table, utcnow
from callback.readerprocess import (
    ReadJob,
    chunks_from_child,
    chunks_from_children,
    readers,
    spawn,
)
from callback.reading import CHUNK_ROWS, find_header, read_chunks
from callback.records import KEPT, REJECTED, Chunk, Problem
from callback.sources import (
    LABELS,
    Layout,
    Mapping,
    SegmentMisaligned,
    Source,
    is_workbook,
    open_source,
    record_boundaries,
)

#: About 5,000 rows of a typical export: a segment makes a chunk or two.
SEGMENT_BYTES = 768 << 10
REJECTS_HEADER = ("row", "case_no", "field", "value", "reason", "action")

batches_t = table(ImportBatch)
logger = logging.getLogger(__name__)


@dataclass
class ImportOptions:
    mapping: Mapping = field(default_factory=Mapping)
    encoding: str | None = None
    sheet: str | None = None
    #: Where ``<file>.rejects.csv`` is written; None means beside the imported file.
    rejects_dir: Path | None = None
    dry_run: bool = False
    chunk_rows: int = CHUNK_ROWS
    #: Processes, this one included: 1 reads here; 2 reads in a child while this one writes;
    #: 3 in two children, each taking every other segment of a CSV file (a workbook gets
    #: one). None decides by the file's size and the machine's cores.
    processes: int | None = None
    #: About how many bytes of a CSV file each segment holds, when two children read it.
    segment_bytes: int = SEGMENT_BYTES


@dataclass
class ImportResult:
    path: str
    batch_id: int | None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0
    without_valid_phone: int = 0
    rejects_path: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    columns: str = ""
    seconds: float = 0.0
    #: Earlier imports of a file with the same checksum: (batch id, when, who).
    earlier: list[tuple[int, datetime, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


def import_file(
    engine: Engine,
    path: str | Path,
    settings: Settings,
    options: ImportOptions | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[Source, Layout], None] | None = None,
) -> ImportResult:
    """Import one file in one transaction and write its rejects file.

    ``progress(bytes_read, rows_read)`` is called after each chunk. Any exception leaves the
    database exactly as it was.
    """
    options = options or ImportOptions()
    now = now or utcnow()
    started = time.perf_counter()
    spare = spawn(_readers_before_opening(Path(path), options))
    source: Source | None = None
    try:
        source = open_source(path, options.encoding, options.sheet)
        layout, first = find_header(source, options.mapping)
        if on_start is not None:
            on_start(source, layout)
        count = readers(source.size, source.format, source.encoding, options.processes)
        job = ReadJob(
            str(path),
            source.encoding,
            source.sheet,
            layout,
            options.mapping,
            settings,
            now,
            options.chunk_rows,
            getattr(source, "delimiter", ","),
        )
        if count == 2:
            cuts = _cuts(source, options.segment_bytes)
            if cuts is not None:
                children, spare = spare, []
                try:
                    chunks = chunks_from_children(job, cuts, children)
                    return _write(
                        engine, source, layout, settings, options, now, chunks, started, progress
                    )
                except SegmentMisaligned as exc:
                    # A quote inside an unquoted field misled record_boundaries. The
                    # transaction rolled back; read the file again, in one piece.
                    logger.info("%s; reading the file in one piece", exc)
            count = 1
        if count:
            chunks = chunks_from_child(job, spare.pop() if spare else None)
        else:
            chunks = read_chunks(
                source, layout, first, options.mapping, settings, now, options.chunk_rows
            )
        return _write(engine, source, layout, settings, options, now, chunks, started, progress)
    finally:
        if source is not None:
            source.close()
        for child in spare:  # started for a file that turned out to want fewer, or none
            stop(child)


def _readers_before_opening(path: Path, options: ImportOptions) -> int:
    """The reader processes the file may get, judged by its name and size alone."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0  # open_source says what is wrong
    return readers(size, "xlsx" if is_workbook(path) else "csv", None, options.processes)


def _cuts(source: Source, step: int) -> list[int] | None:
    """Where to cut a CSV file into segments for two readers, or None if it cannot be cut.

    Only past what find_header read: the first segment must hold the header.
    """
    cuts = record_boundaries(source.path, step, 8 * step)
    if cuts is None:
        return None
    cuts = [cut for cut in cuts if cut >= source.position]
    return cuts if len(cuts) >= 2 else None


def _write(
    engine: Engine,
    source: Source,
    layout: Layout,
    settings: Settings,
    options: ImportOptions,
    now: datetime,
    chunks: Iterator[Chunk],
    started: float,
    progress: Callable[[int, int], None] | None,
) -> ImportResult:
    """Write the chunks to the frame in one transaction, and the problems to the rejects file."""
    path = source.path
    result = ImportResult(str(path), None, encoding=source.encoding, dry_run=options.dry_run)
    result.sheet = source.sheet
    result.columns = layout.describe()
    rejects_path = _rejects_path(path, options.rejects_dir)
    partial = rejects_path.with_name(rejects_path.name + ".partial")
    try:
        with (
            immediate(engine, commit=not options.dry_run) as conn,
            bulk_pragmas(conn),
            collector_paused(),
        ):
            result.earlier = [
                (r.id, r.started_at, r.actor)
                for r in conn.execute(
                    sa.select(batches_t.c.id, batches_t.c.started_at, batches_t.c.actor)
                    .where(batches_t.c.file_sha256 == source.sha256)
                    .order_by(batches_t.c.id)
                )
            ]
            batch_id = conn.execute(
                sa.insert(batches_t)
                .values(
                    file_name=path.name,
                    file_sha256=source.sha256,
                    file_size=source.size,
                    file_format=source.format,
                    encoding=source.encoding,
                    sheet=source.sheet,
                    actor=settings.actor,
                    started_at=now,
                )
                .returning(batches_t.c.id)
            ).scalar_one()
            result.batch_id = batch_id
            file_name = path.name

            def reason(record: CaseRecord) -> str:
                return f"import of {file_name}, row {record.row}"

            writer = FrameWriter(conn, batch_id, settings.actor, now, reason)
            with partial.open("w", encoding="utf-8-sig", newline="") as out:
                rejects = csv.writer(out)
                rejects.writerow(REJECTS_HEADER)
                for chunk in chunks:
                    _apply(writer, chunk, result, rejects)
                    if progress is not None:
                        progress(chunk.position, result.rows_read)
            result.seconds = time.perf_counter() - started
            conn.execute(
                sa.update(batches_t)
                .where(batches_t.c.id == batch_id)
                .values(
                    finished_at=utcnow(),
                    rows_read=result.rows_read,
                    inserted=result.inserted,
                    updated=result.updated,
                    unchanged=result.unchanged,
                    rejected=result.rejected,
                    warnings=result.warnings,
                )
            )
            if options.dry_run:
                result.batch_id = None
        if result.rejected or result.warnings:
            os.replace(partial, rejects_path)
            result.rejects_path = str(rejects_path)
        else:
            partial.unlink()
            # A rejects file left by an earlier run of this file would now mislead.
            rejects_path.unlink(missing_ok=True)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


def _apply(writer: FrameWriter, chunk: Chunk, result: ImportResult, rejects: Any) -> None:
    counts, repeats = writer.write(chunk)
    result.rows_read += chunk.rows_read
    result.rejected += chunk.rejected
    result.without_valid_phone += chunk.without_valid_phone
    result.inserted += counts.inserted
    result.updated += counts.updated
    result.unchanged += counts.unchanged
    result.rejected += counts.rejected
    problems = chunk.problems + [_repeat_problem(r) for r in repeats]
    problems.sort(key=lambda problem: problem.row)
    for problem in problems:
        if problem.action == KEPT:
            result.warnings += 1
        rejects.writerow(
            (
                problem.row,
                problem.case_no or "",
                problem.field,
                problem.value,
                problem.reason,
                problem.action,
            )
        )


def _repeat_problem(repeat: Repeat) -> Problem:
    record = repeat.record
    if repeat.identical:
        reason, action = f"the same case as row {repeat.earlier_row}, repeated", KEPT
    else:
        reason = (
            f"case number already on row {repeat.earlier_row} with other facts; the earlier "
            "row stands: correct the export and import it again"
        )
        action = REJECTED
    return Problem(record.row, record.case_no, LABELS["case_no"], record.case_no, reason, action)


def _rejects_path(path: Path, directory: Path | None) -> Path:
    return (directory or path.parent) / f"{path.name}.rejects.csv"
