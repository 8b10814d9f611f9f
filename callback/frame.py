"""What the frame holds: counts by unit, month, channel and telephone quality."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.models import Case, Contact, ImportBatch, Unit, Validity, table

cases_t, contacts_t, units_t = table(Case), table(Contact), table(Unit)
batches_t = table(ImportBatch)


@dataclass
class FrameSummary:
    cases: int = 0
    units: dict[str, int] = field(default_factory=dict)  # kind -> count
    first_handled: datetime | None = None
    last_handled: datetime | None = None
    by_channel: dict[str, int] = field(default_factory=dict)
    by_applicant_type: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)  # "mobile valid" -> count
    without_valid_phone: int = 0
    top_units: list[tuple[str, str, int]] = field(default_factory=list)
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(engine: Engine, top: int = 10) -> FrameSummary:
    """Count what the frame holds (one pass per question, all set-based)."""
    summary = FrameSummary()
    with engine.connect() as conn:
        summary.cases, first, last = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(cases_t.c.handled_at),
                sa.func.max(cases_t.c.handled_at),
            )
        ).one()
        # min()/max() come back untyped from SQLite; run them through the column type.
        column_type = cases_t.c.handled_at.type
        processor = column_type.result_processor(conn.dialect, None)
        summary.first_handled = processor(first) if processor else first
        summary.last_handled = processor(last) if processor else last
        summary.units = dict(
            conn.execute(sa.select(units_t.c.kind, sa.func.count()).group_by(units_t.c.kind)).all()
        )
        summary.by_channel = {
            (channel or "unknown"): n
            for channel, n in conn.execute(
                sa.select(cases_t.c.channel, sa.func.count()).group_by(cases_t.c.channel)
            )
        }
        summary.by_applicant_type = dict(
            conn.execute(
                sa.select(cases_t.c.applicant_type, sa.func.count()).group_by(
                    cases_t.c.applicant_type
                )
            ).all()
        )
        current = contacts_t.c.superseded_at.is_(None)
        summary.contacts = {
            f"{kind or 'unknown'} {validity}": n
            for kind, validity, n in conn.execute(
                sa.select(contacts_t.c.kind, contacts_t.c.validity, sa.func.count())
                .where(current)
                .group_by(contacts_t.c.kind, contacts_t.c.validity)
                .order_by(sa.func.count().desc())
            )
        }
        has_valid = (
            sa.select(contacts_t.c.id)
            .where(
                contacts_t.c.case_id == cases_t.c.id,
                contacts_t.c.validity == Validity.VALID.value,
                current,
            )
            .exists()
        )
        summary.without_valid_phone = conn.execute(
            sa.select(sa.func.count()).select_from(cases_t).where(~has_valid)
        ).scalar_one()
        summary.top_units = [
            (name, kind, n)
            for name, kind, n in conn.execute(
                sa.select(units_t.c.name, units_t.c.kind, sa.func.count(cases_t.c.id))
                .join(cases_t, cases_t.c.unit_id == units_t.c.id)
                .group_by(units_t.c.id, units_t.c.name, units_t.c.kind)
                .order_by(sa.func.count(cases_t.c.id).desc(), units_t.c.name)
                .limit(top)
            )
        ]
        summary.batches = conn.execute(
            sa.select(sa.func.count()).select_from(batches_t)
        ).scalar_one()
    return summary
