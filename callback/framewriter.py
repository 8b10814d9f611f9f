"""Write imported cases into the frame in bulk: insert the new, update and audit the changed."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from callback.bulk import BulkInsert
from callback.corrections import corrected_facts
from callback.models import AuditEntry, Case, Contact, ContactSource, Unit, UnitKind, table
from callback.records import CaseRecord, Chunk

CASE_FACTS = (
    "case_no",
    "item_name",
    "item_code",
    "unit",
    "town",
    "applicant_name",
    "applicant_type",
    "contact_name",
    "handled_at",
    "channel",
)


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows whose case number came earlier in the file with other facts.
    rejected: int = 0


class Repeat(NamedTuple):
    """A case number met again in the same file: identical (kept) or conflicting (rejected)."""

    record: CaseRecord
    earlier_row: int
    identical: bool


_CASE_COLUMNS = (
    "id",
    "case_no",
    "item_name",
    "item_code",
    "unit_id",
    "town_id",
    "applicant_name",
    "applicant_type",
    "contact_name",
    "handled_at",
    "channel",
    "source_row",
    "source_fingerprint",
)
_CONTACT_COLUMNS = (
    "id",
    "case_id",
    "position",
    "raw",
    "e164",
    "extension",
    "kind",
    "validity",
)

_PHONE_FIELDS = ("raw", "e164", "extension", "kind", "validity")

cases_t = table(Case)
contacts_t = table(Contact)
units_t = table(Unit)
audit_t = table(AuditEntry)


class FrameWriter:
    """Apply normalised records to the frame inside the caller's transaction."""

    def __init__(
        self,
        conn: Connection,
        batch_id: int,
        actor: str,
        now: datetime,
        reason: Callable[[CaseRecord], str],
    ) -> None:
        self.conn = conn
        self.batch_id = batch_id
        self.actor = actor
        self.now = now
        self.reason = reason
        self.bulk = BulkInsert(conn)
        self._now_db = self.bulk.timestamp(now)
        self.units: dict[str, int] = {
            name: id_ for id_, name in conn.execute(sa.select(units_t.c.id, units_t.c.name))
        }
        self._unit_names = {id_: name for name, id_ in self.units.items()}
        # While the frame held no case when the import began, a chunk can be inserted without
        # looking anything up; a repeated case number makes the insert fail, and then that
        # chunk, and every later one, goes the careful way.
        self.optimistic = conn.execute(sa.select(cases_t.c.id).limit(1)).first() is None
        #: Which existing cases this file named, and at which row.
        self.seen = SeenRows()

    def unit_id(self, name: str, kind: str) -> int:
        found = self.units.get(name)
        if found is not None:
            return found
        if kind == UnitKind.DEPARTMENT.value and name.endswith(("镇", "乡", "街道", "街道办事处")):
            kind = UnitKind.TOWN.value
        new_id = self.conn.execute(
            sa.insert(units_t)
            .values(name=name, kind=kind, created_at=self.now)
            .returning(units_t.c.id)
        ).scalar_one()
        self.units[name] = new_id
        self._unit_names[new_id] = name
        self._audit(
            "unit.create",
            "unit",
            new_id,
            None,
            None,
            {"name": name, "kind": kind},
            "first seen in an import",
        )
        return new_id

    def write(self, chunk: Chunk) -> tuple[WriteCounts, list[Repeat]]:
        """Insert, update or skip each record, in file order; return counts and repeats."""
        counts = WriteCounts()
        repeats: list[Repeat] = []
        if not len(chunk):
            return counts, repeats
        # Units first and outside the savepoint: a rolled-back savepoint must not take with it
        # a unit that the cache still holds.
        for name in dict.fromkeys(chunk.unit):
            self.unit_id(name, UnitKind.DEPARTMENT.value)
        for town in dict.fromkeys(chunk.town):
            if town:
                self.unit_id(town, UnitKind.TOWN.value)
        if self.optimistic:
            try:
                with self.conn.begin_nested():
                    self._insert(chunk)
                counts.inserted = len(chunk)
                return counts, repeats
            except sa.exc.IntegrityError:
                self.optimistic = False
                self.bulk.forget_ids()
        # A case number repeated inside the chunk must see the earlier row's write, so the
        # chunk is cut before each repeat.
        records = chunk.records()
        start = 0
        seen: set[str] = set()
        for index, record in enumerate(records):
            if record.case_no in seen:
                self._careful(records[start:index], counts, repeats)
                start, seen = index, set()
            seen.add(record.case_no)
        self._careful(records[start:], counts, repeats)
        return counts, repeats

    def _careful(
        self, records: list[CaseRecord], counts: WriteCounts, repeats: list[Repeat]
    ) -> None:
        keys = [r.case_no for r in records]
        existing = {
            row.case_no: row
            for row in self.conn.execute(
                sa.select(
                    cases_t.c.case_no,
                    cases_t.c.id,
                    cases_t.c.source_fingerprint,
                    cases_t.c.batch_id,
                    cases_t.c.source_row,
                ).where(cases_t.c.case_no.in_(keys))
            )
        }
        new: list[CaseRecord] = []
        changed: list[tuple[int, CaseRecord]] = []
        for record in records:
            old = existing.get(record.case_no)
            if old is None:
                new.append(record)
                continue
            identical = old.source_fingerprint == record.fingerprint()
            # A case the file named before: written in this batch, or left as it was.
            earlier = old.source_row if old.batch_id == self.batch_id else self.seen.get(old.id)
            if earlier:
                # Either row may be the right one; applying the later would make a second
                # import of the same file flip the case back and forth. Keep the first.
                repeats.append(Repeat(record, earlier, identical))
                if identical:
                    counts.unchanged += 1
                else:
                    counts.rejected += 1
                continue
            self.seen.set(old.id, record.row)
            if identical:
                counts.unchanged += 1
            else:
                changed.append((old.id, record))
        self._insert(Chunk.of_records(new))
        counts.inserted += len(new)
        for case_id, record in changed:
            self._update(case_id, record)
        counts.updated += len(changed)

    def _insert(self, chunk: Chunk) -> None:
        """Insert the chunk's cases and contacts, column by column (no tuple per row)."""
        if not len(chunk):
            return
        ids = self.bulk.allocate_ids(cases_t, len(chunk))
        units = self.units
        # None is never a unit's name, so a case without a town gets None.
        town_ids = cast(Callable[[str | None], int | None], units.get)
        self.bulk.columns(
            cases_t,
            _CASE_COLUMNS,
            [
                ids,
                chunk.case_no,
                chunk.item_name,
                chunk.item_code,
                list(map(units.__getitem__, chunk.unit)),
                list(map(town_ids, chunk.town)),
                chunk.applicant_name,
                chunk.applicant_type,
                chunk.contact_name,
                list(map(self.bulk.utc_text, chunk.handled_at)),
                chunk.channel,
                chunk.rows,
                chunk.fingerprint,
            ],
            {"created_batch_id": self.batch_id, "batch_id": self.batch_id},
        )
        self._insert_contacts(
            list(map(ids.__getitem__, chunk.contact_of)),
            chunk.contact_position,
            chunk.contact_raw,
            chunk.contact_e164,
            chunk.contact_extension,
            chunk.contact_kind,
            chunk.contact_validity,
        )

    def _insert_contacts(self, case_ids: list[int], *columns: list[Any]) -> Sequence[int]:
        """Insert contacts given as columns (position, raw, e164, extension, kind, validity)."""
        if not case_ids:
            return []
        ids = self.bulk.allocate_ids(contacts_t, len(case_ids))
        constants = {"source": ContactSource.IMPORT.value, "batch_id": self.batch_id,
                     "created_at": self._now_db}  # fmt: skip
        self.bulk.columns(contacts_t, _CONTACT_COLUMNS, [ids, case_ids, *columns], constants)
        return ids

    def _update(self, case_id: int, record: CaseRecord) -> None:
        """Bring one case to the facts of ``record``, auditing each change."""
        row = self.conn.execute(sa.select(cases_t).where(cases_t.c.id == case_id)).one()._mapping
        # A fact that a callback corrected is the callback's while the source still says what
        # it said before the correction; a source that now says something new is noted for
        # the office (case.conflict), not taken over the correction.
        corrected = corrected_facts(self.conn, case_id)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        offered: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for name in CASE_FACTS:
            new = getattr(record, name)
            if name == "unit":
                column, old_value = "unit_id", row["unit_id"]
                new_value: Any = self.unit_id(new, UnitKind.DEPARTMENT.value)
                shown_old, shown_new = self._unit_names.get(old_value), new
            elif name == "town":
                column, old_value = "town_id", row["town_id"]
                new_value = self.unit_id(new, UnitKind.TOWN.value) if new else None
                shown_old, shown_new = self._unit_names.get(old_value), new
            elif name == "handled_at":
                column, old_value = name, row[name]
                new_value = datetime.fromisoformat(new + "+00:00")
                shown_old, shown_new = old_value, new_value
            else:
                column, old_value, new_value = name, row[name], new
                shown_old, shown_new = old_value, new_value
            if old_value == new_value:
                continue
            fact = corrected.get(name)
            if fact is not None:
                if shown_new != fact.before:
                    kept[name], offered[name] = _jsonable(shown_old), _jsonable(shown_new)
                continue
            values[column] = new_value
            before[name] = _jsonable(shown_old)
            after[name] = _jsonable(shown_new)
        reason = self.reason(record)
        if values:
            self._audit("case.update", "case", case_id, case_id, before, after, reason)
        if kept:
            why = (
                f"{reason}: the source now says otherwise than a correction from a callback; "
                "the correction is kept until the office decides"
            )
            self._audit("case.conflict", "case", case_id, case_id, kept, offered, why)
        values.update(
            batch_id=self.batch_id, source_row=record.row, source_fingerprint=record.fingerprint()
        )
        self.conn.execute(sa.update(cases_t).where(cases_t.c.id == case_id).values(**values))
        self._update_contacts(case_id, record, reason)

    def _update_contacts(self, case_id: int, record: CaseRecord, reason: str) -> None:
        # Only numbers that came from imports are the source's to replace; numbers learnt in
        # callbacks stay whatever a later export says.
        current = self.conn.execute(
            sa.select(contacts_t.c.id, contacts_t.c.e164, contacts_t.c.raw, contacts_t.c.extension)
            .where(
                contacts_t.c.case_id == case_id,
                contacts_t.c.source == ContactSource.IMPORT.value,
                contacts_t.c.superseded_at.is_(None),
            )
            .order_by(contacts_t.c.position)
        ).all()
        wanted = {(p.e164 or p.raw, p.extension): p for p in record.phones}
        have = {(c.e164 or c.raw, c.extension): c for c in current}
        for key, contact in have.items():
            if key not in wanted:
                self.conn.execute(
                    sa.update(contacts_t)
                    .where(contacts_t.c.id == contact.id)
                    .values(superseded_at=self.now)
                )
                self._audit(
                    "contact.supersede",
                    "contact",
                    contact.id,
                    case_id,
                    _contact_json(contact),
                    None,
                    reason,
                )
        added = [
            (position, phone)
            for position, phone in enumerate(record.phones)
            if (phone.e164 or phone.raw, phone.extension) not in have
        ]
        columns = [
            [position for position, _ in added],
            *([getattr(p, name) for _, p in added] for name in _PHONE_FIELDS),
        ]
        ids = self._insert_contacts([case_id] * len(added), *columns)
        for contact_id, (_, phone) in zip(ids, added, strict=True):
            self._audit(
                "contact.add", "contact", contact_id, case_id, None, _contact_json(phone), reason
            )

    def _audit(
        self,
        action: str,
        entity: str,
        entity_id: int | None,
        case_id: int | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        reason: str,
    ) -> None:
        self.conn.execute(
            sa.insert(audit_t).values(
                at=self.now,
                actor=self.actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                case_id=case_id,
                before=before,
                after=after,
                reason=reason,
                batch_id=self.batch_id,
            )
        )


class SeenRows:
    """Case id → the row of this file that named it, at 4 bytes a case.

    Case ids are dense integers, so an array indexed by id holds a million cases in 4 MB
    where a dict would take 100 MB; ids beyond the array's reach go to a dict.
    """

    _LIMIT = 32_000_000

    def __init__(self) -> None:
        self._rows = array("I")
        self._far: dict[int, int] = {}

    def get(self, case_id: int) -> int:
        if case_id < len(self._rows):
            return self._rows[case_id]
        return self._far.get(case_id, 0)

    def set(self, case_id: int, row: int) -> None:
        if case_id >= self._LIMIT:
            self._far[case_id] = row
            return
        if case_id >= len(self._rows):
            self._rows.extend(repeat(0, case_id + 1 - len(self._rows) + 65_536))
        self._rows[case_id] = row


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _contact_json(contact: Any) -> dict[str, Any]:
    return {"raw": contact.raw, "e164": contact.e164, "extension": contact.extension}
