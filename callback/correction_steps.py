"""Write one decision on a correction to the frame, each change with its audit entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from callback.errors import CallbackError
from callback.models import (
    AuditEntry,
    CallAttempt,
    Campaign,
    Case,
    Contact,
    ContactSource,
    Correction,
    CorrectionStatus,
    Unit,
    UnitKind,
    Verification,
    table,
)
from callback.phones import Phone, PhoneParser, mask

corrections_t, cases_t, contacts_t, units_t = (
    table(Correction), table(Case), table(Contact), table(Unit)
)  # fmt: skip
audit_t, attempts_t, campaigns_t = table(AuditEntry), table(CallAttempt), table(Campaign)


class CorrectionError(CallbackError):
    """A correction that cannot be proposed, applied, rejected or reverted as asked."""


@dataclass
class Step:
    """One decision on one correction, inside the caller's transaction."""

    conn: Connection
    #: The correction, with its call's contact (attempt_contact_id) and campaign script.
    row: Any
    actor: str
    now: datetime
    reason: str
    note: str | None

    @classmethod
    def load(
        cls,
        conn: Connection,
        correction_id: int,
        wanted: CorrectionStatus,
        verb: str,
        actor: str,
        now: datetime,
        note: str | None,
    ) -> Step:
        """Lock the correction, which must be ``wanted``, for a decision that ``verb`` names."""
        query = (
            sa.select(corrections_t, attempts_t.c.contact_id.label("attempt_contact_id"),
                      campaigns_t.c.script.label("script"))
            .select_from(corrections_t)
            .outerjoin(attempts_t, attempts_t.c.id == corrections_t.c.attempt_id)
            .outerjoin(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
            .where(corrections_t.c.id == correction_id)
        )  # fmt: skip
        if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises
            query = query.with_for_update(of=corrections_t)
        row = conn.execute(query).first()
        if row is None:
            raise CorrectionError(f"no correction {correction_id}")
        if row.status != wanted:
            raise CorrectionError(
                f"correction {correction_id} is {row.status}; only a {wanted} correction can "
                f"be {verb}"
            )
        return cls(conn, row, actor, now, note or f"correction {row.id} ({row.kind}) {verb}", note)

    def audit(
        self,
        action: str,
        entity: str,
        entity_id: int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        case: bool = True,
    ) -> None:
        """Write an audit entry of this decision, about the case unless ``case`` is False."""
        self.conn.execute(
            sa.insert(audit_t).values(
                at=self.now, actor=self.actor, action=action, entity=entity, entity_id=entity_id,
                case_id=self.row.case_id if case else None, before=before, after=after,
                reason=self.reason, attempt_id=self.row.attempt_id,
            )
        )  # fmt: skip

    def decide(self, status: CorrectionStatus, before: Any, after: Any) -> None:
        """Record the decision on the correction: its status, who, when, what it changed."""
        values: dict[str, Any] = dict(
            status=status.value, decided_by=self.actor, decided_at=self.now, before=before,
            after=after,
        )  # fmt: skip
        if self.note is not None:
            values["note"] = self.note
        self.conn.execute(
            sa.update(corrections_t).where(corrections_t.c.id == self.row.id).values(**values)
        )

    def case(self) -> dict[str, Any]:
        """Read the case's facts that a correction can change, the unit by its name."""
        row = self.conn.execute(
            sa.select(cases_t.c.contact_name, cases_t.c.item_name, cases_t.c.item_code,
                      units_t.c.name.label("unit"))
            .join(units_t, units_t.c.id == cases_t.c.unit_id)
            .where(cases_t.c.id == self.row.case_id)
        ).one()  # fmt: skip
        return dict(row._mapping)

    def set_facts(
        self, case: Mapping[str, Any], wanted: Mapping[str, Any], create_unit: bool
    ) -> None:
        """Set the case's facts that differ from ``wanted``, audited as one ``case.update``."""
        changed = {k: v for k, v in wanted.items() if case[k] != v}
        if not changed:
            return
        values = {k: v for k, v in changed.items() if k != "unit"}
        if "unit" in changed:
            values["unit_id"] = self.unit_id(changed["unit"], create_unit)
        self.conn.execute(
            sa.update(cases_t).where(cases_t.c.id == self.row.case_id).values(**values)
        )
        self.audit("case.update", "case", self.row.case_id, {k: case[k] for k in changed}, changed)

    def unit_id(self, name: str, create: bool) -> int:
        """Find the unit named ``name``, or create it (audited) when ``create`` allows."""
        found = self.conn.execute(sa.select(units_t.c.id).where(units_t.c.name == name)).scalar()
        if found is not None:
            return int(found)
        if not create:
            raise CorrectionError(
                f"correction {self.row.id} names a unit that is not in the frame ({name}): a "
                "person must apply it, which creates the unit, or give an existing unit"
            )
        # The importer's rule (callback.framewriter): names of towns and street offices end so.
        town = name.endswith(("镇", "乡", "街道", "街道办事处"))
        kind = (UnitKind.TOWN if town else UnitKind.DEPARTMENT).value
        new_id = self.conn.execute(
            sa.insert(units_t).values(name=name, kind=kind, created_at=self.now)
            .returning(units_t.c.id)
        ).scalar_one()  # fmt: skip
        self.audit("unit.create", "unit", new_id, None, {"name": name, "kind": kind}, case=False)
        return int(new_id)

    def apply_phone(
        self, value: str | None, parser: PhoneParser
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Add or confirm the new number and mark the one it replaces; return before, after."""
        row, proposed = self.row, self.row.proposed
        typed = value if value is not None else proposed.get("raw", proposed.get("phone"))
        phone = dialable(parser, None if typed is None else str(typed), f"correction {row.id}")
        explicit = proposed.get("replaces")
        replaced = explicit if explicit is not None else row.attempt_contact_id
        current = self.conn.execute(
            sa.select(contacts_t).where(
                contacts_t.c.case_id == row.case_id, contacts_t.c.superseded_at.is_(None)
            )
        ).all()
        key = (phone.e164, phone.extension)
        same = next((c for c in current if (c.e164, c.extension) == key), None)
        if same is not None and same.id == replaced:
            raise CorrectionError(f"correction {row.id} proposes the number it would replace")
        changes: list[tuple[Any, str]] = []
        added: dict[str, Any] | None = None
        if same is not None:
            changes.append((same, Verification.CORRECTED.value))
        else:
            added = self.add_contact(phone)
        old = next((c for c in current if c.id == replaced), None)
        # A number on which the applicant answered is not wrong: the new one is another way
        # to reach them. Only the office's explicit "replaces" says otherwise.
        if old is not None and (explicit is not None or old.verification != "verified"):
            changes.append((old, Verification.WRONG_NUMBER.value))
        before, after = self.verify(changes)
        if added is not None:
            after["added"] = added
        return before, after

    def add_contact(self, phone: Phone) -> dict[str, Any]:
        """Add ``phone`` as the case's last number, verification ``corrected``. Audited."""
        row = self.row
        position = self.conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(contacts_t.c.position), -1)).where(
                contacts_t.c.case_id == row.case_id
            )
        ).scalar_one()
        source = (ContactSource.CALLBACK if row.attempt_id else ContactSource.AGENT).value
        values = dict(
            raw=phone.raw, e164=phone.e164, extension=phone.extension, kind=phone.kind,
            validity=phone.validity, source=source, verification=Verification.CORRECTED.value,
        )  # fmt: skip
        new_id = self.conn.execute(
            sa.insert(contacts_t)
            .values(case_id=row.case_id, position=position + 1, created_at=self.now,
                    checked_at=row.proposed_at, **values)
            .returning(contacts_t.c.id)
        ).scalar_one()  # fmt: skip
        self.audit("contact.add", "contact", new_id, None, values)
        return {"id": new_id, "e164": phone.e164, "extension": phone.extension}

    def mark_wrong(self, contact_id: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark a number, by default the one the call dialled, wrong; return before, after."""
        target = contact_id if contact_id is not None else self.row.attempt_contact_id
        contact = None
        if target is not None:
            query = sa.select(contacts_t).where(contacts_t.c.id == target)
            contact = self.conn.execute(query).first()
        if contact is None:
            raise CorrectionError(
                f"correction {self.row.id} names no number of the case (it came from no call)"
            )
        return self.verify([(contact, Verification.WRONG_NUMBER.value)])

    def verify(self, changes: list[tuple[Any, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Set existing numbers' verification as of the call; return before and after."""
        before: list[dict[str, Any]] = []
        after: list[dict[str, Any]] = []
        checked = _iso(self.row.proposed_at)
        for contact, verification in changes:
            old = {"id": contact.id, "verification": contact.verification,
                   "checked_at": _iso(contact.checked_at)}  # fmt: skip
            new = {"id": contact.id, "verification": verification, "checked_at": checked}
            before.append(old)
            after.append(new)
            if old != new:  # callback.sessions may have marked the number in the call itself
                self._set_verification(old, new)
        return {"contacts": before}, {"contacts": after}

    def restore_contacts(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Put back the numbers' verification and supersede a number the correction added."""
        for old, new in zip(before.get("contacts", []), after.get("contacts", []), strict=True):
            now = self.conn.execute(
                sa.select(contacts_t.c.verification, contacts_t.c.checked_at).where(
                    contacts_t.c.id == old["id"]
                )
            ).one()
            # A later call that checked the number again knows better than this correction.
            if old != new and (now.verification, _iso(now.checked_at)) == (
                new["verification"], new["checked_at"]
            ):  # fmt: skip
                self._set_verification(new, old)
        added = after.get("added")
        if added is not None:
            superseded = self.conn.execute(
                sa.update(contacts_t)
                .where(contacts_t.c.id == added["id"], contacts_t.c.superseded_at.is_(None))
                .values(superseded_at=self.now)
            ).rowcount
            if superseded:
                shown = {"e164": added["e164"], "extension": added["extension"]}
                self.audit("contact.supersede", "contact", added["id"], shown, None)

    def _set_verification(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        checked = None if new["checked_at"] is None else datetime.fromisoformat(new["checked_at"])
        self.conn.execute(
            sa.update(contacts_t)
            .where(contacts_t.c.id == new["id"])
            .values(verification=new["verification"], checked_at=checked)
        )
        self.audit("contact.verify", "contact", new["id"], _without_id(old), _without_id(new))


def dialable(parser: PhoneParser, typed: str | None, what: str) -> Phone:
    """Parse ``typed`` as exactly one number that can be dialled, or refuse it as ``what``."""
    phones = parser.parse_cell(typed) if typed else []
    if len(phones) != 1 or phones[0].e164 is None:
        why = phones[0].reason if len(phones) == 1 else "not exactly one number"
        raise CorrectionError(
            f"{what}: {mask(typed) or 'nothing'} is not a telephone number that can be dialled "
            f"({why})"
        )
    return phones[0]


def _without_id(contact: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in contact.items() if k != "id"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
