"""Survey sessions in the database: one per call, saved after every answer, resumed after a
dropped call, and turned into responses, corrections and problems when the call ends.

The IVR (callback.calls) and the agent's workstation (callback.workstation) both run scripts
through here, so that an answer means the same whichever channel took it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback import plugins
from callback.db import immediate
from callback.dialing import EventKind
from callback.dispositions import AgentOutcome, Progress
from callback.models import (
    CallAttempt,
    Campaign,
    Case,
    Contact,
    Correction,
    CorrectionStatus,
    ProblemReport,
    ProblemStatus,
    QueueItem,
    Response,
    SessionStatus,
    SurveySession,
    Unit,
    Verification,
    table,
)
from callback.survey_format import CorrectionKind, Script
from callback.survey_prompts import Prompt, prompt
from callback.survey_results import Results, results
from callback.surveys import SCREEN_OUTS, Context, SessionState, answer, finished, resume, start

attempts_t, items_t, campaigns_t = table(CallAttempt), table(QueueItem), table(Campaign)
cases_t, units_t, contacts_t = table(Case), table(Unit), table(Contact)
sessions_t, responses_t = table(SurveySession), table(Response)
corrections_t, problems_t = table(Correction), table(ProblemReport)


@dataclass(frozen=True)
class Session:
    """A loaded session: its row id, the attempt, the script and the engine state."""

    id: int
    attempt_id: int
    queue_item_id: int
    script: Script
    state: SessionState
    status: str

    @property
    def done(self) -> bool:
        return self.status != SessionStatus.ACTIVE or finished(self.state)


@dataclass(frozen=True)
class CallOutcome:
    """What a survey session says about its call, for finish_attempt."""

    outcome: EventKind | AgentOutcome
    final: str | None = None
    progress: Progress = Progress.NONE


def open_session(
    engine: Engine, attempt_id: int, channel: str, now: datetime, language: str | None = None
) -> Session:
    """The attempt's session: its own if it exists, else a new one that resumes the case's
    last stopped session of the same script, else a fresh start."""
    with immediate(engine) as conn:
        found = _load(conn, attempt_id)
        if found is not None:
            return found
        attempt = conn.execute(
            sa.select(attempts_t.c.queue_item_id, attempts_t.c.campaign_id).where(
                attempts_t.c.id == attempt_id
            )
        ).one()
        campaign = conn.execute(
            sa.select(campaigns_t.c.script, campaigns_t.c.rules).where(
                campaigns_t.c.id == attempt.campaign_id
            )
        ).one()
        script = plugins.get_script(campaign.script)
        earlier = conn.execute(
            sa.select(sessions_t.c.state)
            .where(
                sessions_t.c.queue_item_id == attempt.queue_item_id,
                sessions_t.c.status == SessionStatus.STOPPED,
                sessions_t.c.script == script.name,
                sessions_t.c.script_version == script.version,
            )
            .order_by(sessions_t.c.id.desc())
            .limit(1)
        ).scalar()
        if earlier is not None:
            state = resume(script, SessionState.from_json(earlier))
        else:
            context = _context(conn, attempt.queue_item_id, campaign.rules)
            state = start(script, context, channel=channel, language=language)
        session_id = conn.execute(
            sa.insert(sessions_t)
            .values(attempt_id=attempt_id, queue_item_id=attempt.queue_item_id,
                    script=script.name, script_version=script.version, channel=channel,
                    state=state.to_json(), status=SessionStatus.ACTIVE, started_at=now,
                    updated_at=now)
            .returning(sessions_t.c.id)
        ).scalar_one()  # fmt: skip
        return Session(
            session_id, attempt_id, attempt.queue_item_id, script, state, SessionStatus.ACTIVE
        )


def load_session(engine: Engine, attempt_id: int) -> Session | None:
    with engine.connect() as conn:
        return _load(conn, attempt_id)


def _load(conn: Connection, attempt_id: int) -> Session | None:
    row = conn.execute(sa.select(sessions_t).where(sessions_t.c.attempt_id == attempt_id)).first()
    if row is None:
        return None
    script = plugins.get_script(row.script)
    return Session(
        row.id,
        attempt_id,
        row.queue_item_id,
        script,
        SessionState.from_json(row.state),
        row.status,
    )


def _context(conn: Connection, item_id: int, rules: dict[str, Any]) -> Context:
    case = conn.execute(
        sa.select(
            cases_t.c.item_name,
            cases_t.c.applicant_name,
            cases_t.c.contact_name,
            cases_t.c.handled_at,
            units_t.c.name.label("unit"),
        )
        .join(items_t, items_t.c.case_id == cases_t.c.id)
        .join(units_t, units_t.c.id == cases_t.c.unit_id)
        .where(items_t.c.id == item_id)
    ).first()
    timezone = str(rules.get("timezone", "Asia/Shanghai"))
    if case is None:  # a hotline check: the unit is all there is to name
        unit = conn.execute(
            sa.select(units_t.c.name)
            .join(items_t, items_t.c.unit_id == units_t.c.id)
            .where(items_t.c.id == item_id)
        ).scalar_one()
        return Context(unit=unit, timezone=timezone)
    return Context(
        item=case.item_name,
        unit=case.unit,
        applicant=case.applicant_name or case.contact_name or "",
        handled_at=case.handled_at,
        timezone=timezone,
    )


def current_prompt(session: Session, channel: str | None = None) -> Prompt:
    return prompt(session.script, session.state, channel=channel)


def give_answer(engine: Engine, session: Session, text: str, now: datetime) -> Session:
    """Apply one answer and save the state at once (a dropped call loses nothing)."""
    state = answer(session.script, session.state, text)
    with immediate(engine) as conn:
        conn.execute(
            sa.update(sessions_t)
            .where(sessions_t.c.id == session.id)
            .values(state=state.to_json(), updated_at=now)
        )
    return Session(
        session.id, session.attempt_id, session.queue_item_id, session.script, state,
        session.status,
    )  # fmt: skip


def close_session(engine: Engine, session: Session, actor: str, now: datetime) -> CallOutcome:
    """End the session with its call: keep its results, and say what the call was.

    A session that reached the script's end is finished; one cut short is stopped, and the
    next call of the case resumes it. Corrections the answers propose are recorded as pending
    (the office or the unit's supervisor applies them); problems are opened for the unit.
    """
    done = finished(session.state)
    found = results(session.script, session.state)
    with immediate(engine) as conn:
        status = SessionStatus.FINISHED if done else SessionStatus.STOPPED
        updated = conn.execute(
            sa.update(sessions_t)
            .where(sessions_t.c.id == session.id, sessions_t.c.status == SessionStatus.ACTIVE)
            .values(status=status, updated_at=now)
        )
        if updated.rowcount:  # only once, however often the call's end is reported
            _keep(conn, session, found, actor, now)
    return outcome_of(found, done)


def outcome_of(found: Results, done: bool) -> CallOutcome:
    """The attempt's outcome from what the session yielded.

    Only a complete session (``Results.complete``: the end reached by the applicant, neither
    screened out nor refused) is a 1.1. A screen-out is the wrong person, whatever it answered;
    a refusal is the applicant's, or a partial (1.2) when the answers already make one, as an
    agent's refusal key makes it (``attempt_disposition``).
    """
    kinds = {c.kind for c in found.corrections}
    if found.screened_out or kinds & SCREEN_OUTS:
        return CallOutcome(AgentOutcome.WRONG_PERSON)
    answered = [v for v in found.answers.values() if v is not None]
    rates_known = bool(found.rates) and all(v is not None for v in found.rates.values())
    progress = Progress.SUFFICIENT if rates_known else Progress.SOME if answered else Progress.NONE
    if found.refused:
        return CallOutcome(AgentOutcome.REFUSED, progress=progress)
    if done and found.complete:
        return CallOutcome(EventKind.COMPLETED, final="1.1", progress=Progress.ALL)
    if rates_known:
        return CallOutcome(EventKind.COMPLETED, final="1.2", progress=Progress.SUFFICIENT)
    return CallOutcome(EventKind.COMPLETED, progress=progress)


def _keep(conn: Connection, session: Session, found: Results, actor: str, now: datetime) -> None:
    attempt = conn.execute(
        sa.select(attempts_t.c.campaign_id, attempts_t.c.contact_id, items_t.c.case_id,
                  items_t.c.unit_id)
        .join(items_t, items_t.c.id == attempts_t.c.queue_item_id)
        .where(attempts_t.c.id == session.attempt_id)
    ).one()  # fmt: skip
    answers = {k: v for k, v in found.answers.items() if v is not None}
    if answers:
        values = dict(
            campaign_id=attempt.campaign_id, attempt_id=session.attempt_id,
            script=found.script, complete=found.complete, answers=answers,
            rates=dict(found.rates), realised=found.realised, satisfied=found.satisfied,
            recorded_at=now,
        )  # fmt: skip
        existing = conn.execute(
            sa.select(responses_t.c.id, responses_t.c.complete).where(
                responses_t.c.queue_item_id == session.queue_item_id
            )
        ).first()
        if existing is None:
            conn.execute(
                sa.insert(responses_t).values(queue_item_id=session.queue_item_id, **values)
            )
        elif not existing.complete or found.complete:  # never overwrite a complete interview
            conn.execute(
                sa.update(responses_t).where(responses_t.c.id == existing.id).values(**values)
            )
    if attempt.case_id is not None:
        for correction in found.corrections:
            conn.execute(
                sa.insert(corrections_t).values(
                    case_id=attempt.case_id, attempt_id=session.attempt_id,
                    kind=str(correction.kind),
                    proposed={str(correction.kind): _jsonable(correction.value),
                              "question": correction.question},
                    status=CorrectionStatus.PENDING, proposed_by=actor, proposed_at=now,
                )
            )  # fmt: skip
    for problem in found.problems:
        conn.execute(
            sa.insert(problems_t).values(
                unit_id=attempt.unit_id, case_id=attempt.case_id,
                attempt_id=session.attempt_id, campaign_id=attempt.campaign_id,
                category=problem.category, text=problem.text, status=ProblemStatus.OPEN,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    if attempt.contact_id is not None:
        verdict = _verdict(found)
        if verdict is not None:
            conn.execute(
                sa.update(contacts_t)
                .where(contacts_t.c.id == attempt.contact_id)
                .values(verification=verdict, checked_at=now)
            )


def _verdict(found: Results) -> str | None:
    """What the answers say about the number that was dialled."""
    kinds = {c.kind for c in found.corrections}
    # "Not my case" comes from the applicant on their own number: the case is wrong, not it.
    if kinds & (SCREEN_OUTS - {CorrectionKind.CASE}):
        return Verification.WRONG_NUMBER.value
    if any(v is not None for v in found.answers.values()):
        return Verification.VERIFIED.value
    return None


def _jsonable(value: Any) -> Any:
    json.dumps(value)  # answers are str or int; anything else is a bug worth hearing about
    return value
