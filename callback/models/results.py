"""What calls yield: survey sessions and responses (回访结果), and what callbacks teach the
frame: corrections and problems."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from callback.models.base import Base, _check_in


class SessionStatus(enum.StrEnum):
    ACTIVE = "active"  # a call is running this script now
    FINISHED = "finished"  # the script reached its end
    STOPPED = "stopped"  # the call ended first (hang-up, dropped line); may resume next call


class SurveySession(Base):
    """The state of a survey script during one call, saved after every answer.

    A dropped call leaves its state here; the next call of the same case resumes from it.
    """

    __tablename__ = "survey_sessions"
    __table_args__ = (_check_in("status", SessionStatus, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(sa.ForeignKey("attempts.id"), unique=True)
    queue_item_id: Mapped[int] = mapped_column(sa.ForeignKey("queue_items.id"), index=True)
    script: Mapped[str] = mapped_column(sa.String(100))
    script_version: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(10))  # agent or ivr
    #: callback.surveys.SessionState.to_json()
    state: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Response(Base):
    """What a case's interview yielded (one per queue item, from its latest session)."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_item_id: Mapped[int] = mapped_column(sa.ForeignKey("queue_items.id"), unique=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(sa.ForeignKey("attempts.id"))
    script: Mapped[str] = mapped_column(sa.String(100))
    complete: Mapped[bool]
    #: Answers by question id, as the script's values.
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: Every rate the script declares (realised, satisfied, connected, …): true, false or null.
    rates: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    realised: Mapped[bool | None]
    satisfied: Mapped[bool | None]
    recorded_at: Mapped[datetime]


# -- What callbacks teach the frame: corrections and problems -----------------------------


class CorrectionStatus(enum.StrEnum):
    PENDING = "pending"  # waits for the unit supervisor's review
    APPLIED = "applied"
    REJECTED = "rejected"
    REVERTED = "reverted"


class ProblemStatus(enum.StrEnum):
    OPEN = "open"
    FIXING = "fixing"  # 整改中
    FIXED = "fixed"  # 已整改
    EXPLAINED = "explained"  # 已解释: could not be solved, the policy was explained


class Correction(Base):
    """A proposed or applied fix of a case's facts (信息更正), with its provenance."""

    __tablename__ = "corrections"
    __table_args__ = (_check_in("status", CorrectionStatus, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    #: The call it came from, if any (an office edit has none).
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("attempts.id"))
    #: phone, contact, wrong_number, case, unit, item (callback.survey_format.CorrectionKind).
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: What the answer or the agent proposed, e.g. {"phone": "+8613…"} or {"contact": "王五"}.
    proposed: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16))
    proposed_by: Mapped[str] = mapped_column(sa.String(100))
    proposed_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(sa.String(100))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(sa.Text)


class ProblemReport(Base):
    """Something a citizen raised that the unit must follow up (整改) or explain."""

    __tablename__ = "problems"
    __table_args__ = (_check_in("status", ProblemStatus, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"))
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("attempts.id"))
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id"))
    category: Mapped[str] = mapped_column(sa.String(50))
    text: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    owner: Mapped[str | None] = mapped_column(sa.String(100))
    due_date: Mapped[date | None]
    resolution: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
