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
from collections.abc import Callable
from itertools import repeat
from typing import Any

from callback.normalise import applicant_type, clean_text
from callback.phones import COUNTRY_CODE, FAKE_MOBILES
from callback.records import FACTS, FIELD_SEPARATOR, Chunk, fingerprints
from callback.rowreader import RowReader, normalise_unit
from callback.vocabulary import PhoneKind, Validity

_MISS = object()
_PLAIN_CASE_NO = re.compile(r"[0-9A-Za-z_\-/.]{1,64}")
# A name that clean_text would change beyond stripping its ends.
_INNER_SPACE = re.compile(r"\S(?:  |[\t\n\r\u3000])")
_MINUTES_SECONDS = frozenset(f":{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_HEAD = operator.itemgetter(slice(0, 13))
_TAIL = operator.itemgetter(slice(13, None))
_MOBILE, _LANDLINE = PhoneKind.MOBILE.value, PhoneKind.LANDLINE.value
_VALID = Validity.VALID.value
_PLUS86 = COUNTRY_CODE
# A cell of two numbers, as RowReader splits them (it also knows |, 或, 及 and spaces).
_PAIR = re.compile("[/,;、]")


class ChunkReader:
    """Read chunks of text rows into Chunks: columns at C speed, the rest through RowReader."""

    def __init__(self, reader: RowReader) -> None:
        self.reader = reader
        self.width = reader.width
        self.phone_columns = reader.phone_columns
        self.mobile = reader.phones.mobile_number.fullmatch
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

        keep: list[int] = []
        pick: Callable[[Any], list[Any]] = list
        if slow:
            keep = [i for i in range(count) if i not in slow]
            # itemgetter picks the kept rows in one C call per column.
            getter = operator.itemgetter(*keep) if len(keep) > 1 else None

            def pick(column: Any) -> list[Any]:
                if getter is not None:
                    return list(getter(column))
                return [column[i] for i in keep]

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
        raws, e164s, kinds, parts, second = phones
        raw, e164, kinds, parts = pick(raws), pick(e164s), pick(kinds), pick(parts)
        facts = [getattr(chunk, name) for name in FACTS]
        facts = [["" if v is None else v for v in f] if None in f else f for f in facts]
        texts = map(FIELD_SEPARATOR.join, zip(*facts, parts, strict=True))
        chunk.fingerprint = fingerprints(list(texts))
        # Every row the lane kept has one number, and a few a second one.
        kept = len(raw)
        chunk.contact_of = list(range(kept))
        chunk.contact_position = [0] * kept
        chunk.contact_raw = raw
        chunk.contact_e164 = e164
        chunk.contact_extension = [None] * kept
        chunk.contact_kind = kinds
        chunk.contact_validity = [_VALID] * kept
        chunk.contact_reason = [None] * kept
        if second:
            kept_index = {row: index for index, row in enumerate(keep)} if slow else None
            for at, (raw2, e164_2, kind2) in second.items():
                if at in slow:
                    continue
                chunk.contact_of.append(kept_index[at] if kept_index is not None else at)
                chunk.contact_position.append(1)
                chunk.contact_raw.append(raw2)
                chunk.contact_e164.append(e164_2)
                chunk.contact_extension.append(None)
                chunk.contact_kind.append(kind2)
                chunk.contact_validity.append(_VALID)
                chunk.contact_reason.append(None)

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
        """UTC text of ``2018-06-03 14:05:06`` cells; any other cell goes to RowReader.

        The hour part is looked up in LocalTimes' memo of valid local hours, the rest in the
        set of the 3,600 valid ``:MM:SS``: two C-speed lookups instead of a pattern.
        """
        times = self.reader.times
        if not str_only(column):
            column = tuple(v if type(v) is str else "" for v in column)
        hours = times.hours
        heads = list(map(hours.get, map(_HEAD, column), repeat("")))
        tails = list(map(_TAIL, column))
        good = list(map(_MINUTES_SECONDS.__contains__, tails))
        if False in good or "" in heads or None in heads:
            for index, head in enumerate(heads):
                if head == "":  # not known when the column was looked up; maybe since
                    key = column[index][:13]
                    head = hours.get(key, "")
                    if head == "":
                        head = times.utc_hour(key)
                    heads[index] = head
                if head is None or not good[index]:
                    slow.add(index)
                    heads[index] = ""
        texts = list(map(operator.add, heads, tails))
        if min(texts) < times.earliest or max(texts) > times.latest:
            for index, text in enumerate(texts):
                if not times.earliest <= text <= times.latest:
                    slow.add(index)
        return texts

    def _phones(
        self, columns: list[tuple[Any, ...]], count: int, slow: set[int]
    ) -> tuple[list[Any], list[Any], list[Any], list[Any], dict[int, tuple[str, str, str]]]:
        """Columns raw, e164, kind and fingerprint part of each row's first number, and the
        second number of rows that hold two. Rows with anything else (no number, odd ones,
        three, the same one twice) go to RowReader."""
        second: dict[int, tuple[str, str, str]] = {}
        if len(self.phone_columns) != 1:
            slow.update(range(count))
            return [None] * count, [None] * count, [None] * count, [""] * count, second
        column = columns[self.phone_columns[0]]
        if not str_only(column):
            column = tuple(v if type(v) is str else "" for v in column)
        raws = list(column)
        numbers = list(map(self.mobile, column))
        fakes = list(map(FAKE_MOBILES.__contains__, column))
        e164 = list(map(operator.add, repeat(_PLUS86), column))
        kinds = [_MOBILE] * count
        parts = list(map(operator.add, e164, repeat("#")))
        if None in numbers or True in fakes:
            for index, number in enumerate(numbers):
                if number is not None and not fakes[index]:
                    continue
                raw = column[index]
                one = self._one(raw)
                if one is not None:
                    e164[index], kinds[index] = one
                    parts[index] = one[0] + "#"
                    continue
                pair = _PAIR.split(raw)
                first = self._one(pair[0]) if len(pair) == 2 else None
                other = self._one(pair[1]) if first is not None else None
                if first is None or other is None or first[0] == other[0]:
                    slow.add(index)
                    continue
                raws[index] = pair[0]
                e164[index], kinds[index] = first
                second[index] = (pair[1], *other)
                parts[index] = f"{first[0]}#{FIELD_SEPARATOR}{other[0]}#"
        return raws, e164, kinds, parts, second

    def _one(self, text: str) -> tuple[str, str] | None:
        """(e164, kind) of a clean mobile or landline (dashes allowed), else None."""
        if self.mobile(text) is not None:
            return None if text in FAKE_MOBILES else (_PLUS86 + text, _MOBILE)
        digits = text.replace("-", "") if "-" in text else text
        if digits and self.landline(digits):
            return _PLUS86 + digits[1:], _LANDLINE
        return None


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
