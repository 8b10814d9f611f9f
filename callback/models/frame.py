"""The sampling frame (样本框): units, import batches, cases, their contacts, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from callback.models.base import Base, _check_in
from callback.vocabulary import (
    ApplicantType,
    Channel,
    ContactSource,
    PhoneKind,
    UnitKind,
    Validity,
    Verification,
)

__all__ = [
    "ApplicantType", "AuditEntry", "Case", "Channel", "Contact", "ContactSource", "ImportBatch",
    "PhoneKind", "Unit", "UnitKind", "Validity", "Verification",
]  # fmt: skip


class Unit(Base):
    """A department or town (单位) that handled cases and owns a callback queue."""

    __tablename__ = "units"
    __table_args__ = (_check_in("kind", UnitKind, "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]


class ImportBatch(Base):
    """One imported file: what it was, who imported it, and what it changed."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.String(500))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    file_size: Mapped[int] = mapped_column(sa.BigInteger)
    file_format: Mapped[str] = mapped_column(sa.String(8))
    encoding: Mapped[str | None] = mapped_column(sa.String(32))
    sheet: Mapped[str | None] = mapped_column(sa.String(200))
    actor: Mapped[str] = mapped_column(sa.String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    warnings: Mapped[int] = mapped_column(default=0)


class Case(Base):
    """A handled service case (办件): the unit of the sampling frame."""

    __tablename__ = "cases"
    __table_args__ = (
        _check_in("applicant_type", ApplicantType, "applicant_type"),
        _check_in("channel", Channel, "channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(sa.String(64), unique=True)
    item_name: Mapped[str] = mapped_column(sa.String(300))
    item_code: Mapped[str | None] = mapped_column(sa.String(64))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    town_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    applicant_name: Mapped[str | None] = mapped_column(sa.String(200))
    applicant_type: Mapped[str] = mapped_column(sa.String(16))
    contact_name: Mapped[str | None] = mapped_column(sa.String(100))
    # Not indexed: sampling reads the whole period anyway, and the index cost every import.
    handled_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    # The batch columns are provenance, not foreign keys: batches are never deleted, and on
    # PostgreSQL each foreign key costs a trigger call for every row a COPY loads.
    created_batch_id: Mapped[int | None]
    #: The import batch that last wrote this case, and the row of its file.
    batch_id: Mapped[int | None]
    source_row: Mapped[int | None]
    #: A hash of the facts as the source last gave them: equal means a re-import changes nothing.
    source_fingerprint: Mapped[int | None] = mapped_column(sa.BigInteger)
    # No created_at/updated_at: the import batches say when a case came and the audit log
    # when it changed; two timestamps on a million rows made every import slower.


class Contact(Base):
    """One telephone number of a case, as typed and as normalised.

    Numbers are never deleted: a number replaced by a re-import or found wrong is marked
    superseded, so the audit trail and the verification history stay whole.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        _check_in("kind", PhoneKind, "kind"),
        _check_in("validity", Validity, "validity"),
        _check_in("source", ContactSource, "source"),
        _check_in("verification", Verification, "verification"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    raw: Mapped[str] = mapped_column(sa.String(100))
    e164: Mapped[str | None] = mapped_column(sa.String(20))
    extension: Mapped[str | None] = mapped_column(sa.String(10))
    kind: Mapped[str | None] = mapped_column(sa.String(16))
    validity: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(16))
    batch_id: Mapped[int | None]  # provenance, as Case.batch_id
    created_at: Mapped[datetime]
    superseded_at: Mapped[datetime | None]
    #: What callbacks learnt of it (Verification) and when.
    verification: Mapped[str] = mapped_column(
        sa.String(16), default="not_called", server_default="not_called"
    )
    checked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One change to the frame: who, when, what, before, after, why, and from which call."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(100))
    #: e.g. "case.update", "contact.add", "contact.supersede", "unit.create".
    action: Mapped[str] = mapped_column(sa.String(40))
    entity: Mapped[str] = mapped_column(sa.String(20))
    entity_id: Mapped[int | None]
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    #: None is SQL NULL (nothing before a creation, nothing after a removal), never the JSON
    #: value null, so that ``before IS NULL`` finds every creation.
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    reason: Mapped[str] = mapped_column(sa.Text)
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"))
    #: The call attempt that taught us the change.
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("attempts.id"))
