"""Read an export into chunks of normalised records: the part of an import that needs no
database, and all that callback.readerprocess imports (it starts twice per import, so it
leaves SQLAlchemy and openpyxl unimported unless the file is a workbook)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from callback.config import Settings
from callback.errors import ImportFileError
from callback.fastlane import ChunkReader
from callback.records import Chunk
from callback.rowreader import RowReader
from callback.sources import HEADER_SEARCH_ROWS, Layout, Mapping, Source, XlsxSource, find_layout

CHUNK_ROWS = 5000


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


def read_chunks(
    source: Source,
    layout: Layout,
    first: list[tuple[int, list[Any]]],
    mapping: Mapping,
    settings: Settings,
    now: datetime,
    chunk_rows: int = CHUNK_ROWS,
    lane: ChunkReader | None = None,
) -> Iterator[Chunk]:
    """Read the rows after the header (``first`` are those already read) into chunks.

    ``lane``, given for the segments of one CSV file, carries its memos from one to the next.
    """
    if lane is None:
        reader = RowReader(layout, mapping, settings, now)
        lane = ChunkReader(reader) if source.format == "csv" else None
    else:
        reader = lane.reader
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
