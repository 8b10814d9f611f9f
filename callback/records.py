"""The importer's data: a case as its source gives it, a chunk of them, a problem found."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import partial
from hashlib import blake2b
from typing import NamedTuple

from callback.phones import Phone

REJECTED = "rejected"
KEPT = "kept"
_EMPTY = blake2b(digest_size=8)
_TO_INT = partial(int.from_bytes, byteorder="big", signed=True)


@dataclass
class Problem:
    """One line of the rejects file."""

    row: int
    case_no: str | None
    field: str
    value: str
    reason: str
    action: str  # REJECTED: the row was not imported; KEPT: imported, this value flagged


class CaseRecord(NamedTuple):
    """One row of an export, normalised: the facts of a case as its source gives them."""

    row: int
    case_no: str
    item_name: str
    item_code: str | None
    unit: str
    town: str | None
    applicant_name: str | None
    applicant_type: str
    contact_name: str | None
    #: UTC, as ``YYYY-MM-DD HH:MM:SS`` (see normalise.LocalTimes).
    handled_at: str
    channel: str | None
    phones: tuple[Phone, ...]

    def fingerprint(self) -> int:
        """A stable 64-bit hash of the facts: equal fingerprints mean nothing to update."""
        phones = FIELD_SEPARATOR.join(f"{p.e164 or p.raw}#{p.extension or ''}" for p in self.phones)
        return fingerprints([fingerprint_text(*self[1:-1], phones)])[0]


FIELD_SEPARATOR = "\x1f"


def fingerprint_text(*facts: str | None) -> str:
    """What a case's fingerprint hashes: its facts (blank for None) and then its phones as one
    text of "e164-or-raw#extension" parts, all joined by the unit separator."""
    return FIELD_SEPARATOR.join("" if fact is None else fact for fact in facts)


def fingerprints(texts: list[str]) -> list[int]:
    """CaseRecord.fingerprint for a column of fingerprint texts.

    Each hash starts as a copy of one made empty: blake2b's constructor parses its keyword
    arguments on every call, and copying skips that (0.65 µs a row instead of 0.88).
    """
    digests: list[bytes] = []
    add = digests.append
    start = _EMPTY.copy
    for data in map(str.encode, texts):
        hash_ = start()
        hash_.update(data)
        add(hash_.digest())
    return list(map(_TO_INT, digests))


@dataclass
class Chunk:
    """Normalised records of a run of rows, held as columns, and what went wrong in them.

    Records are in file order except that rows RowReader read come after the others;
    ``records()`` puts them back in order.
    """

    rows: list[int] = field(default_factory=list)
    case_no: list[str] = field(default_factory=list)
    item_name: list[str] = field(default_factory=list)
    item_code: list[str | None] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    town: list[str | None] = field(default_factory=list)
    applicant_name: list[str | None] = field(default_factory=list)
    applicant_type: list[str] = field(default_factory=list)
    contact_name: list[str | None] = field(default_factory=list)
    handled_at: list[str] = field(default_factory=list)
    channel: list[str | None] = field(default_factory=list)
    fingerprint: list[int] = field(default_factory=list)
    #: Contacts as columns: the record (index into the columns above) and the phone's fields.
    contact_of: list[int] = field(default_factory=list)
    contact_position: list[int] = field(default_factory=list)
    contact_raw: list[str] = field(default_factory=list)
    contact_e164: list[str | None] = field(default_factory=list)
    contact_extension: list[str | None] = field(default_factory=list)
    contact_kind: list[str | None] = field(default_factory=list)
    contact_validity: list[str] = field(default_factory=list)
    contact_reason: list[str | None] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows_read: int = 0
    rejected: int = 0
    without_valid_phone: int = 0
    #: How far into the file this chunk ends (bytes), for progress.
    position: int = 0

    def __len__(self) -> int:
        return len(self.case_no)

    def records(self) -> list[CaseRecord]:
        """The chunk as CaseRecords in file order (for the writer's careful path)."""
        phones: list[list[Phone]] = [[] for _ in self.case_no]
        for index, *fields in zip(
            self.contact_of,
            self.contact_raw,
            self.contact_e164,
            self.contact_kind,
            self.contact_extension,
            self.contact_validity,
            self.contact_reason,
            strict=True,
        ):
            phones[index].append(Phone(*fields))
        columns = [getattr(self, name) for name in FACTS]
        records = [
            CaseRecord._make((row, *facts, tuple(found)))
            for row, *facts, found in zip(self.rows, *columns, phones, strict=True)
        ]
        records.sort(key=operator.attrgetter("row"))
        return records

    def add(self, record: CaseRecord) -> None:
        """Append one record (read by RowReader)."""
        index = len(self.case_no)
        self.rows.append(record.row)
        for name in FACTS:
            getattr(self, name).append(getattr(record, name))
        self.fingerprint.append(record.fingerprint())
        for position, phone in enumerate(record.phones):
            self.contact_of.append(index)
            self.contact_position.append(position)
            self.contact_raw.append(phone.raw)
            self.contact_e164.append(phone.e164)
            self.contact_extension.append(phone.extension)
            self.contact_kind.append(phone.kind)
            self.contact_validity.append(phone.validity)
            self.contact_reason.append(phone.reason)

    @classmethod
    def of_records(cls, records: list[CaseRecord]) -> Chunk:
        chunk = cls()
        for record in records:
            chunk.add(record)
        return chunk


FACTS = CaseRecord._fields[1:-1]  # the facts between the row number and the phones
