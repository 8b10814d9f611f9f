"""Callback agents (回访员) and the units whose queues each may work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.db import immediate
from callback.errors import CallbackError
from callback.models import (
    Agent,
    AuditEntry,
    QueueItem,
    QueueState,
    Unit,
    agent_units,
    table,
    utcnow,
)

agents_t, units_t, audit_t = table(Agent), table(Unit), table(AuditEntry)
items_t = table(QueueItem)


@dataclass(frozen=True)
class AgentInfo:
    login: str
    name: str | None
    active: bool
    units: tuple[str, ...]


def unit_ids(engine: Engine, names: Iterable[str]) -> dict[str, int]:
    """Unit ids by name; an unknown name is a clear error listing close matches."""
    names = list(names)
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(units_t.c.name, units_t.c.id).where(units_t.c.name.in_(names))
            ).all()
        )
        missing = [n for n in names if n not in found]
        if missing:
            known = conn.execute(sa.select(units_t.c.name).order_by(units_t.c.name)).scalars().all()
            close = [k for k in known if any(m in k or k in m for m in missing)][:5]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise CallbackError(f"no unit named {', '.join(missing)}{hint}")
    return found


def save_agent(
    engine: Engine, login: str, units: Iterable[str], actor: str, name: str | None = None
) -> AgentInfo:
    """Create or update an agent and the units they work for (replacing the previous ones).

    An inactive agent stays inactive: `activate_agent` lets them work again.
    """
    if not login or len(login) > 100:
        raise CallbackError("an agent's login must be 1 to 100 characters")
    wanted = unit_ids(engine, units)
    now = utcnow()
    with immediate(engine) as conn:
        agent = conn.execute(
            sa.select(agents_t.c.id, agents_t.c.name).where(agents_t.c.login == login)
        ).first()
        before = None
        if agent is None:
            agent_id = conn.execute(
                sa.insert(agents_t).values(login=login, name=name, active=True, created_at=now)
                .returning(agents_t.c.id)
            ).scalar_one()  # fmt: skip
        else:
            agent_id = agent.id
            units_before = sorted(_unit_names(conn, agent_id))
            before = {"login": login, "name": agent.name, "units": units_before}
            if name is not None:
                conn.execute(sa.update(agents_t).where(agents_t.c.id == agent_id).values(name=name))
        conn.execute(sa.delete(agent_units).where(agent_units.c.agent_id == agent_id))
        if wanted:
            conn.execute(
                sa.insert(agent_units),
                [{"agent_id": agent_id, "unit_id": u} for u in wanted.values()],
            )
        kept_name = name if name is not None else agent.name if agent is not None else None
        after = {"login": login, "name": kept_name, "units": sorted(wanted)}
        if before != after:
            conn.execute(
                sa.insert(audit_t).values(
                    at=now, actor=actor, action="agent.save", entity="agent",
                    entity_id=agent_id, before=before, after=after, reason="agent's units set",
                )
            )  # fmt: skip
    return get_agent(engine, login)


@dataclass(frozen=True)
class Deactivated:
    """What deactivating an agent changed in the queues."""

    login: str
    #: Open items whose appointment was booked with them: now anybody's at the booked time.
    appointments_freed: int
    #: Items they hold now: theirs until they record the call in hand or the lease runs out.
    holding: int


def deactivate_agent(
    engine: Engine, login: str, actor: str, now: datetime, reason: str
) -> Deactivated:
    """Stop an agent working any queue (they left, or changed jobs). Audited; never deleted.

    Their next claim is refused, and a workstation they have open stops before it shows them
    another case; a call already in hand can still be recorded. Appointments booked with them
    go to their colleagues at the booked time instead of waiting out the reserve.
    """
    if not reason.strip():
        raise CallbackError("say why the agent is deactivated (--reason)")
    with immediate(engine) as conn:
        agent = _agent_row(conn, login)
        if not agent.active:
            raise CallbackError(f"agent {login!r} is already inactive")
        conn.execute(sa.update(agents_t).where(agents_t.c.id == agent.id).values(active=False))
        q = items_t.c
        booked = conn.execute(
            sa.select(q.id, q.case_id).where(
                q.appointment_agent == login, q.state == QueueState.OPEN.value
            ).order_by(q.id)
        ).all()  # fmt: skip
        if booked:
            conn.execute(
                sa.update(items_t)
                .where(q.id.in_([item.id for item in booked]))
                .values(appointment_agent=None)
            )
            conn.execute(
                sa.insert(audit_t),
                [
                    {"at": now, "actor": actor, "action": "queue_item.appointment_agent",
                     "entity": "queue_items", "entity_id": item.id, "case_id": item.case_id,
                     "before": {"appointment_agent": login}, "after": {"appointment_agent": None},
                     "reason": f"agent {login} deactivated: {reason}"}
                    for item in booked
                ],
            )  # fmt: skip
        holding = conn.execute(
            sa.select(sa.func.count()).select_from(items_t).where(q.held_by == login)
        ).scalar_one()
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action="agent.deactivate", entity="agent", entity_id=agent.id,
                before={"active": True}, after={"active": False}, reason=reason,
            )
        )  # fmt: skip
    return Deactivated(login, len(booked), holding)


def activate_agent(engine: Engine, login: str, actor: str, now: datetime, reason: str) -> None:
    """Let an inactive agent work their units' queues again. Audited."""
    if not reason.strip():
        raise CallbackError("say why the agent is activated again (--reason)")
    with immediate(engine) as conn:
        agent = _agent_row(conn, login)
        if agent.active:
            raise CallbackError(f"agent {login!r} is already active")
        conn.execute(sa.update(agents_t).where(agents_t.c.id == agent.id).values(active=True))
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action="agent.activate", entity="agent", entity_id=agent.id,
                before={"active": False}, after={"active": True}, reason=reason,
            )
        )  # fmt: skip


def _agent_row(conn: sa.Connection, login: str) -> sa.Row[Any, Any]:
    agent = conn.execute(
        sa.select(agents_t.c.id, agents_t.c.active).where(agents_t.c.login == login)
    ).first()
    if agent is None:
        raise CallbackError(f"no agent with login {login!r}")
    return agent


def _unit_names(conn: sa.Connection, agent_id: int) -> list[str]:
    return list(
        conn.execute(
            sa.select(units_t.c.name)
            .join(agent_units, agent_units.c.unit_id == units_t.c.id)
            .where(agent_units.c.agent_id == agent_id)
            .order_by(units_t.c.name)
        ).scalars()
    )


def get_agent(engine: Engine, login: str) -> AgentInfo:
    with engine.connect() as conn:
        agent = conn.execute(sa.select(agents_t).where(agents_t.c.login == login)).first()
        if agent is None:
            raise CallbackError(
                f"no agent with login {login!r}: add one with `callback agents add {login} "
                "--unit UNIT`"
            )
        return AgentInfo(agent.login, agent.name, agent.active, tuple(_unit_names(conn, agent.id)))


def list_agents(engine: Engine) -> list[AgentInfo]:
    with engine.connect() as conn:
        logins = (
            conn.execute(sa.select(agents_t.c.login).order_by(agents_t.c.login)).scalars().all()
        )
    return [get_agent(engine, login) for login in logins]
