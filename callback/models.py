"""Typed SQLAlchemy models of the sampling frame (样本框) and its audit log."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone type, so the UTC wall time is stored there; a naive datetime is
    refused on the way in, because guessing its zone is how call windows go wrong.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite, e.g. an aggregate of the column
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_timestamp(value: datetime) -> str:
    """Format an aware datetime exactly as SQLAlchemy stores UTCDateTime on SQLite (bulk paths)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def table(model: type[Base]) -> sa.Table:
    """The model's Table, typed as one (``__table__`` is only known as a FromClause)."""
    result = model.__table__
    assert isinstance(result, sa.Table)
    return result


def _check_in(column: str, values: type[enum.StrEnum], name: str) -> sa.CheckConstraint:
    # Spelt as an OR chain: SQLite builds an ephemeral table for "x IN (...)" on every row it
    # checks, which made bulk inserts 3.5 times slower (measured on 3.40 for this schema).
    chain = " OR ".join(f"{column} = '{v.value}'" for v in values)
    return sa.CheckConstraint(chain, name=name)


class UnitKind(enum.StrEnum):
    DEPARTMENT = "department"  # 部门
    TOWN = "town"  # 镇街 (a town or a street office)


class ApplicantType(enum.StrEnum):
    PERSON = "person"  # 个人
    COMPANY = "company"  # 法人 / 企业


class Channel(enum.StrEnum):
    WINDOW = "window"  # 窗口
    ONLINE = "online"  # 网上 (浙江政务服务网)
    MOBILE = "mobile"  # 掌上 (浙里办)
    NEARBY = "nearby"  # 就近 (村社代办点, 自助终端)
    MAIL = "mail"  # 邮寄 / 快递


class PhoneKind(enum.StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    OTHER = "other"  # valid but neither, e.g. a 400 or 95xxx service number


class Validity(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # not a Chinese telephone number
    FAKE = "fake"  # shaped like one but obviously made up (13800000000, 11111111)


class ContactSource(enum.StrEnum):
    IMPORT = "import"  # from a service centre's export
    CALLBACK = "callback"  # learnt in a callback
    AGENT = "agent"  # typed in by an agent or the office


class Verification(enum.StrEnum):
    """What calls learnt about a contact, for the corrected frame export."""

    NOT_CALLED = "not_called"
    VERIFIED = "verified"  # the applicant (or the case's contact) answered on it
    CORRECTED = "corrected"  # a number learnt in a callback replaced a wrong one
    UNREACHABLE = "unreachable"  # every attempt failed to reach anyone
    WRONG_NUMBER = "wrong_number"  # someone answered who is not the applicant, or it is dead


class Unit(Base):
    """A department or town (单位) that handled cases and owns a callback queue."""

    __tablename__ = "units"
    __table_args__ = (_check_in("kind", UnitKind, "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]


class ImportBatch(Base):
    """One imported file: what it was, who imported it, and what it changed."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.String(500))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    file_size: Mapped[int] = mapped_column(sa.BigInteger)
    file_format: Mapped[str] = mapped_column(sa.String(8))
    encoding: Mapped[str | None] = mapped_column(sa.String(32))
    sheet: Mapped[str | None] = mapped_column(sa.String(200))
    actor: Mapped[str] = mapped_column(sa.String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    warnings: Mapped[int] = mapped_column(default=0)


class Case(Base):
    """A handled service case (办件): the unit of the sampling frame."""

    __tablename__ = "cases"
    __table_args__ = (
        _check_in("applicant_type", ApplicantType, "applicant_type"),
        _check_in("channel", Channel, "channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(sa.String(64), unique=True)
    item_name: Mapped[str] = mapped_column(sa.String(300))
    item_code: Mapped[str | None] = mapped_column(sa.String(64))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    town_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    applicant_name: Mapped[str | None] = mapped_column(sa.String(200))
    applicant_type: Mapped[str] = mapped_column(sa.String(16))
    contact_name: Mapped[str | None] = mapped_column(sa.String(100))
    # Not indexed: sampling reads the whole period anyway, and the index cost every import.
    handled_at: Mapped[datetime]
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    # The batch columns are provenance, not foreign keys: batches are never deleted, and on
    # PostgreSQL each foreign key costs a trigger call for every row a COPY loads.
    created_batch_id: Mapped[int | None]
    #: The import batch that last wrote this case, and the row of its file.
    batch_id: Mapped[int | None]
    source_row: Mapped[int | None]
    #: A hash of the facts as the source last gave them: equal means a re-import changes nothing.
    source_fingerprint: Mapped[int | None] = mapped_column(sa.BigInteger)
    # No created_at/updated_at: the import batches say when a case came and the audit log
    # when it changed; two timestamps on a million rows made every import slower.


class Contact(Base):
    """One telephone number of a case, as typed and as normalised.

    Numbers are never deleted: a number replaced by a re-import or found wrong is marked
    superseded, so the audit trail and the verification history stay whole.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        _check_in("kind", PhoneKind, "kind"),
        _check_in("validity", Validity, "validity"),
        _check_in("source", ContactSource, "source"),
        _check_in("verification", Verification, "verification"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    raw: Mapped[str] = mapped_column(sa.String(100))
    e164: Mapped[str | None] = mapped_column(sa.String(20))
    extension: Mapped[str | None] = mapped_column(sa.String(10))
    kind: Mapped[str | None] = mapped_column(sa.String(16))
    validity: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(16))
    batch_id: Mapped[int | None]  # provenance, as Case.batch_id
    created_at: Mapped[datetime]
    superseded_at: Mapped[datetime | None]
    #: What callbacks learnt of it (Verification) and when.
    verification: Mapped[str] = mapped_column(
        sa.String(16), default="not_called", server_default="not_called"
    )
    checked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One change to the frame: who, when, what, before, after, why, and from which call."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(100))
    #: e.g. "case.update", "contact.add", "contact.supersede", "unit.create".
    action: Mapped[str] = mapped_column(sa.String(40))
    entity: Mapped[str] = mapped_column(sa.String(20))
    entity_id: Mapped[int | None]
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    #: None is SQL NULL (nothing before a creation, nothing after a removal), never the JSON
    #: value null, so that ``before IS NULL`` finds every creation.
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    reason: Mapped[str] = mapped_column(sa.Text)
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"))
    #: The call attempt that taught us the change.
    attempt_id: Mapped[int | None] = mapped_column(sa.ForeignKey("attempts.id"))


# -- Campaigns, queues and attempts (回访任务, 回访对象, 拨打记录) --------------------------------


class CampaignTarget(enum.StrEnum):
    CASES = "cases"  # callbacks of handled service cases
    HOTLINES = "hotlines"  # weekly spot checks of units' consultation hotlines


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"  # designed, not sampled yet
    SAMPLED = "sampled"  # queues filled: agents and dispatchers may call
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

    ``due_at`` is when it may next be dialled, computed by callback.rules whenever something
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


# -- Survey sessions and responses (回访结果) ------------------------------------------------


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


class DialerPacing(Base):
    """When a dialer may next place a call: a token bucket shared by every dispatcher.

    Providers limit calls per account (Twilio: one a second by default), not per process, so
    several ``callback run`` processes take their turns from this row.
    """

    __tablename__ = "dialer_pacing"

    dialer: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    next_at: Mapped[datetime]
