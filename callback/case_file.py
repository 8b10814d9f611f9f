"""One case's file: its facts, numbers, queues, calls, answers, corrections and audit trail.

What the office reads when a citizen, a unit or the evaluator asks "what happened to case
X?": every change to the frame with who, when, before, after, why and from which call, beside
the calls that taught it. Names and numbers are masked unless the reader asks for them whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.audit_log import AuditLine, mask_values, read_audit
from callback.corrections import proposed_text
from callback.errors import CallbackError
from callback.models import (
    AuditEntry,
    CallAttempt,
    Campaign,
    Case,
    Contact,
    Correction,
    ImportBatch,
    ProblemReport,
    QueueItem,
    Response,
    Unit,
    table,
)
from callback.phones import mask
from callback.problems import mask_name

cases_t, contacts_t, units_t = table(Case), table(Contact), table(Unit)
items_t, attempts_t, campaigns_t = table(QueueItem), table(CallAttempt), table(Campaign)
responses_t, corrections_t = table(Response), table(Correction)
problems_t, audit_t, batches_t = table(ProblemReport), table(AuditEntry), table(ImportBatch)


class CaseNotFound(CallbackError):
    """No case has that case number."""


@dataclass(frozen=True)
class ContactLine:
    position: int
    number: str
    extension: str | None
    kind: str | None
    validity: str
    verification: str
    source: str
    checked_at: datetime | None
    superseded_at: datetime | None


@dataclass(frozen=True)
class QueueLine:
    campaign: str
    state: str
    attempts: int
    due_at: datetime | None
    wait_reason: str | None
    appointment_at: datetime | None
    final_disposition: str | None
    finished_at: datetime | None
    weight: float


@dataclass(frozen=True)
class CallLine:
    id: int
    campaign: str
    at: datetime
    number: str
    dialer: str
    worker: str
    outcome: str | None
    disposition: str | None


@dataclass(frozen=True)
class AnswerLine:
    campaign: str
    attempt_id: int
    complete: bool
    realised: bool | None
    satisfied: bool | None
    recorded_at: datetime
    answers: dict[str, Any]


@dataclass(frozen=True)
class CorrectionLine:
    id: int
    kind: str
    proposed: str
    status: str
    proposed_by: str
    proposed_at: datetime
    attempt_id: int | None


@dataclass(frozen=True)
class ProblemLine:
    id: int
    category: str
    text: str
    status: str
    owner: str | None


@dataclass(frozen=True)
class CaseFile:
    case_id: int
    case_no: str
    unit: str
    town: str | None
    item_name: str
    item_code: str | None
    applicant_name: str
    applicant_type: str
    contact_name: str
    handled_at: datetime
    channel: str | None
    source: str | None
    contacts: list[ContactLine]
    queues: list[QueueLine]
    calls: list[CallLine]
    answers: list[AnswerLine]
    corrections: list[CorrectionLine]
    problems: list[ProblemLine]
    audit: list[AuditLine]


def case_file(engine: Engine, case_no: str, full: bool = False) -> CaseFile:
    """Read case ``case_no``'s file; names and numbers masked unless ``full``."""
    with engine.connect() as conn:
        case = conn.execute(sa.select(cases_t).where(cases_t.c.case_no == case_no)).first()
        if case is None:
            raise CaseNotFound(f"no case numbered {case_no!r} in the frame")
        people = (case.applicant_name, case.contact_name)
        number: Callable[[str | None], str] = _whole if full else mask
        name: Callable[[str | None], str] = _whole if full else mask_name
        free: Callable[[Any], Any] = _same if full else lambda v: mask_values(v, people)
        units = dict(conn.execute(sa.select(units_t.c.id, units_t.c.name)).all())
        campaigns = dict(conn.execute(sa.select(campaigns_t.c.id, campaigns_t.c.name)).all())
        items = _items(conn, case.id)
        item_ids = [i.id for i in items]
        return CaseFile(
            case_id=case.id,
            case_no=case.case_no,
            unit=units[case.unit_id],
            town=units.get(case.town_id),
            item_name=case.item_name,
            item_code=case.item_code,
            applicant_name=name(case.applicant_name),
            applicant_type=case.applicant_type,
            contact_name=name(case.contact_name),
            handled_at=case.handled_at,
            channel=case.channel,
            source=_source(conn, case.batch_id, case.source_row),
            contacts=[
                ContactLine(
                    c.position,
                    number(c.e164 or c.raw),
                    c.extension,
                    c.kind,
                    c.validity,
                    c.verification,
                    c.source,
                    c.checked_at,
                    c.superseded_at,
                )
                for c in conn.execute(
                    sa.select(contacts_t)
                    .where(contacts_t.c.case_id == case.id)
                    .order_by(
                        contacts_t.c.superseded_at.is_not(None),
                        contacts_t.c.position,
                        contacts_t.c.id,
                    )
                )
            ],  # fmt: skip
            queues=[
                QueueLine(
                    campaigns[i.campaign_id],
                    i.state,
                    i.attempts,
                    i.due_at,
                    i.wait_reason,
                    i.appointment_at,
                    i.final_disposition,
                    i.finished_at,
                    i.weight,
                )
                for i in items
            ],  # fmt: skip
            calls=[
                CallLine(
                    a.id,
                    campaigns[a.campaign_id],
                    a.placed_at or a.created_at,
                    number(a.number),
                    a.dialer,
                    a.worker,
                    a.outcome,
                    a.disposition,
                )
                for a in conn.execute(
                    sa.select(attempts_t)
                    .where(attempts_t.c.queue_item_id.in_(item_ids))
                    .order_by(attempts_t.c.id)
                )
            ],  # fmt: skip
            answers=[
                AnswerLine(
                    campaigns[r.campaign_id],
                    r.attempt_id,
                    r.complete,
                    r.realised,
                    r.satisfied,
                    r.recorded_at,
                    free(r.answers),
                )
                for r in conn.execute(
                    sa.select(responses_t)
                    .where(responses_t.c.queue_item_id.in_(item_ids))
                    .order_by(responses_t.c.id)
                )
            ],  # fmt: skip
            corrections=[
                CorrectionLine(
                    c.id,
                    c.kind,
                    _proposed(c.kind, c.proposed, full, c.script),
                    c.status,
                    c.proposed_by,
                    c.proposed_at,
                    c.attempt_id,
                )
                for c in conn.execute(
                    # The script tells a typed answer (a name: masked) from an option's value.
                    sa.select(corrections_t, campaigns_t.c.script)
                    .outerjoin(attempts_t, attempts_t.c.id == corrections_t.c.attempt_id)
                    .outerjoin(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
                    .where(corrections_t.c.case_id == case.id)
                    .order_by(corrections_t.c.id)
                )
            ],  # fmt: skip
            problems=[
                ProblemLine(p.id, p.category, free(p.text), p.status, p.owner)
                for p in conn.execute(
                    sa.select(problems_t)
                    .where(problems_t.c.case_id == case.id)
                    .order_by(problems_t.c.id)
                )
            ],  # fmt: skip
            audit=read_audit(conn, [audit_t.c.case_id == case.id], full),
        )


def _items(conn: Connection, case_id: int) -> list[Any]:
    return list(
        conn.execute(sa.select(items_t).where(items_t.c.case_id == case_id).order_by(items_t.c.id))
    )


def _source(conn: Connection, batch_id: int | None, row: int | None) -> str | None:
    """Which file (and row) last wrote the case."""
    if batch_id is None:
        return None
    found = conn.execute(
        sa.select(batches_t.c.file_name, batches_t.c.started_at).where(batches_t.c.id == batch_id)
    ).first()
    if found is None:
        return None
    where = f", row {row}" if row is not None else ""
    return f"{found.file_name}{where} (import {batch_id}, {found.started_at:%Y-%m-%d})"


def _proposed(kind: str, proposed: Mapping[str, Any], full: bool, script: str | None) -> str:
    if full:
        return ", ".join(f"{k}: {v}" for k, v in proposed.items())
    return proposed_text(kind, proposed, script)


def _whole(value: str | None) -> str:
    return "" if value is None else value


def _same(value: Any) -> Any:
    return value
