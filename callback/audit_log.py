"""Read the audit log back: who changed what, when, from what to what, why, from which call.

Names and numbers in the values and the reasons are masked unless the reader asks for them
whole; times are left alone, whatever digits they hold. Being shown them whole is itself
written to the log (``record_disclosure``): who exported the frame, who asked for ``--full``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.db import immediate
from callback.models import AuditEntry, Case, table
from callback.phones import mask
from callback.problems import mask_name, mask_text

audit_t, cases_t = table(AuditEntry), table(Case)

#: Keys of audit values that hold a number or a person's name.
NUMBER_KEYS = frozenset({"e164", "raw", "phone", "number", "appointment_number", "replaces"})
NAME_KEYS = frozenset({"applicant_name", "contact_name", "contact", "name"})


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    case_no: str | None
    before: Any
    after: Any
    reason: str
    attempt_id: int | None
    batch_id: int | None


def audit_entries(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    case_no: str | None = None,
    limit: int | None = 200,
    full: bool = False,
) -> list[AuditLine]:
    """The newest entries first, at most ``limit``: in ``[since, until)``, by ``actor``, whose
    action is ``action`` or starts with ``action.`` (``dnc`` finds dnc.add and dnc.remove),
    about case ``case_no``."""
    a = audit_t.c
    where: list[sa.ColumnElement[bool]] = []
    if since is not None:
        where.append(a.at >= since)
    if until is not None:
        where.append(a.at < until)
    if actor is not None:
        where.append(a.actor == actor)
    if action is not None:
        where.append(sa.or_(a.action == action, a.action.startswith(action + ".", autoescape=True)))
    if case_no is not None:
        where.append(cases_t.c.case_no == case_no)
    with engine.connect() as conn:
        return read_audit(conn, where, full, newest_first=True, limit=limit)


def read_audit(
    conn: Connection,
    where: Sequence[sa.ColumnElement[bool]],
    full: bool,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[AuditLine]:
    """Audit entries matching ``where`` (on audit_log and the case it is about), masked
    unless ``full``, oldest first unless ``newest_first``."""
    a = audit_t.c
    order = [a.at.desc(), a.id.desc()] if newest_first else [a.at, a.id]
    query = (
        sa.select(audit_t, cases_t.c.case_no, cases_t.c.applicant_name, cases_t.c.contact_name)
        .select_from(audit_t.outerjoin(cases_t, cases_t.c.id == a.case_id))
        .where(*where)
        .order_by(*order)
    )
    if limit is not None:
        query = query.limit(limit)
    lines = []
    for r in conn.execute(query):
        people = (r.applicant_name, r.contact_name)

        def shown(value: Any, people: tuple[str | None, ...] = people) -> Any:
            return value if full else mask_values(value, people)

        lines.append(
            AuditLine(r.id, r.at, r.actor, r.action, r.entity, r.entity_id, r.case_no,
                      shown(r.before), shown(r.after), shown(r.reason), r.attempt_id,
                      r.batch_id)
        )  # fmt: skip
    return lines


def mask_values(value: Any, people: Sequence[str | None] = (), key: str | None = None) -> Any:
    """``value`` with every number and the given people's names masked, nested values too."""
    if isinstance(value, dict):
        return {k: mask_values(v, people, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_values(v, people, key) for v in value]
    if not isinstance(value, str) or (key is not None and key.endswith("_at")):
        return value  # a time is not a telephone number, however many digits it has
    if key in NUMBER_KEYS:
        return mask(value)
    if key in NAME_KEYS:
        return mask_name(value)
    return mask_text(value, people)


def record_disclosure(
    engine: Engine,
    actor: str,
    action: str,
    now: datetime,
    what: dict[str, Any],
    why: str,
    case_id: int | None = None,
) -> None:
    """Write who was shown or given names and numbers whole, and what: an export of the frame,
    a ``--full`` listing. Masked screens are not recorded; they disclose nothing."""
    with immediate(engine) as conn:
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action=action, entity="disclosure", case_id=case_id,
                after=what, reason=why,
            )
        )  # fmt: skip
