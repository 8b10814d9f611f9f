"""Normalise a chunk of rows column by column, at the speed of C loops.

RowReader reads one row at a time and decides everything; it costs about 15 µs a row here,
which would make it most of a million-row import. Most rows of a real export are plain: a
case number, names, an 11-digit mobile or a dashed landline, ``2018-06-03 14:05:06``. This
lane checks a whole column at once with ``map`` over compiled patterns and dictionaries, and
hands every row it cannot vouch for to RowReader, whose answer is the reference: the tests
check that both give the same records for every kind of row.
"""

from __future__ import annotations

import operator
import re
from itertools import repeat
from typing import Any

from callback.models import PhoneKind, Validity
from callback.normalise import applicant_type, clean_text
from callback.phones import COUNTRY_CODE
from callback.records import FACTS, FIELD_SEPARATOR, Chunk, fingerprints
from callback.rowreader import RowReader, normalise_unit

_MISS = object()
_PLAIN_CASE_NO = re.compile(r"[0-9A-Za-z_\-/.]{1,64}")
# A name that clean_text would change beyond stripping its ends.
_INNER_SPACE = re.compile(r"\S(?:  |[\t\n\r\u3000])")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:[0-5]\d:[0-5]\d", re.ASCII)
_HEAD = operator.itemgetter(slice(0, 13))
_TAIL = operator.itemgetter(slice(13, None))
_MOBILE, _LANDLINE = PhoneKind.MOBILE.value, PhoneKind.LANDLINE.value
_VALID = Validity.VALID.value
_PLUS86 = COUNTRY_CODE


class ChunkReader:
    """Read chunks of text rows into Chunks: columns at C speed, the rest through RowReader."""

    def __init__(self, reader: RowReader) -> None:
        self.reader = reader
        self.width = reader.width
        self.phone_columns = reader.phone_columns
        self.mobile = reader.phones.clean_mobile.fullmatch
        self.landline = reader.phones.clean_landline.fullmatch
        self._memos: dict[str, dict[Any, Any]] = {}

    def read(self, rows: list[tuple[int, list[Any]]]) -> Chunk:
        """Normalise ``rows`` of (row number, cells); the cells must be text, as CSV gives."""
        chunk = Chunk(rows_read=len(rows))
        if not rows:
            return chunk
        reader = self.reader
        numbers = [number for number, _ in rows]
        cells = [row for _, row in rows]
        width = self.width
        if min(map(len, cells)) < width:  # a ragged row: pad it as RowReader would read it
            for row in cells:
                if len(row) < width:
                    row.extend([None] * (width - len(row)))
        count = len(cells)
        columns = list(zip(*cells, strict=False))[:width]
        columns.append((None,) * count)  # RowReader reads an absent column at index width
        slow: set[int] = set()

        case_no = columns[reader.i_case]
        if str_only(case_no):
            matches = list(map(_PLAIN_CASE_NO.fullmatch, case_no))
        else:
            matches = [None] * count
        if None in matches:
            slow.update(index for index, match in enumerate(matches) if match is None)
        item = self._memo("item", columns[reader.i_item], _item, slow)
        unit = self._memo("unit", columns[reader.i_unit], normalise_unit, slow)
        code = self._memo("code", columns[reader.i_code], _optional, slow)
        town = self._memo("town", columns[reader.i_town], _optional, slow)
        channel = self._memo("channel", columns[reader.i_channel], reader.channel, slow)
        kind = self._memo("type", columns[reader.i_type], reader.given_applicant_type, slow)
        applicant = _names(columns[reader.i_applicant])
        contact = _names(columns[reader.i_contact])
        handled = self._times(columns[reader.i_handled], slow)
        phones = self._phones(columns, count, slow)

        if slow:
            keep = [i for i in range(count) if i not in slow]

            def pick(column: Any) -> list[Any]:
                return [column[i] for i in keep]
        else:
            pick = list

        chunk.rows = pick(numbers)
        chunk.case_no = pick(case_no)
        chunk.item_name = pick(item)
        chunk.item_code = pick(code)
        chunk.unit = pick(unit)
        chunk.town = pick(town)
        chunk.applicant_name = pick(applicant)
        chunk.applicant_type = pick(kind)
        if None in chunk.applicant_type:  # no type given: judge by the name, as RowReader does
            chunk.applicant_type = [
                given if given is not None else applicant_type(None, name)
                for given, name in zip(chunk.applicant_type, chunk.applicant_name, strict=True)
            ]
        chunk.contact_name = pick(contact)
        chunk.handled_at = pick(handled)
        chunk.channel = pick(channel)
        raw, e164, kinds, parts = (pick(column) for column in phones)
        facts = [getattr(chunk, name) for name in FACTS]
        facts = [["" if v is None else v for v in f] if None in f else f for f in facts]
        texts = map(FIELD_SEPARATOR.join, zip(*facts, parts, strict=True))
        chunk.fingerprint = fingerprints(list(texts))
        # Every row the lane kept has exactly one number (several go to RowReader).
        chunk.contact_of = list(range(len(raw)))
        chunk.contact_position = [0] * len(raw)
        chunk.contact_raw = raw
        chunk.contact_e164 = e164
        chunk.contact_extension = [None] * len(raw)
        chunk.contact_kind = kinds
        chunk.contact_validity = [_VALID] * len(raw)

        if slow:
            rejected, without = reader.rejected, reader.without_valid_phone
            for index in sorted(slow):
                record = reader.read(numbers[index], cells[index])
                if record is not None:
                    chunk.add(record)
            chunk.rejected = reader.rejected - rejected
            chunk.without_valid_phone = reader.without_valid_phone - without
            chunk.problems, reader.problems = reader.problems, []
        return chunk

    def _memo(self, name: str, column: tuple[Any, ...], compute: Any, slow: set[int]) -> list[Any]:
        """Map a low-cardinality column through a memo of clean values. A miss is computed
        once; a value with a problem sends its rows to RowReader."""
        memo = self._memos.setdefault(name, {})
        values = list(map(memo.get, column, repeat(_MISS)))
        if _MISS in values:
            for index, value in enumerate(values):
                if value is _MISS:
                    raw = column[index]
                    result, problem = compute(raw)
                    if problem is None:
                        if len(memo) < 50_000:
                            memo[raw] = result
                        values[index] = result
                    else:
                        values[index] = None
                        slow.add(index)
        return values

    def _times(self, column: tuple[Any, ...], slow: set[int]) -> list[Any]:
        """UTC text of ``2018-06-03 14:05:06`` cells; any other cell goes to RowReader."""
        times = self.reader.times
        if not str_only(column):
            column = tuple(v if type(v) is str else "" for v in column)
        shaped = list(map(_DATETIME.fullmatch, column))
        hours = times.hours
        heads = list(map(hours.get, map(_HEAD, column), repeat("")))
        if None in shaped or "" in heads or None in heads:
            for index, head in enumerate(heads):
                if shaped[index] is None:
                    slow.add(index)
                    heads[index] = ""
                    continue
                if head == "":  # not known when the column was looked up; maybe since
                    key = column[index][:13]
                    head = hours.get(key, "")
                    if head == "":
                        head = times.utc_hour(key)
                    heads[index] = head
                if head is None:
                    slow.add(index)
                    heads[index] = ""
        texts = list(map(operator.add, heads, map(_TAIL, column)))
        if min(texts) < times.earliest or max(texts) > times.latest:
            for index, text in enumerate(texts):
                if not times.earliest <= text <= times.latest:
                    slow.add(index)
        return texts

    def _phones(self, columns: list[tuple[Any, ...]], count: int, slow: set[int]) -> list[Any]:
        """Columns raw, e164, kind and fingerprint part of the one clean number of each row;
        rows with anything else (several numbers, none, odd ones) go to RowReader."""
        if len(self.phone_columns) != 1:
            slow.update(range(count))
            return [[None] * count] * 4
        column = columns[self.phone_columns[0]]
        if None in column:
            column = tuple("" if value is None else value for value in column)
        matches = list(map(self.mobile, column))
        e164 = list(map(operator.add, repeat(_PLUS86), column))
        kinds = [_MOBILE] * count
        if None in matches:
            for index, match in enumerate(matches):
                if match is None:
                    raw = column[index]
                    digits = raw.replace("-", "") if raw and type(raw) is str else ""
                    if digits and self.landline(digits):
                        e164[index] = _PLUS86 + digits[1:]
                        kinds[index] = _LANDLINE
                    else:
                        slow.add(index)
        parts = list(map(operator.add, e164, repeat("#")))
        return [list(column), e164, kinds, parts]


def str_only(column: tuple[Any, ...]) -> bool:
    """True when every cell is text (type checks at C speed)."""
    return set(map(type, column)) == {str}


def _names(column: tuple[Any, ...]) -> list[str | None]:
    if not str_only(column):
        return [clean_text(v) for v in column]
    values = [v.strip() if v else None for v in column]
    # NUL never appears in a name, so it can join them for one search of the whole column.
    if _INNER_SPACE.search("\0".join(v for v in values if v)):
        return [clean_text(v) for v in column]
    return [v or None for v in values]


def _item(raw: Any) -> tuple[Any, str | None]:
    value = clean_text(raw)
    if value is None or len(value) > 300:
        return None, "refused"
    return value, None


def _optional(raw: Any) -> tuple[Any, str | None]:
    return clean_text(raw), None
