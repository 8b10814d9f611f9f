"""Claims: who calls which queue item next (the outbox of attempts is callback.attempts).

A claim is a lease on one queue item (``held_by``, ``held_at``), given in the order the
issue sets: a case the worker already holds, due appointments, priority, fewest attempts in
the current time slot, oldest last attempt. An expired lease is anybody's again.

Concurrency: on PostgreSQL a claim takes its row with ``SELECT ... FOR UPDATE SKIP LOCKED``
in one statement that is its own transaction (autocommit), and every other write locks its
item row first (then its attempt row), so two writers never deadlock; on SQLite every write,
the claim too, is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql.elements import ColumnElement

from callback.db import immediate, is_sqlite
from callback.decisions import is_callable
from callback.errors import CallbackError
from callback.models import (
    Agent,
    CampaignStatus,
    QueueState,
    UTCDateTime,
    agent_units,
    table,
)
from callback.queues import (
    LEASE,
    campaign_rules,
    campaigns_t,
    items_t,
    slot_index,
)
from callback.rules import CallingRules

#: An appointment booked with one agent waits this long for them before anyone may take it.
APPOINTMENT_RESERVE = timedelta(minutes=30)

q = items_t.c


class ClaimError(CallbackError):
    """An attempt cannot be started on a claimed item; the message says why."""


class ClaimLost(ClaimError):
    """The worker no longer holds the item (its lease expired and someone else took it)."""


class NotCallable(ClaimError):
    """The campaign may not call now: closed, outside its windows, not a working day, late."""


class AttemptInProgress(ClaimError):
    """The item already has an attempt that is pending or placed."""


class OnDoNotCallList(ClaimError):
    """The number is on the do-not-call list."""


class NumberNotUsable(ClaimError):
    """The number is not one the rules allow for this case (unknown, dead, tried enough)."""


class NotDue(ClaimError):
    """The rules say the case is not due now (attempt limit, minimum gap, appointment)."""


@dataclass(frozen=True)
class Scope:
    """Which items a worker may claim; None means no limit, an empty set means nothing.

    ``units``: the units an agent works for (agent_units). ``campaigns``: campaign ids.
    ``dialers``: dialer names (the automated dispatcher claims only its dialers' campaigns).
    ``handed``: items handed to a person (``QueueItem.handed_to``). False leaves them out,
    so a dialer never takes a tester's work back; True (an agent's claim) takes them from
    every campaign in scope whatever its dialer, besides the items ``dialers`` allows.
    """

    units: frozenset[int] | None = None
    campaigns: frozenset[int] | None = None
    dialers: frozenset[str] | None = None
    handed: bool = False

    def __post_init__(self) -> None:
        for name in ("units", "campaigns", "dialers"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, frozenset(value))


EVERYTHING = Scope()


def agent_scope(engine: Engine, login: str, campaigns: Iterable[int] | None = None) -> Scope:
    """Return the scope of an active agent: the units they work for (agent_units)."""
    agents_t = table(Agent)
    with engine.connect() as conn:
        agent = conn.execute(
            sa.select(agents_t.c.id, agents_t.c.active).where(agents_t.c.login == login)
        ).first()
        if agent is None or not agent.active:
            raise CallbackError(f"no active agent with login {login!r}")
        units = conn.execute(
            sa.select(agent_units.c.unit_id).where(agent_units.c.agent_id == agent.id)
        ).scalars()
        return Scope(
            units=frozenset(units),
            campaigns=None if campaigns is None else frozenset(campaigns),
            handed=True,
        )


@dataclass(frozen=True)
class Claim:
    """A worker's lease on one queue item."""

    item_id: int
    campaign_id: int
    unit_id: int
    case_id: int | None
    hotline_id: int | None
    worker: str
    held_at: datetime
    priority: int
    attempts: int
    #: True when it was claimed as a due appointment.
    appointment: bool
    appointment_at: datetime | None
    appointment_number: str | None


@dataclass(frozen=True)
class _Callable:
    id: int
    rules: CallingRules
    slot: int | None
    #: Only its items handed to a person are in scope (an agent's claim on a campaign of a
    #: dialer outside ``Scope.dialers``).
    handed_only: bool = False


_CAMPAIGNS = sa.select(
    campaigns_t.c.id, campaigns_t.c.rules, campaigns_t.c.deadline, campaigns_t.c.dialer
).where(campaigns_t.c.status == CampaignStatus.SAMPLED)


#: How long a process trusts its list of sampled campaigns. A claim made from a stale list
#: is safe: begin_attempt re-reads the campaign and refuses (and releases) if it closed.
CAMPAIGNS_TTL = 5.0


@dataclass(frozen=True)
class _Sampled:
    """A sampled campaign as claims need it: its rules parsed once per read of the list."""

    id: int
    dialer: str
    rules: CallingRules


_campaign_rows: dict[str, tuple[float, list[_Sampled]]] = {}
_campaign_rows_lock = threading.Lock()


def _sampled_campaigns(conn: Connection) -> list[_Sampled]:
    key = conn.engine.url.render_as_string(hide_password=False)
    with _campaign_rows_lock:
        cached = _campaign_rows.get(key)
    if cached is not None and time.monotonic() - cached[0] < CAMPAIGNS_TTL:
        return cached[1]
    campaigns = [
        _Sampled(row.id, row.dialer, campaign_rules(row.rules, row.deadline))
        for row in conn.execute(_CAMPAIGNS)
    ]
    with _campaign_rows_lock:
        _campaign_rows[key] = (time.monotonic(), campaigns)
    return campaigns


def forget_campaigns() -> None:
    """Drop the cached campaign list (a campaign was sampled or closed in this process)."""
    with _campaign_rows_lock:
        _campaign_rows.clear()


def _callable_campaigns(conn: Connection, scope: Scope, now: datetime) -> list[_Callable]:
    out = []
    for campaign in _sampled_campaigns(conn):
        if scope.campaigns is not None and campaign.id not in scope.campaigns:
            continue
        handed_only = scope.dialers is not None and campaign.dialer not in scope.dialers
        if handed_only and not scope.handed:
            continue
        rules = campaign.rules
        if is_callable(rules, now):
            out.append(_Callable(campaign.id, rules, slot_index(rules, now), handed_only))
    return out


# Which slot counter orders the claim: one slot for every campaign (the usual case), no slot
# at all, or a slot per campaign id when campaigns' rules disagree.
_SlotSpec = int | None | tuple[tuple[int, int | None], ...]


def _slot_spec(campaigns: Sequence[_Callable]) -> _SlotSpec:
    slots = {c.slot for c in campaigns}
    if len(slots) == 1:
        return slots.pop()
    return tuple(sorted((c.id, c.slot) for c in campaigns))


def _slot_key(spec: _SlotSpec, q: Any) -> ColumnElement[int]:
    columns = [q.slot0_attempts, q.slot1_attempts, q.slot2_attempts, q.slot3_attempts]
    if spec is None:
        return sa.literal(0)
    if isinstance(spec, int):
        # A plain column, so that an index can give the claim order without a sort.
        return columns[spec]
    return sa.case(
        *((q.campaign_id == cid, columns[slot]) for cid, slot in spec if slot is not None),
        else_=0,
    )


# What a Claim needs of the item claimed.
_CLAIMED = (
    q.id, q.campaign_id, q.unit_id, q.case_id, q.hotline_id, q.priority, q.attempts,
    q.appointment_at, q.appointment_number,
)  # fmt: skip


# Which items of the campaigns in scope a claim may take, by hand-off (QueueItem.handed_to):
# "dialer" only those not handed to a person, "any" all, "mixed" all of ``campaign_ids`` and
# the handed ones of ``handed_ids``.
_Handed = Literal["dialer", "any", "mixed"]


@functools.lru_cache(maxsize=64)
def _claim_statement(spec: _SlotSpec, units: bool, handed: _Handed = "dialer") -> sa.Update:
    """The claim as one statement: three candidates, the best of them taken.

    Each candidate is the first row of a query that can walk an index in claim order: items
    held (by this worker, or expired), due appointments, and all others. One query ranking
    "mine" and "appointment" first would have to sort every due row instead. On PostgreSQL
    each candidate is locked with SKIP LOCKED, so concurrent claims pass each other by.
    """
    # A short alias keeps the statement under psycopg's 4 KiB cache limit for parsed queries.
    table = items_t.alias("i")
    c = table.c
    slot = _slot_key(spec, c)
    worker = sa.bindparam("worker", type_=sa.String())
    now = sa.bindparam("now", type_=UTCDateTime())
    appt_due = sa.and_(c.appointment_at.is_not(None), c.appointment_at <= now)
    # "+ 0": without statistics SQLite would pick the (campaign_id, case_id) index, the
    # one that can neither skip the finished rows nor give the claim order.
    in_campaigns = (c.campaign_id + sa.literal_column("0")).in_(
        sa.bindparam("campaign_ids", expanding=True)
    )
    if handed == "dialer":
        # A hand-off is for good: the machine never takes a person's work back.
        in_scope = sa.and_(in_campaigns, c.handed_to.is_(None))
    elif handed == "mixed":
        in_scope = sa.or_(
            in_campaigns,
            sa.and_(
                (c.campaign_id + sa.literal_column("0")).in_(
                    sa.bindparam("handed_ids", expanding=True)
                ),
                c.handed_to.is_not(None),
            ),
        )
    else:
        in_scope = in_campaigns
    common: list[ColumnElement[bool]] = [
        # Constants are spelt out, not bound: a prepared statement's generic plan can then use
        # the partial indexes (their WHERE says state = 'open'), and is not planned again.
        c.state == sa.literal_column(f"'{QueueState.OPEN.value}'"),
        c.due_at <= now,
        in_scope,
        # An appointment booked with another agent is theirs until the reserve runs out.
        sa.or_(
            c.appointment_agent.is_(None),
            c.appointment_agent == worker,
            c.appointment_at.is_(None),
            c.appointment_at < sa.bindparam("reserve_cut", type_=UTCDateTime()),
        ),
    ]
    if units:
        common.append(c.unit_id.in_(sa.bindparam("unit_ids", expanding=True)))
    order = [c.priority.desc(), slot, c.last_attempt_at.asc().nulls_first(), c.id]
    mine = sa.case((c.held_by == worker, 0), else_=1)
    appt = sa.case((appt_due, 0), else_=1)

    def first(name: str, mine: Any, appt: Any, *where: Any, rank: Sequence[Any] = ()) -> Any:
        return (
            sa.select(
                c.id,
                mine.label("mine"),
                appt.label("appt"),
                c.priority,
                slot.label("slot_n"),
                c.last_attempt_at,
            )
            .where(*common, *where)
            .order_by(*rank, *order)
            .limit(sa.literal_column("1"))
            .with_for_update(skip_locked=True, of=table)
            .cte(name)
        )

    expiry = sa.bindparam("expiry", type_=UTCDateTime())
    candidates = [
        first(
            "held",
            mine,
            appt,
            c.held_by.is_not(None),
            sa.or_(c.held_by == worker, c.held_at < expiry),
            rank=[mine, appt],
        ),
        first("appointments", sa.literal(1), sa.literal(0), c.held_by.is_(None), appt_due),
        first("others", sa.literal(1), appt, c.held_by.is_(None)),
    ]
    union = sa.union_all(*(sa.select(c) for c in candidates)).subquery("candidates")
    u = union.c
    best = (
        sa.select(u.id)
        .order_by(
            u.mine, u.appt, u.priority.desc(), u.slot_n, u.last_attempt_at.asc().nulls_first(), u.id
        )
        .limit(sa.literal_column("1"))
        .scalar_subquery()
    )
    return (
        items_t.update()
        .where(q.id == best)
        .values(held_by=worker, held_at=now)
        .returning(*_CLAIMED)
        .add_cte(*candidates)
    )


def claim_next(
    engine: Engine,
    worker: str,
    scope: Scope = EVERYTHING,
    now: datetime | None = None,
    *,
    lease: timedelta = LEASE,
    reserve: timedelta = APPOINTMENT_RESERVE,
) -> Claim | None:
    """Claim the next due item for ``worker``, or return None when nothing is due.

    Order: an item this worker already holds; then due appointments (booked with nobody, with
    this worker, or with an agent who has not come for them within ``reserve``); then higher
    priority; then fewest attempts in the current slot; then the oldest last attempt, never
    attempted first; then the lowest id. Only items of sampled campaigns that may call now,
    due now, and not held by another worker (or held longer ago than ``lease``).
    """
    if now is None:
        raise ValueError("claim_next needs the time: pass now")
    if scope.units is not None and not scope.units:
        return None
    with _one_statement(engine) as conn:
        campaigns = _callable_campaigns(conn, scope, now)
        if not campaigns:
            return None
        own = [c.id for c in campaigns if not c.handed_only]
        handed_ids = [c.id for c in campaigns if c.handed_only]
        params: dict[str, Any] = {
            "now": now,
            "worker": worker,
            "expiry": now - lease,
            "reserve_cut": now - reserve,
            "campaign_ids": own,
        }
        if scope.units is not None:
            params["unit_ids"] = sorted(scope.units)
        handed: _Handed = "any" if scope.handed else "dialer"
        if handed_ids:
            handed, params["handed_ids"] = "mixed", handed_ids
        statement = _claim_statement(_slot_spec(campaigns), scope.units is not None, handed)
        row = conn.execute(statement, params).first()
        if row is None:
            return None
    return Claim(
        item_id=row.id,
        campaign_id=row.campaign_id,
        unit_id=row.unit_id,
        case_id=row.case_id,
        hotline_id=row.hotline_id,
        worker=worker,
        held_at=now,
        priority=row.priority,
        attempts=row.attempts,
        appointment=_is_appointment(row, now),
        appointment_at=row.appointment_at,
        appointment_number=row.appointment_number,
    )


@contextmanager
def _one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a write that is one statement: the claim.

    On PostgreSQL the statement is its own transaction (autocommit), one round trip instead of
    BEGIN, the claim and COMMIT; its row locks (SKIP LOCKED) and its update are atomic as any
    statement is. SQLite takes the write lock first (``immediate``): a statement that reads
    and then writes in WAL mode could otherwise find its snapshot stale and fail at once.
    """
    if is_sqlite(engine):
        with immediate(engine) as conn:
            yield conn
    else:
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")


def _is_appointment(row: Row[Any], now: datetime) -> bool:
    return row.appointment_at is not None and row.appointment_at <= now


def release(engine: Engine, item_id: int, worker: str) -> bool:
    """Give back ``worker``'s claim on an item (the agent quits, Ctrl-C); False if not held."""
    with immediate(engine) as conn:
        done = conn.execute(
            items_t.update()
            .where(q.id == item_id, q.held_by == worker)
            .values(held_by=None, held_at=None)
        )
        return done.rowcount > 0


def release_expired(engine: Engine, now: datetime, lease: timedelta = LEASE) -> int:
    """Free every claim older than ``lease`` (vanished workers); return how many.

    Claims already ignore expired leases; this keeps ``held_by`` honest for the status table.
    Rows are taken in id order, skipping locked ones, as ``refresh`` takes them: two bulk
    writers that lock in different orders can deadlock.
    """
    expired = (
        sa.select(q.id)
        .where(q.held_by.is_not(None), q.held_at < now - lease)
        .order_by(q.id)
        .with_for_update(skip_locked=True)
    )
    with immediate(engine) as conn:
        ids = list(conn.execute(expired).scalars())
        if ids:
            conn.execute(items_t.update().where(q.id.in_(ids)).values(held_by=None, held_at=None))
        return len(ids)
