"""Corrections of the frame (信息更正): proposed in calls or by the office, reviewed, applied,
rejected or reverted; every step is written to the audit log.

A correction fixes a fact (a number, the contact person, the unit, the item) and nothing
else: no function here looks at what a citizen answered about realisation or satisfaction.
Numbers are never deleted: a replaced number is marked ``wrong_number``, and reverting a new
number marks it superseded.

``before`` and ``after`` of an applied correction hold what it changed: case facts under
the importer's names (``contact_name``, ``unit``, ``item_name``, ``item_code``), the
verification of existing numbers under ``contacts``, and a number it added under ``added``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback import plugins
from callback.db import immediate
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
    QueueItem,
    Unit,
    UnitKind,
    Verification,
    table,
)
from callback.phones import Phone, PhoneParser, mask
from callback.problems import mask_name
from callback.survey_format import CorrectionKind, Kind

corrections_t, cases_t, contacts_t, units_t = (
    table(Correction), table(Case), table(Contact), table(Unit)
)  # fmt: skip
audit_t, attempts_t, campaigns_t, items_t = (
    table(AuditEntry), table(CallAttempt), table(Campaign), table(QueueItem)
)  # fmt: skip

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


class CorrectionError(CallbackError):
    """A correction that cannot be proposed, applied, rejected or reverted as asked."""


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
            phone = _dialable(parser, value, "the new number")
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
        step = _Step.load(conn, correction_id, CorrectionStatus.PENDING, "rejected", actor, now,
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
        step = _Step.load(conn, correction_id, CorrectionStatus.APPLIED, "reverted", actor, now,
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
    step = _Step.load(conn, correction_id, CorrectionStatus.PENDING, "applied", actor, now, note)
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


@dataclass
class _Step:
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
    ) -> _Step:
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
        self.conn.execute(
            sa.insert(audit_t).values(
                at=self.now, actor=self.actor, action=action, entity=entity, entity_id=entity_id,
                case_id=self.row.case_id if case else None, before=before, after=after,
                reason=self.reason, attempt_id=self.row.attempt_id,
            )
        )  # fmt: skip

    def decide(self, status: CorrectionStatus, before: Any, after: Any) -> None:
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
        row, proposed = self.row, self.row.proposed
        typed = value if value is not None else proposed.get("raw", proposed.get("phone"))
        phone = _dialable(parser, None if typed is None else str(typed), f"correction {row.id}")
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


def _dialable(parser: PhoneParser, typed: str | None, what: str) -> Phone:
    phones = parser.parse_cell(typed) if typed else []
    if len(phones) != 1 or phones[0].e164 is None:
        why = phones[0].reason if len(phones) == 1 else "not exactly one number"
        raise CorrectionError(
            f"{what}: {mask(typed) or 'nothing'} is not a telephone number that can be dialled "
            f"({why})"
        )
    return phones[0]


def _contact_of(conn: Connection, case_id: int, parser: PhoneParser, typed: str) -> int:
    phone = _dialable(parser, typed, "the number on file")
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


def _without_id(contact: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in contact.items() if k != "id"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
