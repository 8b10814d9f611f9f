"""The dispatcher: dial the due cases of automated campaigns, paced, each attempt written first.

Each tick, for every automated dialer: count its calls in flight (across all dispatchers),
take a pacing slot from the shared token bucket, claim the next due case, write the attempt
row (the outbox), then ask the dialer to start the call and record when it really was placed
(the retry clock starts there). A provider that refuses for now (429, 5xx) gets the attempt
back as not placed and the dialer rests for the time it asked. Several dispatchers on one
PostgreSQL database never dial a case twice: the claim and the outbox see to it.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import plugins
from callback.attempt_outcomes import attempt_not_placed, finish_attempt, reconcile_unknown
from callback.attempts import attempt_placed, begin_attempt
from callback.calls import CallHandler
from callback.claims import Claim, ClaimError, Scope, claim_next, release
from callback.config import Settings
from callback.db import immediate
from callback.dial_plan import extension_of, next_number
from callback.dialing import (
    FINAL_EVENTS,
    PERSON_DIALERS,
    CallRequest,
    Dialer,
    DialRejected,
    EventKind,
    Pacing,
    RetryableDialError,
)
from callback.errors import CallbackError, ConfigError
from callback.models import (
    AttemptState,
    CallAttempt,
    Campaign,
    CampaignStatus,
    DialerPacing,
    table,
)
from callback.queues import refresh

log = logging.getLogger(__name__)
attempts_t, campaigns_t = table(CallAttempt), table(Campaign)
pacing_t = table(DialerPacing)
SAMPLED, PAUSED = CampaignStatus.SAMPLED.value, CampaignStatus.PAUSED.value
#: How often (seconds) a tick looks for campaigns sampled, resumed, paused or closed since.
LINES_EVERY = 30.0


@dataclass
class Line:
    """One dialer as the dispatcher drives it."""

    name: str
    dialer: Dialer
    campaigns: frozenset[int]
    resting_until: datetime | None = None
    placed: int = 0


@dataclass
class TickReport:
    placed: int = 0
    not_placed: int = 0
    by_dialer: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    """Dial due cases of the automated campaigns; ``tick`` is called by the scheduler."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        worker: str,
        clock: Callable[[], datetime],
        campaigns: Iterable[str] | None = None,
        dialers: Mapping[str, Dialer] | None = None,
        horizon: timedelta = timedelta(seconds=2),
        sleep: Callable[[float], None] = time.sleep,
        lines_every: float = LINES_EVERY,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.horizon = horizon
        self.sleep = sleep
        self.handler = CallHandler(engine, actor=worker, clock=clock)
        self.names = set(campaigns) if campaigns is not None else None
        self.given = dict(dialers or {})
        self.lines_every = lines_every
        if self.names is not None:
            self._check_names(self.names)
        self.lines: list[Line] = []
        self._lines_read = time.monotonic()
        self.update_lines(starting=True)
        self.stopping = False

    def _check_names(self, names: set[str]) -> None:
        with self.engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    sa.select(campaigns_t.c.name, campaigns_t.c.status).where(
                        campaigns_t.c.name.in_(sorted(names))
                    )
                ).all()
            )
        # A paused campaign is taken up when it is resumed; any other is a mistake.
        unknown = {n for n in names if statuses.get(n) not in (SAMPLED, PAUSED)}
        if unknown:
            raise CallbackError(
                f"no sampled campaign named {', '.join(sorted(unknown))} (callback "
                "campaign list shows them)"
            )

    def update_lines(self, starting: bool = False) -> list[str]:
        """Take up the campaigns sampled or resumed since the last look, and let go of those
        paused or closed; return what changed, for the log.

        A service started before a campaign was sampled dials it without a restart. A dialer
        left with no campaign keeps its line (its calls in flight still report), but claims
        nothing. A dialer that cannot be built (its settings are missing) stops the start;
        later it is logged and tried again at the next look, and the other lines go on.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(campaigns_t.c.id, campaigns_t.c.name, campaigns_t.c.dialer).where(
                    campaigns_t.c.status == SAMPLED
                )
            ).all()
        self._lines_read = time.monotonic()
        if self.names is not None:
            rows = [r for r in rows if r.name in self.names]
        by_dialer: dict[str, set[int]] = {}
        for row in rows:
            if row.dialer not in PERSON_DIALERS:
                by_dialer.setdefault(row.dialer, set()).add(row.id)
        lines = list(self.lines)
        by_name = {line.name: line for line in lines}
        changes, taken_up = [], set()
        for name, ids in sorted(by_dialer.items()):
            line = by_name.get(name)
            if line is None:
                try:
                    dialer = self.given[name] if name in self.given else self._build(name)
                except Exception:
                    if starting:
                        raise
                    log.exception("dialer %s for campaigns %s not started", name, sorted(ids))
                    continue
                line = Line(name, dialer, frozenset())
                lines.append(line)
            if line.campaigns != ids:
                taken_up |= ids - line.campaigns
                changes.append(f"{name}: campaigns {sorted(line.campaigns)} -> {sorted(ids)}")
                line.campaigns = frozenset(ids)
        for line in lines:
            if line.name not in by_dialer and line.campaigns:
                changes.append(f"{line.name}: campaigns {sorted(line.campaigns)} -> []")
                line.campaigns = frozenset()
        self.lines = lines  # one assignment: other jobs' loops see the old list or the new
        if not starting:
            # Work out when their items are due, as at start (a resumed campaign's too).
            for campaign_id in sorted(taken_up):
                refresh(self.engine, campaign_id, self.clock())
        return changes

    def _build(self, name: str) -> Dialer:
        cls = plugins.get_dialer(name)
        section = self.settings.section(f"dialers.{name}")
        # Offer only what the constructor names: a third party's dialer written against the
        # two-argument contract must keep working, and one that takes a clock must get ours,
        # or under ``--now`` it would stamp its events with the wall clock.
        accepts = {
            p.name
            for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        extra: dict[str, Any] = {}
        if cls.interactive and "conversation" in accepts:
            extra["conversation"] = self.handler
        if "clock" in accepts:
            extra["clock"] = self.clock
        dialer: Dialer = cls(section, self.handler, **extra)
        return dialer

    # -- the tick ------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Place the calls that are due and that pacing allows; let dialers report."""
        report = TickReport()
        if time.monotonic() - self._lines_read >= self.lines_every:
            for change in self.update_lines():
                log.info("%s", change)
        for line in self.lines:
            if not line.campaigns:
                line.dialer.poll(self.clock())
                continue
            now = self.clock()
            if line.resting_until is not None and now < line.resting_until:
                line.dialer.poll(now)
                continue
            line.resting_until = None
            placed = self._dial(line, report)
            report.by_dialer[line.name] = placed
            line.dialer.poll(self.clock())
        return report

    def _dial(self, line: Line, report: TickReport) -> int:
        pacing = line.dialer.pacing
        room = pacing.max_concurrent - self.in_flight(line.name)
        scope = Scope(campaigns=line.campaigns, dialers=frozenset({line.name}))
        placed = 0
        while room > 0 and not self.stopping:
            now = self.clock()
            slot = reserve_slot(self.engine, line.name, pacing, now, self.horizon)
            if slot is None:
                break
            claim = claim_next(self.engine, self.worker, scope, now)
            if claim is None:
                break  # the slot goes unused: nothing is due
            number = next_number(self.engine, claim, now)
            if number is None:
                release(self.engine, claim.item_id, self.worker)
                continue
            try:
                attempt_id = begin_attempt(self.engine, claim, number, line.name, now)
            except ClaimError as exc:
                log.info("not dialled: %s", exc)
                continue
            wait = (slot - self.clock()).total_seconds()
            if wait > 0:
                self.sleep(wait)
            request = self._request(attempt_id, claim, number, line)
            try:
                call_id = line.dialer.start(request)
            except RetryableDialError as exc:
                if exc.maybe_placed:
                    self._maybe_placed(attempt_id, exc)
                else:
                    attempt_not_placed(self.engine, attempt_id, self.clock(), exc.retry_after,
                                       {"error": str(exc)})  # fmt: skip
                    report.not_placed += 1
                line.resting_until = self.clock() + timedelta(seconds=exc.retry_after)
                log.warning("%s asks to wait %.0f s: %s", line.name, exc.retry_after, exc)
                break
            except DialRejected:
                continue  # its outcome came through the event sink already
            except ConfigError:
                attempt_not_placed(self.engine, attempt_id, self.clock(), 3600.0)
                raise  # every call would fail the same way: stop and say why
            except Exception as exc:  # a dialer's bug must not leave the attempt pending
                log.exception("%s failed to start a call", line.name)
                finish_attempt(self.engine, attempt_id, EventKind.FAILED, self.clock(),
                               {"error": repr(exc)})  # fmt: skip
                continue
            # The extension keyed is the attempt's to remember: the answer came from the
            # switchboard, which a hotline check must not take for the hotline's.
            keyed = {"extension": request.extension} if request.extension else None
            attempt_placed(self.engine, attempt_id, call_id, self.clock(), keyed)
            placed += 1
            room -= 1
        report.placed += placed
        line.placed += placed
        return placed

    def _maybe_placed(self, attempt_id: int, exc: RetryableDialError) -> None:
        """The request may have reached the provider before the connection broke, so the call
        may be ringing now, and its id never came back.

        Recorded as not placed, its case would be due again in seconds and the citizen rung
        twice at once. It is recorded as placed without a call id instead: the call's own
        callbacks name the attempt (its webhook URLs carry the id) and bring its fate and id;
        if none come, ``reconcile`` closes it as unknown (3.16) and the case is rescheduled as
        a new attempt. Either way this attempt is never dialled again.
        """
        attempt_placed(self.engine, attempt_id, None, self.clock(),
                       {"maybe_placed": True, "error": str(exc)})  # fmt: skip

    def _request(self, attempt_id: int, claim: Claim, number: str, line: Line) -> CallRequest:
        settings = line.dialer.settings
        return CallRequest(
            attempt_id,
            number,
            caller_id=settings.get("caller_id"),
            extension=extension_of(self.engine, claim, number),
            ring_timeout=int(settings.get("ring_timeout", 30)),
            metadata={"attempt": claim.attempts + 1},
        )

    def in_flight(self, dialer: str, mine: bool = False) -> int:
        """Calls of this dialer not yet ended, whichever dispatcher placed them (or ours)."""
        query = sa.select(sa.func.count()).where(
            attempts_t.c.dialer == dialer,
            attempts_t.c.state.in_([AttemptState.PENDING, AttemptState.PLACED]),
        )
        if mine:
            query = query.where(attempts_t.c.worker == self.worker)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- after a crash -------------------------------------------------------------------

    def reconcile(self, older_than: timedelta) -> int:
        """Settle attempts that outlived their dispatcher: ask the provider, else close them.

        An attempt still pending or placed after ``older_than`` (longer than any call) was
        left by a dispatcher that died. A placed call's provider is asked what became of it;
        whatever it cannot say is closed as unknown (code 3.16) and its case rescheduled as a
        new attempt: the same attempt is never dialled again.
        """
        now = self.clock()
        cutoff = now - older_than
        started = sa.func.coalesce(attempts_t.c.placed_at, attempts_t.c.created_at)
        by_name = {line.name: line for line in self.lines}
        out = attempts_t.c.state.in_([AttemptState.PENDING, AttemptState.PLACED])
        with self.engine.connect() as conn:
            stale = conn.execute(
                sa.select(
                    attempts_t.c.id,
                    attempts_t.c.dialer,
                    attempts_t.c.provider_call_id,
                    attempts_t.c.worker,
                    started.label("started"),
                )
                .where(out)
                .order_by(attempts_t.c.id)
            ).all()
        # Old enough to have been abandoned, or left by a dispatcher of this host that is dead
        # (a crash and a restart: there is no need to wait for the timeout to know).
        stale = [a for a in stale if a.started < cutoff or _dead_here(a.worker)]
        settled = 0
        for attempt in stale:
            line = by_name.get(attempt.dialer)
            if line is None or attempt.provider_call_id is None:
                continue
            try:
                event = line.dialer.status(attempt.provider_call_id, attempt.id)
            except Exception:  # the provider cannot be asked now: close it below
                log.warning("could not ask %s about call %s", attempt.dialer,
                            attempt.provider_call_id, exc_info=True)  # fmt: skip
                event = None
            if event is not None and event.kind in FINAL_EVENTS:
                self.handler(event)
                settled += 1
        dead = [a.id for a in stale if a.started >= cutoff]
        settled += len(reconcile_unknown(self.engine, older_than, now))
        if dead:
            settled += len(reconcile_unknown(self.engine, timedelta(0), now, only=dead))
        return settled

    def close(self) -> None:
        for line in self.lines:
            line.dialer.close()


def _dead_here(worker: str) -> bool:
    """True for "dispatcher:<this host>:<pid>" when that process no longer runs."""
    parts = worker.split(":")
    if len(parts) != 3 or parts[0] != "dispatcher" or parts[1] != socket.gethostname():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, but another user's
        return False
    return False


def reserve_slot(
    engine: Engine, dialer: str, pacing: Pacing, now: datetime, horizon: timedelta
) -> datetime | None:
    """Take the dialer's next pacing slot if it falls within ``horizon``; None if not.

    The bucket is one row per dialer, locked while a slot is taken, so dispatchers sharing
    a provider account share its rate. A slot may lie a little ahead: the caller waits for it.
    """
    interval = timedelta(seconds=1 / pacing.calls_per_second)
    locked = sa.select(pacing_t.c.next_at).where(pacing_t.c.dialer == dialer).with_for_update()
    with immediate(engine) as conn:
        row = conn.execute(locked).first()
        if row is None:
            try:  # the first slot ever; another dispatcher may be taking it at this moment
                with conn.begin_nested():
                    conn.execute(sa.insert(pacing_t).values(dialer=dialer, next_at=now))
            except sa.exc.IntegrityError:
                pass
            row = conn.execute(locked).one()
        slot = max(row.next_at, now)
        if slot > now + horizon:
            return None
        conn.execute(
            sa.update(pacing_t).where(pacing_t.c.dialer == dialer).values(next_at=slot + interval)
        )
        return slot


def describe(lines: Iterable[Line]) -> list[dict[str, Any]]:
    return [
        {"dialer": line.name, "campaigns": sorted(line.campaigns),
         "pacing": line.dialer.pacing.__dict__}
        for line in lines
    ]  # fmt: skip
