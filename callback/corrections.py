"""Corrections of the frame (信息更正): proposed in calls or by the office, reviewed, applied,
rejected or reverted; every step is written to the audit log.

A correction fixes a fact (a number, the contact person, the unit, the item) and nothing
else: no function here looks at what a citizen answered about realisation or satisfaction.
Numbers are never deleted: a replaced number is marked ``wrong_number``, and reverting a new
number marks it superseded.

``before`` and ``after`` of an applied correction hold what it changed: case facts under
the importer's names (``contact_name``, ``unit``, ``item_name``, ``item_code``), the
verification of existing numbers under ``contacts``, and a number it added under ``added``.
The writes themselves, each with its audit entry, are ``callback.correction_steps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback import plugins
from callback.correction_steps import CorrectionError, Step, dialable
from callback.db import immediate
from callback.errors import CallbackError
from callback.models import (
    CallAttempt,
    Campaign,
    Case,
    Contact,
    Correction,
    CorrectionStatus,
    QueueItem,
    Unit,
    table,
)
from callback.phones import PhoneParser, mask
from callback.problems import mask_name
from callback.survey_format import CorrectionKind, Kind

corrections_t, cases_t, contacts_t, units_t = (
    table(Correction), table(Case), table(Contact), table(Unit)
)  # fmt: skip
attempts_t, campaigns_t, items_t = table(CallAttempt), table(Campaign), table(QueueItem)

#: Case facts a correction can change, named as callback.framewriter.CASE_FACTS names them.
CORRECTED_FACTS = ("contact_name", "unit", "item_name", "item_code")
_FACT_OF_KIND = {
    CorrectionKind.CONTACT: "contact_name",
    CorrectionKind.UNIT: "unit",
    CorrectionKind.ITEM: "item_name",
}
_LIMITS = {"contact_name": 100, "unit": 200, "item_name": 300, "item_code": 64}
#: What the office may propose itself ("case" only says that something is wrong).
OFFICE_KINDS = ("phone", "contact", "unit", "item", "wrong_number")


@dataclass(frozen=True)
class Decision:
    """What became of one correction."""

    correction_id: int
    status: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class PendingResult:
    """What ``apply_pending`` did: ids applied, and ids left for a person with the reason."""

    applied: list[int] = field(default_factory=list)
    waiting: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CorrectedFact:
    """The latest applied correction of one case fact: what a re-import must not undo."""

    correction_id: int
    before: Any
    after: Any


@dataclass(frozen=True)
class CorrectionView:
    """One correction as listings show it: names and numbers masked."""

    id: int
    case_no: str
    unit: str
    kind: str
    proposed: str
    status: str
    proposed_by: str
    proposed_at: datetime
    attempt_id: int | None
    campaign: str | None
    decided_by: str | None
    decided_at: datetime | None


def propose(
    engine: Engine,
    case_no: str,
    kind: str,
    value: str | None,
    actor: str,
    now: datetime,
    *,
    attempt_id: int | None = None,
    replaces: str | None = None,
    item_code: str | None = None,
    note: str | None = None,
    area_code: str = "0571",
) -> Decision:
    """Record an agent's or the office's correction of a case, and apply it at once unless
    it comes from a call (``attempt_id``) of a campaign that asks for review.

    ``value`` is the new number, contact person, unit or item, or the number found wrong.
    ``replaces`` names the number a new one replaces (default: the one the call dialled).
    A bad number is refused before anything is stored.
    """
    if kind not in OFFICE_KINDS:
        raise CorrectionError(f"the office proposes one of {', '.join(OFFICE_KINDS)}, not {kind!r}")
    parser = PhoneParser(area_code)
    with immediate(engine) as conn:
        case_id = conn.execute(sa.select(cases_t.c.id).where(cases_t.c.case_no == case_no)).scalar()
        if case_id is None:
            raise CorrectionError(f"no case numbered {case_no!r} in the frame")
        review: bool | None = False
        if attempt_id is not None:
            review = conn.execute(
                sa.select(campaigns_t.c.review_corrections)
                .join(attempts_t, attempts_t.c.campaign_id == campaigns_t.c.id)
                .join(items_t, items_t.c.id == attempts_t.c.queue_item_id)
                .where(attempts_t.c.id == attempt_id, items_t.c.case_id == case_id)
            ).scalar()
            if review is None:
                raise CorrectionError(f"no call attempt {attempt_id} of case {case_no}")
        proposed: dict[str, Any]
        if kind == CorrectionKind.PHONE:
            phone = dialable(parser, value, "the new number")
            proposed = {"phone": phone.e164, "extension": phone.extension, "raw": phone.raw}
            if replaces is not None:
                proposed["replaces"] = _contact_of(conn, case_id, parser, replaces)
        elif kind == CorrectionKind.WRONG_NUMBER:
            if value is None and attempt_id is None:
                raise CorrectionError("name the wrong number, or the call that dialled it")
            proposed = {"wrong_number": True}
            if value is not None:
                proposed["contact_id"] = _contact_of(conn, case_id, parser, value)
        else:
            proposed = {kind: _fact_text(_FACT_OF_KIND[CorrectionKind(kind)], value)}
            if item_code is not None:
                proposed["item_code"] = _fact_text("item_code", item_code)
        correction_id = conn.execute(
            sa.insert(corrections_t)
            .values(case_id=case_id, attempt_id=attempt_id, kind=kind, proposed=proposed,
                    status=CorrectionStatus.PENDING, proposed_by=actor, proposed_at=now,
                    note=note)
            .returning(corrections_t.c.id)
        ).scalar_one()  # fmt: skip
        if review:
            return Decision(correction_id, CorrectionStatus.PENDING.value)
        return _apply(conn, correction_id, actor, now, note, None, None, True, parser)


def apply(
    engine: Engine,
    correction_id: int,
    actor: str,
    now: datetime,
    note: str | None = None,
    *,
    value: str | None = None,
    as_kind: str | None = None,
    create_unit: bool = True,
    area_code: str = "0571",
) -> Decision:
    """Apply a pending correction to the frame, and audit it.

    ``value`` gives or overrides the fact (a reviewer who checked it with the unit);
    ``as_kind`` (unit, item, contact) turns a ``case`` correction, "not my case", into the
    fact that was wrong. A unit not in the frame is created as the importer would create
    it, unless ``create_unit`` is False.
    """
    with immediate(engine) as conn:
        return _apply(
            conn, correction_id, actor, now, note, value, as_kind, create_unit,
            PhoneParser(area_code),
        )  # fmt: skip


def reject(
    engine: Engine, correction_id: int, actor: str, now: datetime, note: str | None = None
) -> Decision:
    """Decide that a pending correction is wrong: the frame stays as it is. Audited."""
    with immediate(engine) as conn:
        step = Step.load(conn, correction_id, CorrectionStatus.PENDING, "rejected", actor, now,
                          note)  # fmt: skip
        step.decide(CorrectionStatus.REJECTED, None, None)
        step.audit("correction.reject", "correction", step.row.id,
                   {"status": "pending"}, {"status": "rejected"})  # fmt: skip
    return Decision(correction_id, CorrectionStatus.REJECTED.value)


def revert(
    engine: Engine, correction_id: int, actor: str, now: datetime, note: str | None = None
) -> Decision:
    """Undo an applied correction: the case's facts and the numbers' verification go back to
    their ``before`` values, and a number it added is marked superseded. Audited.

    Refused when a fact it set has changed since (a later correction or import): reverting
    would silently undo that change too, so it must be undone first.
    """
    with immediate(engine) as conn:
        step = Step.load(conn, correction_id, CorrectionStatus.APPLIED, "reverted", actor, now,
                          note)  # fmt: skip
        row = step.row
        before, after = row.before or {}, row.after or {}
        case = step.case()
        facts = {k: after[k] for k in CORRECTED_FACTS if k in after}
        for fact, value in facts.items():
            if case[fact] != value:
                raise CorrectionError(
                    f"correction {row.id} cannot be reverted: the case's {fact} has changed "
                    "since it was applied (see the audit log); revert that change first"
                )
        step.set_facts(case, {k: before.get(k) for k in facts}, create_unit=False)
        step.restore_contacts(before, after)
        step.decide(CorrectionStatus.REVERTED, row.before, row.after)
        step.audit("correction.revert", "correction", row.id,
                   {"status": "applied", **after}, {"status": "reverted", **before})  # fmt: skip
    return Decision(correction_id, CorrectionStatus.REVERTED.value, row.before, row.after)


def apply_pending(
    engine: Engine, now: datetime, actor: str, area_code: str = "0571"
) -> PendingResult:
    """Apply every pending correction that no campaign asked to review, oldest first.

    Each is applied in a transaction of its own. One that needs a person stays pending and
    is reported: a "not my case", an option that says the unit or item is wrong but not
    what it is, a unit not in the frame yet, a number that cannot be dialled.
    """
    with engine.connect() as conn:
        ids = conn.execute(
            sa.select(corrections_t.c.id)
            .select_from(corrections_t)
            .outerjoin(attempts_t, attempts_t.c.id == corrections_t.c.attempt_id)
            .outerjoin(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
            .where(
                corrections_t.c.status == CorrectionStatus.PENDING,
                sa.or_(campaigns_t.c.id.is_(None), campaigns_t.c.review_corrections.is_(False)),
            )
            .order_by(corrections_t.c.proposed_at, corrections_t.c.id)
        ).scalars().all()  # fmt: skip
    result = PendingResult()
    for correction_id in ids:
        try:
            apply(engine, correction_id, actor, now, create_unit=False, area_code=area_code)
        except CorrectionError as exc:
            result.waiting.append((correction_id, str(exc)))
        else:
            result.applied.append(correction_id)
    return result


def list_corrections(
    engine: Engine,
    statuses: Sequence[str] = (),
    campaign: str | None = None,
    unit: str | None = None,
    case_no: str | None = None,
) -> list[CorrectionView]:
    """Corrections, oldest first, filtered; what they propose is masked."""
    query = (
        sa.select(corrections_t, cases_t.c.case_no, units_t.c.name.label("unit"),
                  campaigns_t.c.name.label("campaign"), campaigns_t.c.script)
        .join(cases_t, cases_t.c.id == corrections_t.c.case_id)
        .join(units_t, units_t.c.id == cases_t.c.unit_id)
        .outerjoin(attempts_t, attempts_t.c.id == corrections_t.c.attempt_id)
        .outerjoin(campaigns_t, campaigns_t.c.id == attempts_t.c.campaign_id)
        .order_by(corrections_t.c.proposed_at, corrections_t.c.id)
    )  # fmt: skip
    if statuses:
        query = query.where(corrections_t.c.status.in_(list(statuses)))
    for column, wanted in ((campaigns_t.c.name, campaign), (units_t.c.name, unit),
                           (cases_t.c.case_no, case_no)):  # fmt: skip
        if wanted is not None:
            query = query.where(column == wanted)
    with engine.connect() as conn:
        return [
            CorrectionView(r.id, r.case_no, r.unit, r.kind,
                           proposed_text(r.kind, r.proposed, r.script), r.status, r.proposed_by,
                           r.proposed_at, r.attempt_id, r.campaign, r.decided_by, r.decided_at)
            for r in conn.execute(query)
        ]  # fmt: skip


def corrected_facts(conn: Connection, case_id: int) -> dict[str, CorrectedFact]:
    """The case's facts that applied corrections set, each with its latest correction.

    For the importer: a corrected fact stays as corrected while the source still says what
    it said before the correction (``before``).
    """
    found: dict[str, CorrectedFact] = {}
    rows = conn.execute(
        sa.select(corrections_t.c.id, corrections_t.c.before, corrections_t.c.after)
        .where(corrections_t.c.case_id == case_id, corrections_t.c.status == "applied")
        .order_by(corrections_t.c.decided_at, corrections_t.c.id)
    )
    for row in rows:
        before, after = row.before or {}, row.after or {}
        for fact in CORRECTED_FACTS:
            if fact in after:
                found[fact] = CorrectedFact(row.id, before.get(fact), after[fact])
    return found


def proposed_text(kind: str, proposed: Mapping[str, Any], script: str | None = None) -> str:
    """What a correction proposes, for listings, with numbers and names masked.

    A yes/no answer (the ``case`` correction's "is this your case? no") says no fact: its
    kind is all there is to show, so the text is empty rather than "(False)".
    """
    value = proposed.get(kind)
    if kind == CorrectionKind.PHONE:
        return mask(str(value)) if value else ""
    if kind == CorrectionKind.WRONG_NUMBER:
        return "a number on file" if "contact_id" in proposed else "the number dialled"
    if value is None or isinstance(value, bool):
        return ""
    question = proposed.get("question")
    if kind == CorrectionKind.CASE or not (question is None or _typed(script, question)):
        return f"({value})"  # an option's value, e.g. (knows_applicant)
    return mask_name(str(value)) if kind == CorrectionKind.CONTACT else str(value)


# -- the work ---------------------------------------------------------------------------


def _apply(
    conn: Connection,
    correction_id: int,
    actor: str,
    now: datetime,
    note: str | None,
    value: str | None,
    as_kind: str | None,
    create_unit: bool,
    parser: PhoneParser,
) -> Decision:
    step = Step.load(conn, correction_id, CorrectionStatus.PENDING, "applied", actor, now, note)
    row = step.row
    kind = CorrectionKind(row.kind)
    if as_kind is not None:
        if kind is not CorrectionKind.CASE or as_kind not in ("unit", "item", "contact"):
            raise CorrectionError(
                f"correction {row.id} is a {kind} correction; only a 'case' correction is "
                "applied as another kind, and only as unit, item or contact"
            )
        kind = CorrectionKind(as_kind)
    if kind is CorrectionKind.CASE:
        raise CorrectionError(
            f"correction {row.id} says the respondent did not recognise the case: check it "
            "with the unit, then apply it as the fact that was wrong, or reject it"
        )
    if kind is CorrectionKind.PHONE:
        before, after = step.apply_phone(value, parser)
    elif kind is CorrectionKind.WRONG_NUMBER:
        before, after = step.mark_wrong(row.proposed.get("contact_id"))
    else:
        fact = _FACT_OF_KIND[kind]
        text = value if value is not None else _proposed_fact(row, kind)
        if text is None and kind is CorrectionKind.CONTACT and as_kind is None:
            # "Not them, but knows them": the number dialled does not reach the case's contact.
            before, after = step.mark_wrong(None)
        elif text is None:
            raise CorrectionError(
                f"correction {row.id} says the {fact.replace('_', ' ')} is wrong but not what "
                "it should be: apply it with a value, or reject it"
            )
        else:
            after = {fact: _fact_text(fact, text)}
            if kind is CorrectionKind.ITEM and row.proposed.get("item_code") is not None:
                after["item_code"] = row.proposed["item_code"]
            case = step.case()
            before = {k: case[k] for k in after}
            step.set_facts(case, after, create_unit)
    step.decide(CorrectionStatus.APPLIED, before, after)
    step.audit("correction.apply", "correction", row.id,
               {"status": "pending", **before}, {"status": "applied", **after})  # fmt: skip
    return Decision(row.id, CorrectionStatus.APPLIED.value, before, after)


# -- helpers ----------------------------------------------------------------------------


def _proposed_fact(row: Any, kind: CorrectionKind) -> str | None:
    """The fact a correction proposes, or None when its answer was an option ("the unit is
    wrong") that does not say what the fact should be."""
    value = row.proposed.get(str(kind))
    question = row.proposed.get("question")
    if value is None or (question is not None and not _typed(row.script, question)):
        return None
    return str(value)


def _typed(script_name: str | None, question: str) -> bool:
    """True when ``question`` of the script takes a typed answer (text or a number)."""
    try:
        script = plugins.get_script(script_name) if script_name else None
    except CallbackError:
        script = None  # the script is no longer installed: a person must read the answer
    if script is None or not script.has(question):
        return False
    return bool(script.question(question).kind in (Kind.TEXT, Kind.PHONE))


def _contact_of(conn: Connection, case_id: int, parser: PhoneParser, typed: str) -> int:
    phone = dialable(parser, typed, "the number on file")
    found = conn.execute(
        sa.select(contacts_t.c.id)
        .where(contacts_t.c.case_id == case_id, contacts_t.c.e164 == phone.e164,
               contacts_t.c.superseded_at.is_(None))
        .order_by(contacts_t.c.position)
    ).scalar()  # fmt: skip
    if found is None:
        raise CorrectionError(f"the case has no current number {mask(phone.e164)}")
    return int(found)


def _fact_text(fact: str, value: str | None) -> str:
    text = (value or "").strip()
    name = fact.replace("_", " ")
    if not text:
        raise CorrectionError(f"the new {name} is empty")
    if len(text) > _LIMITS[fact]:
        raise CorrectionError(f"the new {name} is longer than {_LIMITS[fact]} characters")
    return text
