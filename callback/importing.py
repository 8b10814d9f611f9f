"""Import service cases from service-centre exports into the frame, one file per transaction."""

from __future__ import annotations

import csv
import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.config import Settings
from callback.db import bulk_pragmas, immediate
from callback.errors import ImportFileError
from callback.fastlane import ChunkReader
from callback.framewriter import CaseRecord, FrameWriter, Repeat
from callback.models import ImportBatch, table, utcnow
from callback.readerprocess import chunks_from_child, use_reader_process
from callback.records import KEPT, REJECTED, Chunk, Problem
from callback.rowreader import RowReader
from callback.sources import (
    HEADER_SEARCH_ROWS,
    LABELS,
    Layout,
    Mapping,
    Source,
    XlsxSource,
    find_layout,
    open_source,
)

CHUNK_ROWS = 5000
REJECTS_HEADER = ("row", "case_no", "field", "value", "reason", "action")

batches_t = table(ImportBatch)


@dataclass
class ImportOptions:
    mapping: Mapping = field(default_factory=Mapping)
    encoding: str | None = None
    sheet: str | None = None
    #: Where ``<file>.rejects.csv`` is written; None means beside the imported file.
    rejects_dir: Path | None = None
    dry_run: bool = False
    chunk_rows: int = CHUNK_ROWS
    #: 2 reads in a second process while this one writes; 1 never; None decides by size.
    processes: int | None = None


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


def find_header(source: Source, mapping: Mapping) -> tuple[Layout, list[tuple[int, list[Any]]]]:
    """Find the header; return the layout and the rows already read that follow it."""
    sheets = source.sheets if isinstance(source, XlsxSource) else [None]
    first_error: ImportFileError | None = None
    for sheet in sheets:
        if sheet is not None:
            assert isinstance(source, XlsxSource)
            source.use_sheet(sheet)
        head: list[tuple[int, list[Any]]] = []
        for row in source.rows():
            head.append(row)
            if row[0] >= HEADER_SEARCH_ROWS:
                break
        try:
            layout = find_layout(head, mapping, source.name)
        except ImportFileError as exc:
            first_error = first_error or exc
            continue
        return layout, [row for row in head if row[0] > layout.header_row]
    assert first_error is not None
    raise first_error


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
    source = open_source(path, options.encoding, options.sheet)
    result = ImportResult(str(path), None, encoding=source.encoding, dry_run=options.dry_run)
    rejects_path = _rejects_path(Path(path), options.rejects_dir)
    partial = rejects_path.with_name(rejects_path.name + ".partial")
    try:
        layout, first = find_header(source, options.mapping)
        result.sheet = source.sheet
        result.columns = layout.describe()
        if on_start is not None:
            on_start(source, layout)
        if use_reader_process(source, options.processes):
            chunks = chunks_from_child(
                path,
                source,
                layout,
                options.mapping,
                settings,
                now,
                options.chunk_rows,
                options.encoding,
            )
        else:
            chunks = read_chunks(
                source, layout, first, options.mapping, settings, now, options.chunk_rows
            )
        with (
            immediate(engine, commit=not options.dry_run) as conn,
            bulk_pragmas(conn),
            few_collections(),
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
                    file_name=Path(path).name,
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
            file_name = Path(path).name

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
    finally:
        source.close()
    return result


@contextmanager
def few_collections() -> Iterator[None]:
    """Let the cycle collector run rarely during a bulk import.

    An import allocates millions of short-lived lists and tuples and creates no cycles;
    with the default thresholds the collector's passes over a growing heap took a fifth of
    the time. Objects alive now are frozen out of its way; the thresholds come back after.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def read_chunks(
    source: Source,
    layout: Layout,
    first: list[tuple[int, list[Any]]],
    mapping: Mapping,
    settings: Settings,
    now: datetime,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Chunk]:
    """Read the rows after the header (``first`` are those already read) into chunks."""
    reader = RowReader(layout, mapping, settings, now)
    lane = ChunkReader(reader) if source.format == "csv" else None
    if first:
        yield _chunk(lane, reader, first, source.position)
    for batch in source.batches(chunk_rows):
        yield _chunk(lane, reader, batch, source.position)


def _chunk(
    lane: ChunkReader | None, reader: RowReader, batch: list[tuple[int, list[Any]]], position: int
) -> Chunk:
    if lane is not None:
        chunk = lane.read(batch)
    else:  # workbook cells are numbers, dates and text: each row goes through RowReader
        chunk = Chunk(rows_read=len(batch))
        rejected, without = reader.rejected, reader.without_valid_phone
        for number, cells in batch:
            record = reader.read(number, cells)
            if record is not None:
                chunk.add(record)
        chunk.rejected = reader.rejected - rejected
        chunk.without_valid_phone = reader.without_valid_phone - without
        chunk.problems, reader.problems = reader.problems, []
    chunk.position = position
    return chunk


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
