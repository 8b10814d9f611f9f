"""Problems citizens raised in calls (问题 / 意见建议): the unit's follow-up (整改) or
explanation, listed with names and numbers masked, and every update audited."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.db import immediate
from callback.errors import CallbackError
from callback.models import (
    AuditEntry,
    Campaign,
    Case,
    ProblemReport,
    ProblemStatus,
    Unit,
    table,
)
from callback.phones import mask

problems_t, units_t, cases_t = table(ProblemReport), table(Unit), table(Case)
campaigns_t, audit_t = table(Campaign), table(AuditEntry)

#: Problems the unit still has to act on; only these can be overdue.
OPEN_STATUSES = (ProblemStatus.OPEN.value, ProblemStatus.FIXING.value)
#: Closing a problem needs a resolution: what was fixed, or what was explained.
CLOSED_STATUSES = (ProblemStatus.FIXED.value, ProblemStatus.EXPLAINED.value)

# Digits as citizens dictate them and agents or speech recognition type them: ASCII,
# full-width, and Chinese numerals (幺 is how 1 is read out in a telephone number).
_DIGITS = "0-9０-９〇零一二三四五六七八九幺"
_TO_ASCII = str.maketrans("０１２３４５６７８９〇零一二三四五六七八九幺", "0123456789001234567891")
# Seven or more digits, possibly broken up by spaces, dashes, brackets or dots: a landline
# without its area code is seven or eight digits; a citizen's ID number is caught as well.
_NUMBER_LIKE = re.compile(rf"\+?[{_DIGITS}](?:[\s\-－—–()（）.·]*[{_DIGITS}]){{6,}}")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
_NON_DIGIT = re.compile(r"[^0-9+]")


class ProblemError(CallbackError):
    """A problem that cannot be found or updated as asked."""


def mask_name(name: str | None) -> str:
    """Mask a person's name for listings that do not need it: 张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return ""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if len(name) > 1 else "*"


def mask_numbers(text: str | None) -> str:
    """Mask every telephone-number-like run of digits in free text (citizens dictate them)."""
    if not text:
        return ""

    def masked(match: re.Match[str]) -> str:
        found = match.group()
        if _DATE.fullmatch(found):
            return found  # a date, not a number: 2026-06-10
        return mask(_NON_DIGIT.sub("", found.translate(_TO_ASCII)))

    return _NUMBER_LIKE.sub(masked, text)


def mask_text(text: str | None, names: Iterable[str | None] = ()) -> str:
    """Mask numbers in ``text`` and every occurrence of the given names (the case's people)."""
    result = mask_numbers(text)
    # Longest first, so that 张三丰 is not left as 张*丰 by a shorter 张三.
    for name in sorted({n.strip() for n in names if n and len(n.strip()) > 1}, key=len,
                       reverse=True):  # fmt: skip
        result = result.replace(name, mask_name(name))
    return result


@dataclass(frozen=True)
class ProblemView:
    """One problem as listings show it: the citizen's names and numbers masked."""

    id: int
    unit: str
    case_no: str | None
    applicant: str
    category: str
    text: str
    status: str
    owner: str | None
    due_date: date | None
    overdue: bool
    resolution: str
    campaign: str | None
    attempt_id: int | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "unit": self.unit, "case_no": self.case_no,
            "applicant": self.applicant, "category": self.category, "text": self.text,
            "status": self.status, "owner": self.owner,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "overdue": self.overdue, "resolution": self.resolution, "campaign": self.campaign,
            "attempt_id": self.attempt_id, "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }  # fmt: skip


def _query() -> sa.Select[Any]:
    return (
        sa.select(
            problems_t,
            units_t.c.name.label("unit_name"),
            cases_t.c.case_no,
            cases_t.c.applicant_name,
            cases_t.c.contact_name,
            campaigns_t.c.name.label("campaign_name"),
        )
        .select_from(problems_t)
        .join(units_t, units_t.c.id == problems_t.c.unit_id)
        .outerjoin(cases_t, cases_t.c.id == problems_t.c.case_id)
        .outerjoin(campaigns_t, campaigns_t.c.id == problems_t.c.campaign_id)
    )


def _view(row: Any, today: date) -> ProblemView:
    names = (row.applicant_name, row.contact_name)
    overdue = row.due_date is not None and row.due_date < today and row.status in OPEN_STATUSES
    return ProblemView(
        id=row.id, unit=row.unit_name, case_no=row.case_no,
        applicant=mask_name(row.applicant_name or row.contact_name), category=row.category,
        text=mask_text(row.text, names), status=row.status, owner=row.owner,
        due_date=row.due_date, overdue=overdue, resolution=mask_text(row.resolution, names),
        campaign=row.campaign_name, attempt_id=row.attempt_id, created_at=row.created_at,
        updated_at=row.updated_at,
    )  # fmt: skip


def list_problems(
    engine: Engine,
    today: date,
    *,
    unit: str | None = None,
    statuses: Sequence[str] = (),
    overdue: bool = False,
    case_no: str | None = None,
) -> list[ProblemView]:
    """Problems, oldest first, filtered by unit name, statuses, overdue (a due date before
    ``today`` while open or being fixed) and case; names and numbers masked."""
    for status in statuses:
        _status(status)
    query = _query()
    if unit is not None:
        query = query.where(units_t.c.name == unit)
    if statuses:
        query = query.where(problems_t.c.status.in_(list(statuses)))
    if overdue:
        query = query.where(problems_t.c.due_date < today, problems_t.c.status.in_(OPEN_STATUSES))
    if case_no is not None:
        query = query.where(cases_t.c.case_no == case_no)
    query = query.order_by(problems_t.c.created_at, problems_t.c.id)
    with engine.connect() as conn:
        if (
            unit is not None
            and conn.execute(sa.select(units_t.c.id).where(units_t.c.name == unit)).first() is None
        ):
            raise ProblemError(f"no unit named {unit!r}")
        return [_view(row, today) for row in conn.execute(query)]


def update_problem(
    engine: Engine,
    problem_id: int,
    actor: str,
    now: datetime,
    today: date,
    *,
    status: str | None = None,
    owner: str | None = None,
    due_date: date | None = None,
    resolution: str | None = None,
    note: str | None = None,
) -> ProblemView:
    """Change a problem's status, owner, due date or resolution, and audit the change.

    Marking it fixed or explained needs a resolution (given now or earlier). Values equal
    to the current ones change nothing and write nothing.
    """
    if status is None and owner is None and due_date is None and resolution is None:
        raise ProblemError("nothing to change: give a status, owner, due date or resolution")
    if status is not None:
        _status(status)
    wanted: dict[str, Any] = {
        k: v for k, v in (("status", status), ("owner", owner), ("due_date", due_date),
                          ("resolution", resolution)) if v is not None
    }  # fmt: skip
    for key in ("owner", "resolution"):
        if key in wanted:
            wanted[key] = wanted[key].strip()
            if not wanted[key]:
                raise ProblemError(f"the {key} is empty")
    with immediate(engine) as conn:
        row = conn.execute(sa.select(problems_t).where(problems_t.c.id == problem_id)).first()
        if row is None:
            raise ProblemError(f"no problem {problem_id}")
        current = row._mapping
        changed = {k: v for k, v in wanted.items() if current[k] != v}
        closing = changed.get("status", current["status"]) in CLOSED_STATUSES
        if closing and not changed.get("resolution", current["resolution"]):
            raise ProblemError(
                f"problem {problem_id}: say what was fixed or explained (a resolution) before "
                "closing it"
            )
        if changed:
            conn.execute(
                sa.update(problems_t)
                .where(problems_t.c.id == problem_id)
                .values(**changed, updated_at=now)
            )
            conn.execute(
                sa.insert(audit_t).values(
                    at=now, actor=actor, action="problem.update", entity="problem",
                    entity_id=problem_id, case_id=row.case_id,
                    before={k: _jsonable(current[k]) for k in changed},
                    after={k: _jsonable(v) for k, v in changed.items()},
                    reason=note or "problem follow-up", attempt_id=row.attempt_id,
                )
            )  # fmt: skip
        found = conn.execute(_query().where(problems_t.c.id == problem_id)).one()
    return _view(found, today)


def _status(status: str) -> str:
    try:
        return ProblemStatus(status).value
    except ValueError:
        known = ", ".join(s.value for s in ProblemStatus)
        raise ProblemError(f"no problem status {status!r} (statuses: {known})") from None


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
