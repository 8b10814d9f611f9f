"""Callback agents (回访员) and the units whose queues each may work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.db import immediate
from callback.errors import CallbackError
from callback.models import Agent, AuditEntry, Unit, agent_units, table, utcnow

agents_t, units_t, audit_t = table(Agent), table(Unit), table(AuditEntry)


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
    """Create or update an agent and the units they work for (replacing the previous ones)."""
    if not login or len(login) > 100:
        raise CallbackError("an agent's login must be 1 to 100 characters")
    wanted = unit_ids(engine, units)
    now = utcnow()
    with immediate(engine) as conn:
        agent_id = conn.execute(sa.select(agents_t.c.id).where(agents_t.c.login == login)).scalar()
        if agent_id is None:
            agent_id = conn.execute(
                sa.insert(agents_t).values(login=login, name=name, active=True, created_at=now)
                .returning(agents_t.c.id)
            ).scalar_one()  # fmt: skip
        elif name is not None:
            conn.execute(sa.update(agents_t).where(agents_t.c.id == agent_id).values(name=name))
        conn.execute(sa.delete(agent_units).where(agent_units.c.agent_id == agent_id))
        if wanted:
            conn.execute(
                sa.insert(agent_units),
                [{"agent_id": agent_id, "unit_id": u} for u in wanted.values()],
            )
        conn.execute(
            sa.insert(audit_t).values(
                at=now, actor=actor, action="agent.save", entity="agent", entity_id=agent_id,
                after={"login": login, "units": sorted(wanted)}, reason="agent's units set",
            )
        )  # fmt: skip
    return get_agent(engine, login)


def get_agent(engine: Engine, login: str) -> AgentInfo:
    with engine.connect() as conn:
        agent = conn.execute(sa.select(agents_t).where(agents_t.c.login == login)).first()
        if agent is None:
            raise CallbackError(
                f"no agent with login {login!r}: add one with `callback agents add {login} "
                "--unit UNIT`"
            )
        units = conn.execute(
            sa.select(units_t.c.name)
            .join(agent_units, agent_units.c.unit_id == units_t.c.id)
            .where(agent_units.c.agent_id == agent.id)
            .order_by(units_t.c.name)
        ).scalars()
        return AgentInfo(agent.login, agent.name, agent.active, tuple(units))


def list_agents(engine: Engine) -> list[AgentInfo]:
    with engine.connect() as conn:
        logins = (
            conn.execute(sa.select(agents_t.c.login).order_by(agents_t.c.login)).scalars().all()
        )
    return [get_agent(engine, login) for login in logins]
