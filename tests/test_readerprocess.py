"""The reader process's messages: chunks, exceptions and the end, and a stream cut short."""

from __future__ import annotations

import io
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callback.config import Settings
from callback.errors import ImportFileError
from callback.readerprocess import (
    _CHUNK,
    _END,
    _ERROR,
    ReadJob,
    _receive,
    _serve,
    chunks_from_child,
)
from callback.reading import find_header, read_chunks
from callback.sources import Mapping, open_source
from callback.synthetic import write_district

NOW = datetime(2018, 10, 8, 2, tzinfo=UTC)
SETTINGS = Settings(database_url="sqlite://", actor="test")


def _job(path: Path, chunk_rows: int = 300) -> ReadJob:
    source = open_source(path, None, None, checksum=False)
    layout, _ = find_header(source, Mapping())
    source.close()
    return ReadJob(str(path), None, None, layout, Mapping(), SETTINGS, NOW, chunk_rows)


def _serve_bytes(job: ReadJob) -> bytes:
    out = io.BytesIO()
    _serve(io.BytesIO(pickle.dumps(job)), out)
    return out.getvalue()


def _messages(data: bytes) -> list[tuple[bytes, object]]:
    stream = io.BytesIO(data)
    messages = []
    while True:
        kind, message = _receive(stream)
        messages.append((kind, message))
        if kind != _CHUNK:
            return messages


@pytest.fixture
def district(tmp_path: Path) -> Path:
    path = tmp_path / "district.csv"
    write_district(path, 1000, seed=5, messy=0.3)
    return path


def test_chunks_arrive_as_the_reader_made_them(district: Path) -> None:
    messages = _messages(_serve_bytes(_job(district)))
    assert messages[-1] == (_END, None)
    source = open_source(district, None, None, checksum=False)
    layout, first = find_header(source, Mapping())
    expected = list(read_chunks(source, layout, first, Mapping(), SETTINGS, NOW, 300))
    source.close()
    received = [chunk for _, chunk in messages[:-1]]
    assert received == expected
    # The messy rows' problems (for the rejects file) came through as Problems.
    assert sum(len(chunk.problems) for chunk in received) > 10


def test_a_failure_in_the_reader_arrives_as_its_exception(district: Path) -> None:
    job = _job(district)
    district.unlink()
    ((kind, error),) = _messages(_serve_bytes(job))
    assert kind == _ERROR and isinstance(error, Exception)
    assert "district.csv" in str(error)


@pytest.mark.parametrize("keep", [0, 1, 5, 9, -1])
def test_a_stream_cut_short_is_an_error_not_a_short_chunk(district: Path, keep: int) -> None:
    data = _serve_bytes(_job(district))
    first = data[: data.index(_CHUNK, 1)]  # the first chunk's message, whole
    with pytest.raises((EOFError, ValueError)):
        _receive(io.BytesIO(first[:keep] if keep >= 0 else first[:-1]))


def test_the_child_reports_a_file_that_changed_under_the_import(district: Path) -> None:
    job = _job(district)
    write_district(district, 10, seed=2, headers="en")  # the same facts, other headers
    chunks = chunks_from_child(job)
    with pytest.raises(ImportFileError, match="changed while it was being imported"):
        list(chunks)
