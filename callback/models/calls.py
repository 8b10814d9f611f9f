"""Campaigns, queues and attempts (回访任务, 回访对象, 拨打记录), agents, hotlines, the
do-not-call list and the dialers' shared pacing."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from callback.models.base import Base, _check_in


class CampaignTarget(enum.StrEnum):
    CASES = "cases"  # callbacks of handled service cases
    HOTLINES = "hotlines"  # weekly spot checks of units' consultation hotlines


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"  # designed, not sampled yet
    SAMPLED = "sampled"  # queues filled: agents and dispatchers may call
    PAUSED = "paused"  # sampled, but nothing is dialled until it is resumed
    CLOSED = "closed"  # nothing more is dialled


class QueueState(enum.StrEnum):
    OPEN = "open"  # still to be worked: due now, later, or waiting
    FINISHED = "finished"  # has a final disposition


class HandOff(enum.StrEnum):
    """Who works a queue item next when it is not its campaign's own dialer."""

    AGENT = "agent"  # a person at the workstation (a tester, for a hotline check)


class AttemptState(enum.StrEnum):
    PENDING = "pending"  # written before the dial: the dialer has not confirmed it yet
    PLACED = "placed"  # the dialer accepted it and gave a call id
    ENDED = "ended"  # its outcome is known
    UNKNOWN = "unknown"  # a dispatcher died before learning its fate; never dialled again


#: An attempt that is out: its call may still be talking (placed, or not yet confirmed).
LIVE_ATTEMPT_STATES = frozenset({AttemptState.PENDING, AttemptState.PLACED})


agent_units = sa.Table(
    "agent_units",
    Base.metadata,
    sa.Column("agent_id", sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("unit_id", sa.ForeignKey("units.id"), primary_key=True),
)


class Agent(Base):
    """A callback agent (回访员): who works which units' queues."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(100), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class Hotline(Base):
    """A unit's published consultation number (咨询电话)."""

    __tablename__ = "hotlines"
    __table_args__ = (sa.UniqueConstraint("unit_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    e164: Mapped[str] = mapped_column(sa.String(20))
    #: Keyed after the answer (DTMF), as published: 0571-8800 1111 转 8001.
    extension: Mapped[str | None] = mapped_column(sa.String(10))
    label: Mapped[str | None] = mapped_column(sa.String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class DoNotCall(Base):
    """A number that must never be dialled (a citizen's request, a unit's instruction)."""

    __tablename__ = "do_not_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(sa.String(20), unique=True)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(20))  # citizen, unit, office, import
    added_by: Mapped[str] = mapped_column(sa.String(100))
    added_at: Mapped[datetime]
    #: The call in which the citizen asked not to be called again, if any.
    attempt_id: Mapped[int | None]


class Campaign(Base):
    """A callback campaign (回访任务): a sampling design, a script, a dialer, calling rules."""

    __tablename__ = "campaigns"
    __table_args__ = (
        _check_in("target", CampaignTarget, "target"),
        _check_in("status", CampaignStatus, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    title: Mapped[str | None] = mapped_column(sa.String(200))
    target: Mapped[str] = mapped_column(sa.String(16))
    #: Names resolved through the plugins: survey script and dialer.
    script: Mapped[str] = mapped_column(sa.String(100))
    dialer: Mapped[str] = mapped_column(sa.String(50))
    #: Cases handled in [period_start, period_end], local dates.
    period_start: Mapped[date]
    period_end: Mapped[date]
    deadline: Mapped[datetime | None]
    #: callback.rules.CallingRules as JSON (windows, limits, retry delays, slots).
    rules: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: The sampling design as JSON (strata, allocation, size or margin, exclusions, seed).
    design: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: What sampling found: frame size, exclusions by reason, strata and allocations.
    sample_report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Corrections proposed in calls wait for the unit supervisor's review.
    review_corrections: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]
    sampled_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class QueueItem(Base):
    """A sampled case (or a planned hotline check) waiting to be called (回访对象).

    ``due_at`` is when it may next be dialled, computed by callback.decisions whenever something
    happens to it; None while it waits for nothing the clock can bring (finished, or the
    reason in ``wait_reason``). Claims are leases: ``held_by`` and ``held_at``.
    """

    __tablename__ = "queue_items"
    __table_args__ = (
        _check_in("state", QueueState, "state"),
        sa.UniqueConstraint("campaign_id", "case_id"),
        sa.Index("ix_queue_items_ready", "campaign_id", "unit_id", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    #: The queue: the unit whose agents work it.
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"))
    hotline_id: Mapped[int | None] = mapped_column(sa.ForeignKey("hotlines.id"))
    stratum: Mapped[str] = mapped_column(sa.String(300))
    #: Probability that the design drew this case; the design weight is its inverse.
    inclusion_probability: Mapped[float]
    weight: Mapped[float]
    state: Mapped[str] = mapped_column(sa.String(16))
    priority: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime | None]
    wait_reason: Mapped[str | None] = mapped_column(sa.String(32))
    appointment_at: Mapped[datetime | None]
    appointment_agent: Mapped[str | None] = mapped_column(sa.String(100))
    appointment_number: Mapped[str | None] = mapped_column(sa.String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    # Attempts made in each of the rules' time slots (up to four), so that a claim can prefer
    # the case least tried in the slot it is made in.
    slot0_attempts: Mapped[int] = mapped_column(default=0)
    slot1_attempts: Mapped[int] = mapped_column(default=0)
    slot2_attempts: Mapped[int] = mapped_column(default=0)
    slot3_attempts: Mapped[int] = mapped_column(default=0)
    # The claim's indexes (partial, one per slot, NULLS FIRST on PostgreSQL) live in migration
    # 0005 only: a model cannot spell them for both databases; alembic/env.py skips them.
    held_by: Mapped[str | None] = mapped_column(sa.String(100))
    held_at: Mapped[datetime | None]
    final_disposition: Mapped[str | None] = mapped_column(sa.String(8))
    finished_at: Mapped[datetime | None]
    #: Who works it next, if not the campaign's own dialer (HandOff; None: the campaign's
    #: dialer). An automated hotline check answered by a person goes to a tester: the
    #: dispatcher never claims it again (callback.hotline_checks, callback.claims.Scope).
    #: No CHECK constraint: adding one would rebuild queue_items on SQLite, and with it the
    #: claim's partial indexes of migration 0005; callback.hotline_checks writes HandOff only.
    handed_to: Mapped[str | None] = mapped_column(sa.String(16))
    handed_at: Mapped[datetime | None]


class CallAttempt(Base):
    """One dial of one number (拨打记录), written before the number is dialled."""

    __tablename__ = "attempts"
    __table_args__ = (
        _check_in("state", AttemptState, "state"),
        # The contact-frequency cap asks "was this number dialled since ...?".
        sa.Index("ix_attempts_number_placed_at", "number", "placed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_item_id: Mapped[int] = mapped_column(sa.ForeignKey("queue_items.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    #: The number dialled, E.164.
    number: Mapped[str] = mapped_column(sa.String(20))
    #: Who dialled: an agent's login, or "dispatcher:<host>:<pid>".
    worker: Mapped[str] = mapped_column(sa.String(100))
    dialer: Mapped[str] = mapped_column(sa.String(50))
    provider_call_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    #: When the dialer really placed the call: the retry clock starts here.
    placed_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    #: What happened (callback.dialing.EventKind or an agent's outcome) and its AAPOR code.
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    disposition: Mapped[str | None] = mapped_column(sa.String(8))
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class DialerPacing(Base):
    """When a dialer may next place a call: a token bucket shared by every dispatcher.

    Providers limit calls per account (Twilio: one a second by default), not per process, so
    several ``callback run`` processes take their turns from this row.
    """

    __tablename__ = "dialer_pacing"

    dialer: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    next_at: Mapped[datetime]
