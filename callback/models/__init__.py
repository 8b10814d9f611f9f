"""Typed SQLAlchemy models of the sampling frame (样本框), the calls made from it, and what the
calls yield. Import them from here; the modules split them by subject only.

- ``base``: the declarative base, the naming convention, UTC timestamps.
- ``frame``: units, import batches, cases, contacts and the audit log.
- ``calls``: campaigns, queue items, attempts, agents, hotlines, do-not-call, pacing.
- ``results``: survey sessions, responses, corrections and problems.
"""

from callback.models.base import (
    NAMING_CONVENTION,
    Base,
    UTCDateTime,
    sqlite_timestamp,
    table,
    utcnow,
)
from callback.models.calls import (
    LIVE_ATTEMPT_STATES,
    Agent,
    AttemptState,
    CallAttempt,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    DialerPacing,
    DoNotCall,
    HandOff,
    Hotline,
    QueueItem,
    QueueState,
    agent_units,
)
from callback.models.frame import (
    ApplicantType,
    AuditEntry,
    Case,
    Channel,
    Contact,
    ContactSource,
    ImportBatch,
    PhoneKind,
    Unit,
    UnitKind,
    Validity,
    Verification,
)
from callback.models.results import (
    Correction,
    CorrectionStatus,
    ProblemReport,
    ProblemStatus,
    Response,
    SessionStatus,
    SurveySession,
)

__all__ = [
    "LIVE_ATTEMPT_STATES", "NAMING_CONVENTION", "Agent", "ApplicantType", "AttemptState",
    "AuditEntry", "Base", "CallAttempt", "Campaign", "CampaignStatus", "CampaignTarget", "Case",
    "Channel", "Contact", "ContactSource", "Correction", "CorrectionStatus", "DialerPacing",
    "DoNotCall", "HandOff", "Hotline", "ImportBatch", "PhoneKind", "ProblemReport",
    "ProblemStatus", "QueueItem", "QueueState", "Response", "SessionStatus", "SurveySession",
    "UTCDateTime", "Unit", "UnitKind", "Validity", "Verification", "agent_units",
    "sqlite_timestamp", "table", "utcnow",
]  # fmt: skip
