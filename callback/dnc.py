"""The do-not-call list: numbers callback must never dial, whoever asks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.db import immediate
from callback.errors import CallbackError, ImportFileError
from callback.models import (
    AuditEntry,
    Contact,
    DoNotCall,
    Hotline,
    QueueItem,
    QueueState,
    table,
    utcnow,
)
from callback.phones import PhoneParser, mask
from callback.queues import refresh
from callback.sources import read_text

SOURCES = ("citizen", "unit", "office", "import")
dnc_t = table(DoNotCall)
audit_t = table(AuditEntry)
items_t, contacts_t, hotlines_t = table(QueueItem), table(Contact), table(Hotline)


class DoNotCallError(CallbackError):
    """A number that cannot be put on the list (it is not a telephone number)."""


@dataclass(frozen=True)
class Entry:
    e164: str
    reason: str | None
    source: str
    added_by: str
    added_at: datetime


def normalise(number: str, area_code: str = "0571") -> str:
    """The E.164 form of one number as a person types it, or a clear error."""
    phones = PhoneParser(area_code).parse_cell(number)
    if len(phones) != 1 or phones[0].e164 is None:
        why = phones[0].reason if len(phones) == 1 else "not exactly one number"
        raise DoNotCallError(f"{number!r} is not a telephone number callback can block ({why})")
    return phones[0].e164


def add(
    engine: Engine,
    numbers: Iterable[str],
    actor: str,
    reason: str | None = None,
    source: str = "office",
    area_code: str = "0571",
    attempt_id: int | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Add numbers (as typed) to the list; return (added, already there). Audited."""
    if source not in SOURCES:
        raise DoNotCallError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    now = now or utcnow()
    wanted = list(dict.fromkeys(normalise(n, area_code) for n in numbers))
    with immediate(engine) as conn:
        present = set(
            conn.execute(sa.select(dnc_t.c.e164).where(dnc_t.c.e164.in_(wanted))).scalars()
        )
        new = [n for n in wanted if n not in present]
        for number in new:
            entry_id = conn.execute(
                sa.insert(dnc_t)
                .values(e164=number, reason=reason, source=source, added_by=actor, added_at=now,
                        attempt_id=attempt_id)
                .returning(dnc_t.c.id)
            ).scalar_one()  # fmt: skip
            conn.execute(
                sa.insert(audit_t).values(
                    at=now, actor=actor, action="dnc.add", entity="do_not_call",
                    entity_id=entry_id, after={"e164": number, "source": source},
                    reason=reason or "added to the do-not-call list", attempt_id=attempt_id,
                )
            )  # fmt: skip
    reschedule_numbers(engine, new, now)
    return len(new), len(present)


def remove(
    engine: Engine,
    numbers: Iterable[str],
    actor: str,
    reason: str,
    citizen_asked: bool = False,
    area_code: str = "0571",
    now: datetime | None = None,
) -> tuple[int, list[str]]:
    """Take numbers (as typed) off the list; return (removed, those not on it). Audited, with
    the entry as it was, so the block and its lifting both stay on record.

    A block the citizen asked for (source ``citizen``) is lifted only when the citizen has
    asked to be called again (``citizen_asked``): a typo in the office is not their consent.
    Nothing is lifted unless every number may be.
    """
    if not reason.strip():
        raise DoNotCallError("say why the numbers come off the list (--reason)")
    now = now or utcnow()
    wanted = list(dict.fromkeys(normalise(n, area_code) for n in numbers))
    with immediate(engine) as conn:
        found = {
            row.e164: row for row in conn.execute(sa.select(dnc_t).where(dnc_t.c.e164.in_(wanted)))
        }
        theirs = [n for n in wanted if n in found and found[n].source == "citizen"]
        if theirs and not citizen_asked:
            raise DoNotCallError(
                f"{', '.join(mask(n) for n in theirs)}: the citizen asked not to be called; "
                "only they can lift it (--citizen-asked, when they have asked to be called again)"
            )
        for number in wanted:
            row = found.get(number)
            if row is None:
                continue
            conn.execute(sa.delete(dnc_t).where(dnc_t.c.id == row.id))
            conn.execute(
                sa.insert(audit_t).values(
                    at=now, actor=actor, action="dnc.remove", entity="do_not_call",
                    entity_id=row.id, reason=reason,
                    before={"e164": row.e164, "source": row.source, "reason": row.reason,
                            "added_by": row.added_by, "added_at": row.added_at.isoformat(),
                            "attempt_id": row.attempt_id},
                )
            )  # fmt: skip
    reschedule_numbers(engine, list(found), now)
    return len(found), [n for n in wanted if n not in found]


def reschedule_numbers(engine: Engine, numbers: list[str], now: datetime) -> int:
    """Work out again when the open queue items that call one of ``numbers`` are due, so that
    the queues show a block (or its lifting) at once; return how many items changed.

    Only for the queues' view: a blocked number is refused when dialled whatever they show.
    """
    if not numbers:
        return 0
    q = items_t.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(q.campaign_id, q.id)
            .where(
                q.state == QueueState.OPEN.value,
                sa.or_(
                    q.case_id.in_(
                        sa.select(contacts_t.c.case_id).where(contacts_t.c.e164.in_(numbers))
                    ),
                    q.hotline_id.in_(
                        sa.select(hotlines_t.c.id).where(hotlines_t.c.e164.in_(numbers))
                    ),
                ),
            )
            .order_by(q.campaign_id, q.id)
        ).all()
    by_campaign: dict[int, list[int]] = {}
    for campaign_id, item_id in rows:
        by_campaign.setdefault(campaign_id, []).append(item_id)
    return sum(refresh(engine, c, now, ids) for c, ids in by_campaign.items())


def import_file(
    engine: Engine, path: str | Path, actor: str, source: str = "import", area_code: str = "0571"
) -> tuple[int, int]:
    """Add every number of a file: one per line, or a CSV whose first column is the number
    and whose optional second column is the reason. Any bad line stops the whole file."""
    path = Path(path)
    text = read_text(path)
    rows: list[tuple[str, str | None]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for number, cells in enumerate(reader, start=1):
            if not cells or not cells[0].strip() or cells[0].strip() in ("number", "号码", "电话"):
                continue
            try:
                e164 = normalise(cells[0], area_code)
            except DoNotCallError as exc:
                raise ImportFileError(str(path), str(exc), row=number) from None
            rows.append((e164, cells[1].strip() if len(cells) > 1 and cells[1].strip() else None))
    except csv.Error as exc:
        raise ImportFileError(str(path), f"not a CSV file: {exc}", row=reader.line_num) from None
    added = present = 0
    for reason in dict.fromkeys(r for _, r in rows):
        numbers = [e164 for e164, r in rows if r == reason]
        a, p = add(engine, numbers, actor, reason, source, area_code)
        added, present = added + a, present + p
    return added, present


def entries(engine: Engine) -> list[Entry]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dnc_t).order_by(dnc_t.c.added_at, dnc_t.c.id)).all()
    return [Entry(r.e164, r.reason, r.source, r.added_by, r.added_at) for r in rows]


def is_blocked(engine: Engine, e164: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(sa.select(dnc_t.c.id).where(dnc_t.c.e164 == e164)).first()
    return found is not None


def shown(entry: Entry, full: bool = False) -> str:
    return entry.e164 if full else mask(entry.e164)
