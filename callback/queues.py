"""Callback queues (回访对象): campaign rules as JSON, scheduling of queue items, queue status.

A queue item's ``due_at`` is when it may next be dialled; it is computed here, by
``callback.decisions.decide``, from the case's numbers, its attempts, its appointment and the
do-not-call list, whenever a campaign starts and after every attempt ends. Claiming and the
attempt lifecycle (the outbox) live in ``callback.claims``, ``callback.attempts`` and
``callback.attempt_outcomes``.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from callback.db import immediate
from callback.decisions import decide
from callback.dispositions import Disposition, retry_outcome
from callback.errors import CallbackError, ConfigError
from callback.models import (
    AttemptState,
    CallAttempt,
    Campaign,
    Contact,
    DoNotCall,
    Hotline,
    QueueItem,
    QueueState,
    Unit,
    Validity,
    table,
)
from callback.rules import (
    Appointment,
    Attempt,
    CallingRules,
    CaseHistory,
    Outcome,
    Slot,
    Window,
)
from callback.window_loader import windows_from_json

items_t, attempts_t, campaigns_t = table(QueueItem), table(CallAttempt), table(Campaign)
contacts_t, hotlines_t, dnc_t, units_t = (
    table(Contact),
    table(Hotline),
    table(DoNotCall),
    table(Unit),
)

#: queue_items has a counter for each of at most this many slots (slot0..slot3_attempts).
MAX_SLOTS = 4
#: A claim not renewed for this long belongs to a vanished worker and is free again.
LEASE = timedelta(minutes=10)

# wait_reason values besides callback.decisions.Reason's (which explain a due_at of NULL).
WAIT_NEW = "new"  # never attempted; due at the first callable instant
WAIT_RETRY = "retry"  # attempted; waits for the retry delay or another slot
WAIT_APPOINTMENT = "appointment"  # the citizen's (or the planned check's) time
WAIT_FINISHED = "finished"

# Items per transaction in refresh: long enough to amortise the history queries, short
# enough that claimers (which skip locked rows) are not kept waiting.
REFRESH_CHUNK = 500
#: The outcome of an attempt whose call the provider would not take (see attempts_not_placed).
NOT_PLACED = "not-placed"

_E164 = re.compile(r"\+[1-9]\d{6,14}")


# -- calling rules as JSON -------------------------------------------------------------------

_RULE_KEYS = frozenset(
    {"timezone", "windows", "slots", "max_attempts_per_case", "max_attempts_per_number",
     "min_gap_minutes", "retry_delay_minutes", "spread_after", "closed_dates"}
)  # fmt: skip


def _minutes(value: timedelta) -> int | float:
    m = value.total_seconds() / 60
    return int(m) if m == int(m) else m


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M") if t.second == 0 else t.strftime("%H:%M:%S")


def rules_to_json(rules: CallingRules) -> dict[str, Any]:
    """Return ``rules`` as the JSON stored in ``campaigns.rules`` (the deadline excluded).

    The deadline lives in its own column, where reports and the campaign list can read it.
    Every setting is written out, so a campaign keeps its rules when the defaults change.
    """
    if len(rules.slots) > MAX_SLOTS:
        raise ConfigError(f"at most {MAX_SLOTS} calling slots, not {len(rules.slots)}")

    def window(w: Window) -> dict[str, Any]:
        out: dict[str, Any] = {"start": _hhmm(w.start), "end": _hhmm(w.end)}
        if w.weekdays != frozenset(range(7)):
            out["weekdays"] = sorted(w.weekdays)
        return out

    return {
        "timezone": rules.timezone,
        "windows": [window(w) for w in rules.windows],
        "slots": [
            {"name": s.name, "start": _hhmm(s.start), "end": _hhmm(s.end)} for s in rules.slots
        ],
        "max_attempts_per_case": rules.max_attempts_per_case,
        "max_attempts_per_number": rules.max_attempts_per_number,
        "min_gap_minutes": _minutes(rules.min_gap),
        "retry_delay_minutes": {str(o): _minutes(d) for o, d in rules.retry_delays.items()},
        "spread_after": sorted(str(o) for o in rules.spread_after),
        "closed_dates": sorted(d.isoformat() for d in rules.closed_dates),
    }


def rules_from_json(data: Mapping[str, Any], deadline: datetime | None = None) -> CallingRules:
    """Build CallingRules from ``campaigns.rules`` and the campaign's deadline.

    Missing settings take the defaults of CallingRules; an unknown key is refused, because a
    misspelt "max_attempts_per_cse" silently ignored is a campaign called too often.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("campaign rules must be a JSON object")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"unknown calling rule settings: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {"deadline": deadline}
    try:
        if "timezone" in data:
            kwargs["timezone"] = str(data["timezone"])
        if "windows" in data:
            kwargs["windows"] = windows_from_json(data["windows"])
        if "slots" in data:
            kwargs["slots"] = tuple(
                Slot(str(s["name"]), _time(s["start"]), _time(s["end"])) for s in data["slots"]
            )
        for key in ("max_attempts_per_case", "max_attempts_per_number"):
            if key in data:
                kwargs[key] = _int(data[key], key)
        if "min_gap_minutes" in data:
            kwargs["min_gap"] = timedelta(minutes=float(data["min_gap_minutes"]))
        if "retry_delay_minutes" in data:
            kwargs["retry_delays"] = {
                Outcome(k): timedelta(minutes=float(v))
                for k, v in data["retry_delay_minutes"].items()
            }
        if "spread_after" in data:
            kwargs["spread_after"] = frozenset(Outcome(o) for o in data["spread_after"])
        if "closed_dates" in data:
            kwargs["closed_dates"] = frozenset(date.fromisoformat(d) for d in data["closed_dates"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"invalid calling rules: {exc!r}") from None
    rules = CallingRules(**kwargs)
    if len(rules.slots) > MAX_SLOTS:
        raise ConfigError(f"at most {MAX_SLOTS} calling slots, not {len(rules.slots)}")
    return rules


def _time(value: Any) -> time:
    if not isinstance(value, str):
        raise ValueError(f"times are written HH:MM, not {value!r}")
    return time.fromisoformat(value)


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, not {value!r}")
    return value


@functools.lru_cache(maxsize=256)
def _cached_rules(text: str, deadline: datetime | None) -> CallingRules:
    return rules_from_json(json.loads(text), deadline)


def campaign_rules(rules: Mapping[str, Any], deadline: datetime | None) -> CallingRules:
    """Return the CallingRules of a campaign row, parsed once per distinct JSON and deadline.

    Claims read the rules of every campaign they might serve on each call; parsing the JSON
    (and checking the time zone) each time would be most of a claim's Python cost.
    """
    return _cached_rules(json.dumps(rules, sort_keys=True), deadline)


def slot_index(rules: CallingRules, at: datetime) -> int | None:
    """Return the position of the slot ``at`` falls in (which slotN_attempts counts it)."""
    local = at.astimezone(rules.zone).time()
    return next((i for i, s in enumerate(rules.slots) if s.contains(local)), None)


# -- histories and scheduling ----------------------------------------------------------------


@dataclass(frozen=True)
class ItemHistory:
    """A queue item's CaseHistory, and which contact each of its numbers is."""

    history: CaseHistory
    contact_ids: Mapping[str, int] = field(default_factory=dict)
    #: AAPOR codes of its resolved attempts (ended or unknown), oldest first.
    codes: tuple[str, ...] = ()
    #: Its attempts still pending or placed (at most one, unless something went wrong).
    outstanding: tuple[int, ...] = ()


def _attempt_of(row: Row[Any]) -> Attempt | None:
    """The rules' view of one attempt row; None for a number the rules would refuse."""
    if not _E164.fullmatch(row.number or ""):
        return None
    if row.state in (AttemptState.PENDING, AttemptState.PLACED):
        # Not heard back yet: the case must not be dialled again until it is.
        return Attempt(row.number, row.placed_at or row.created_at, Outcome.PENDING)
    code = row.disposition or Disposition.TECHNICAL
    # A call rejected before it was placed has no placed_at; its outcome (a dead number, a
    # provider failure) still counts, from when we heard it.
    at = row.placed_at or row.ended_at or row.created_at
    return Attempt(row.number, at, retry_outcome(code))


# Built once: claims and attempts run these for every call, and building a statement costs
# more Python time than SQLite takes to run it.
_blocked = sa.exists().where(dnc_t.c.e164 == contacts_t.c.e164).label("blocked")
_CONTACTS = (
    sa.select(contacts_t.c.case_id, contacts_t.c.id, contacts_t.c.e164, _blocked)
    .where(
        contacts_t.c.case_id.in_(sa.bindparam("case_ids", expanding=True)),
        contacts_t.c.validity == Validity.VALID,
        contacts_t.c.superseded_at.is_(None),
        contacts_t.c.e164.is_not(None),
    )
    .order_by(contacts_t.c.case_id, contacts_t.c.position, contacts_t.c.id)
)
_HOTLINES = sa.select(
    hotlines_t.c.id,
    hotlines_t.c.e164,
    sa.exists().where(dnc_t.c.e164 == hotlines_t.c.e164).label("blocked"),
).where(
    hotlines_t.c.id.in_(sa.bindparam("hotline_ids", expanding=True)),
    hotlines_t.c.active.is_(True),
)
_ATTEMPTS = (
    sa.select(
        attempts_t.c.id,
        attempts_t.c.queue_item_id,
        attempts_t.c.number,
        attempts_t.c.state,
        attempts_t.c.created_at,
        attempts_t.c.placed_at,
        attempts_t.c.ended_at,
        attempts_t.c.disposition,
        attempts_t.c.outcome,
    )
    .where(attempts_t.c.queue_item_id.in_(sa.bindparam("item_ids", expanding=True)))
    .order_by(attempts_t.c.id)
)


def load_histories(
    conn: Connection, items: Sequence[Row[Any]], numbers: bool = True
) -> dict[int, ItemHistory]:
    """Build the history of each queue item row (columns of queue_items) in a few queries.

    With ``numbers`` False the histories have attempts only (no numbers, no do-not-call).
    """
    case_ids = sorted({r.case_id for r in items if r.case_id is not None} if numbers else ())
    hotline_ids = sorted(
        {r.hotline_id for r in items if r.hotline_id is not None} if numbers else ()
    )
    by_case: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    blocked: set[str] = set()
    if case_ids:
        for case_id, contact_id, e164, is_blocked in conn.execute(
            _CONTACTS, {"case_ids": case_ids}
        ):
            if _E164.fullmatch(e164):
                by_case[case_id].append((e164, contact_id))
                if is_blocked:
                    blocked.add(e164)
    hotlines: dict[int, str] = {}
    if hotline_ids:
        for hotline_id, e164, is_blocked in conn.execute(_HOTLINES, {"hotline_ids": hotline_ids}):
            if _E164.fullmatch(e164):
                hotlines[hotline_id] = e164
                if is_blocked:
                    blocked.add(e164)
    attempts: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(_ATTEMPTS, {"item_ids": [r.id for r in items]}):
        # A call the provider never took (rate limit, outage) rang no telephone: it stays on
        # record but is no attempt for the rules, the limits or the case's disposition.
        if row.outcome != NOT_PLACED:
            attempts[row.queue_item_id].append(row)

    out: dict[int, ItemHistory] = {}
    for item in items:
        own: list[tuple[str, int | None]]
        if item.hotline_id is not None:
            own = [(hotlines[item.hotline_id], None)] if item.hotline_id in hotlines else []
        else:
            own = by_case.get(item.case_id, [])
        past = attempts.get(item.id, [])
        appointment = None
        if item.appointment_at is not None:
            number = item.appointment_number
            appointment = Appointment(
                item.appointment_at,
                item.appointment_agent,
                number if number and _E164.fullmatch(number) else None,
            )
        history = CaseHistory(
            numbers=tuple(n for n, _ in own),
            attempts=tuple(a for a in map(_attempt_of, past) if a is not None),
            appointment=appointment,
            finished=item.state == QueueState.FINISHED,
            do_not_call=frozenset(n for n, _ in own if n in blocked),
        )
        codes = tuple(
            r.disposition or Disposition.TECHNICAL
            for r in past
            if r.state in (AttemptState.ENDED, AttemptState.UNKNOWN)
        )
        out[item.id] = ItemHistory(
            history,
            {n: c for n, c in own if c is not None},
            codes,
            tuple(r.id for r in past if r.state in (AttemptState.PENDING, AttemptState.PLACED)),
        )
    return out


def schedule(
    rules: CallingRules, history: CaseHistory, now: datetime
) -> tuple[datetime | None, str]:
    """Return an item's ``(due_at, wait_reason)`` from the rules' decision."""
    decision = decide(rules, history, now)
    if decision.at is None:
        return None, str(decision.reason)
    if decision.appointment:
        return decision.at, WAIT_APPOINTMENT
    return decision.at, WAIT_RETRY if history.attempts else WAIT_NEW


def load_campaign(conn: Connection, campaign_id: int) -> Row[Any]:
    row = conn.execute(sa.select(campaigns_t).where(campaigns_t.c.id == campaign_id)).first()
    if row is None:
        raise CallbackError(f"no campaign with id {campaign_id}")
    return row


def refresh(
    engine: Engine, campaign_id: int, now: datetime, item_ids: Iterable[int] | None = None
) -> int:
    """Recompute ``due_at`` and ``wait_reason`` of a campaign's open items; return how many
    changed.

    Run it when a campaign starts (its items come from sampling with due_at NULL) and
    whenever something outside an attempt changes what is due: a do-not-call entry, a
    corrected number, new rules. Finished items are left alone (due_at NULL). Items are
    locked chunk by chunk while their histories are read, so a refresh never overwrites
    what a concurrent ``finish_attempt`` has just decided.
    """
    with engine.connect() as conn:
        campaign = load_campaign(conn, campaign_id)
        rules = campaign_rules(campaign.rules, campaign.deadline)
        query = sa.select(items_t.c.id).where(
            items_t.c.campaign_id == campaign_id, items_t.c.state == QueueState.OPEN
        )
        if item_ids is not None:
            query = query.where(items_t.c.id.in_(list(item_ids)))
        ids = list(conn.execute(query.order_by(items_t.c.id)).scalars())
    changed = 0
    for start in range(0, len(ids), REFRESH_CHUNK):
        chunk = ids[start : start + REFRESH_CHUNK]
        with immediate(engine) as conn:
            changed += reschedule(conn, rules, chunk, now)
    return changed


def reschedule(conn: Connection, rules: CallingRules, ids: Sequence[int], now: datetime) -> int:
    """Recompute the schedule of open items ``ids`` inside the caller's transaction."""
    items = conn.execute(
        sa.select(items_t)
        .where(items_t.c.id.in_(ids), items_t.c.state == QueueState.OPEN)
        .order_by(items_t.c.id)
        .with_for_update()
    ).all()
    histories = load_histories(conn, items)
    updates = []
    for item in items:
        due_at, reason = schedule(rules, histories[item.id].history, now)
        if (due_at, reason) != (item.due_at, item.wait_reason):
            updates.append({"b_id": item.id, "due_at": due_at, "wait_reason": reason})
    if updates:
        conn.execute(
            items_t.update().where(items_t.c.id == sa.bindparam("b_id")),
            updates,
        )
    return len(updates)
