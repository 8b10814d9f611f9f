"""Units' published consultation hotlines (咨询电话), the frame of the weekly spot checks."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback.db import immediate
from callback.errors import CallbackError, ImportFileError
from callback.models import AuditEntry, Hotline, Unit, table
from callback.phones import PhoneParser
from callback.sources import read_text

hotlines_t, units_t, audit_t = table(Hotline), table(Unit), table(AuditEntry)
#: First cells that mark a header row (compared in lower case).
_HEADER = frozenset(("unit", "单位", "单位名称", "部门", "实施部门"))


class HotlineError(CallbackError):
    """A hotline that cannot be added or changed as asked."""


@dataclass(frozen=True)
class Listed:
    id: int
    unit: str
    e164: str
    extension: str | None
    label: str | None
    active: bool


def _unit_id(conn: Connection, unit: str) -> int:
    found = conn.execute(sa.select(units_t.c.id).where(units_t.c.name == unit)).scalar()
    if found is None:
        raise HotlineError(f"no unit named {unit!r}: import its cases first, or check the name")
    return int(found)


def _number(number: str, area_code: str) -> tuple[str, str | None]:
    """(E.164, extension) of a number as published, or a HotlineError saying why not."""
    phone = PhoneParser(area_code).parse_published(number)
    if phone.e164 is None:
        raise HotlineError(f"{number!r} is not a telephone number of a hotline ({phone.reason})")
    return phone.e164, phone.extension


def _add(
    conn: Connection,
    unit: str,
    number: tuple[str, str | None],
    label: str | None,
    actor: str,
    now: datetime,
) -> bool:
    """Add or reactivate one hotline inside the caller's transaction; False if already active.

    A unit lists a number once: the same number with another extension while it is active
    is an error (deactivate it first); reactivating a number takes the extension given now.
    """
    e164, extension = number
    unit_id = _unit_id(conn, unit)
    row = conn.execute(
        sa.select(hotlines_t).where(hotlines_t.c.unit_id == unit_id, hotlines_t.c.e164 == e164)
    ).first()
    if row is not None and row.active:
        if row.extension == extension:
            return False
        raise HotlineError(
            f"{unit} already lists {e164} as hotline {row.id} with "
            f"{_extension(row.extension)}, not {_extension(extension)}: deactivate hotline "
            f"{row.id} first, then add the number as now published"
        )
    after = {"unit": unit, "e164": e164, "extension": extension, "active": True}
    if row is None:
        hotline_id = conn.execute(
            sa.insert(hotlines_t)
            .values(
                unit_id=unit_id, e164=e164, extension=extension, label=label, active=True,
                created_at=now,
            )
            .returning(hotlines_t.c.id)
        ).scalar_one()  # fmt: skip
        before: dict[str, Any] | None = None  # a creation (SQL NULL)
    else:
        hotline_id = row.id
        conn.execute(
            sa.update(hotlines_t)
            .where(hotlines_t.c.id == row.id)
            .values(active=True, extension=extension)
        )
        before = {"active": False, "extension": row.extension}
    conn.execute(
        sa.insert(audit_t).values(
            at=now, actor=actor, action="hotline.add", entity="hotlines", entity_id=hotline_id,
            before=before, after=after, reason="published consultation hotline",
        )
    )  # fmt: skip
    return True


def _extension(extension: str | None) -> str:
    return f"extension {extension}" if extension else "no extension"


def add(
    engine: Engine,
    unit: str,
    number: str,
    actor: str,
    now: datetime,
    label: str | None = None,
    area_code: str = "0571",
) -> bool:
    """Add a unit's hotline (as typed); False when it is already listed and active. Audited."""
    found = _number(number, area_code)
    with immediate(engine) as conn:
        return _add(conn, unit, found, label, actor, now)


def import_file(
    engine: Engine, path: str | Path, actor: str, now: datetime, area_code: str = "0571"
) -> tuple[int, int]:
    """Add every hotline of a CSV file (unit, number, optional label; a header row is allowed).

    One transaction: a bad row names its line and field, and nothing of the file is stored.
    Returns (added, already listed).
    """
    path = Path(path)
    # Excel in China saves CSV as GBK: decode as the case importer does, never with a traceback.
    text = read_text(path)
    added = present = 0
    with immediate(engine) as conn:
        for line, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            cells = [c.strip() for c in cells]
            if not any(cells) or (line == 1 and cells[0].lower() in _HEADER):
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise ImportFileError(str(path), "expected: unit, number[, label]", row=line)
            label = cells[2] if len(cells) > 2 and cells[2] else None
            try:
                found = _number(cells[1], area_code)
                if _add(conn, cells[0], found, label, actor, now):
                    added += 1
                else:
                    present += 1
            except HotlineError as exc:
                field = "unit" if "no unit" in str(exc) else "number"
                raise ImportFileError(str(path), f"{field}: {exc}", row=line) from None
    return added, present


def deactivate(engine: Engine, hotline_id: int, actor: str, now: datetime, reason: str) -> None:
    """Stop spot-checking a hotline (a number no longer published). Audited; never deleted."""
    with immediate(engine) as conn:
        row = conn.execute(sa.select(hotlines_t).where(hotlines_t.c.id == hotline_id)).first()
        if row is None:
            raise HotlineError(f"no hotline with id {hotline_id}")
        if not row.active:
            raise HotlineError(f"hotline {hotline_id} is already inactive")
        conn.execute(sa.update(hotlines_t).where(hotlines_t.c.id == row.id).values(active=False))
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action="hotline.deactivate", entity="hotlines",
                entity_id=row.id, before={"active": True}, after={"active": False}, reason=reason,
            )
        )  # fmt: skip


def listed(engine: Engine, include_inactive: bool = False) -> list[Listed]:
    """Return the active hotlines (every one with ``include_inactive``), by unit name."""
    query = (
        sa.select(hotlines_t, units_t.c.name.label("unit"))
        .join(units_t, units_t.c.id == hotlines_t.c.unit_id)
        .order_by(units_t.c.name, hotlines_t.c.id)
    )
    if not include_inactive:
        query = query.where(hotlines_t.c.active.is_(True))
    with engine.connect() as conn:
        return [
            Listed(r.id, r.unit, r.e164, r.extension, r.label, r.active)
            for r in conn.execute(query)
        ]
