"""Queues and claims: rules as JSON, scheduling, claim order, leases, scopes, the outbox,
finishing, reconciliation and the status table."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from callback.appointments import AppointmentError
from callback.attempt_outcomes import finish_attempt, reconcile_unknown
from callback.attempts import attempt_placed, begin_attempt
from callback.claims import (
    AttemptInProgress,
    ClaimLost,
    NotCallable,
    NumberNotUsable,
    OnDoNotCallList,
    Scope,
    agent_scope,
    claim_next,
    release,
    release_expired,
)
from callback.cli.output import width
from callback.decisions import is_callable
from callback.dial_plan import next_number
from callback.dialing import EventKind
from callback.dispositions import AgentOutcome, Disposition, Progress
from callback.errors import CallbackError, ConfigError
from callback.models import (
    Agent,
    CallAttempt,
    Campaign,
    Case,
    Contact,
    DoNotCall,
    Hotline,
    QueueItem,
    Unit,
    agent_units,
    table,
)
from callback.queue_status import queue_status
from callback.queues import refresh, rules_from_json, rules_to_json
from callback.rules import Appointment, CallingRules, Outcome, Slot, Window

SH = ZoneInfo("Asia/Shanghai")
A, B, C = "+8613800001111", "+8613900002222", "+8657187654321"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


NOW = sh(2026, 6, 10, 10, 0)  # a Wednesday, in the morning window and the "morning" slot
_seq = itertools.count(1)


# -- a small world, written straight into the tables -------------------------------------------


def add_unit(engine: Engine, name: str | None = None) -> int:
    with engine.begin() as conn:
        return conn.execute(
            table(Unit)
            .insert()
            .values(name=name or f"单位{next(_seq)}", kind="town", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()


def add_campaign(
    engine: Engine,
    name: str | None = None,
    *,
    rules: CallingRules | None = None,
    deadline: datetime | None = None,
    dialer: str = "manual",
    status: str = "sampled",
) -> int:
    with engine.begin() as conn:
        return conn.execute(
            table(Campaign)
            .insert()
            .values(
                name=name or f"campaign-{next(_seq)}",
                target="cases",
                script="service-callback",
                dialer=dialer,
                period_start=date(2026, 5, 1),
                period_end=date(2026, 5, 31),
                deadline=deadline,
                rules=rules_to_json(rules or CallingRules()),
                design={},
                review_corrections=False,
                status=status,
                created_by="tester",
                created_at=NOW,
            )
            .returning(table(Campaign).c.id)
        ).scalar_one()


def add_item(
    engine: Engine,
    campaign_id: int,
    unit_id: int,
    numbers: tuple[str, ...] = (A,),
    **values: Any,
) -> int:
    """A sampled case with valid numbers, queued as sampling leaves it (due_at NULL)."""
    n = next(_seq)
    with engine.begin() as conn:
        case_id = conn.execute(
            table(Case)
            .insert()
            .values(
                case_no=f"CASE-{n}",
                item_name="营业执照办理",
                unit_id=unit_id,
                applicant_type="person",
                handled_at=sh(2026, 5, 20, 9),
            )
            .returning(table(Case).c.id)
        ).scalar_one()
        for position, number in enumerate(numbers):
            conn.execute(
                table(Contact)
                .insert()
                .values(
                    case_id=case_id,
                    position=position,
                    raw=number,
                    e164=number,
                    kind="mobile",
                    validity="valid",
                    source="import",
                    created_at=NOW,
                )
            )
        row = dict(
            campaign_id=campaign_id,
            unit_id=unit_id,
            case_id=case_id,
            stratum="s",
            inclusion_probability=0.5,
            weight=2.0,
            state="open",
            wait_reason="new",
        )
        row.update(values)
        return conn.execute(
            table(QueueItem).insert().values(**row).returning(table(QueueItem).c.id)
        ).scalar_one()


def item(engine: Engine, item_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table(QueueItem)).where(table(QueueItem).c.id == item_id)
        ).one()


def attempts_of(engine: Engine, item_id: int) -> list[Any]:
    t = table(CallAttempt)
    with engine.connect() as conn:
        return conn.execute(sa.select(t).where(t.c.queue_item_id == item_id).order_by(t.c.id)).all()


def set_item(engine: Engine, item_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            table(QueueItem).update().where(table(QueueItem).c.id == item_id).values(**values)
        )


def add_dnc(engine: Engine, number: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            table(DoNotCall)
            .insert()
            .values(e164=number, source="citizen", added_by="tester", added_at=NOW)
        )


@pytest.fixture
def world(engine: Engine) -> tuple[int, int]:
    """One unit and one sampled campaign with the default rules."""
    return add_campaign(engine), add_unit(engine)


def call(
    engine: Engine,
    worker: str,
    now: datetime,
    outcome: EventKind | AgentOutcome | str = EventKind.NO_ANSWER,
    **finish: Any,
) -> Any:
    """Claim, dial the rules' number, and finish with ``outcome``; return the result."""
    claim = claim_next(engine, worker, now=now)
    assert claim is not None
    number = next_number(engine, claim, now)
    assert number is not None
    attempt_id = begin_attempt(engine, claim, number, "manual", now)
    assert attempt_placed(engine, attempt_id, f"call-{attempt_id}", now)
    return finish_attempt(engine, attempt_id, outcome, now, **finish)


# -- calling rules as JSON ---------------------------------------------------------------------


def test_rules_survive_a_round_trip_through_json() -> None:
    rules = CallingRules(
        windows=(Window(time(8, 30), time(11, 45), frozenset({0, 1, 2, 3, 4})),),
        timezone="Asia/Shanghai",
        max_attempts_per_case=4,
        max_attempts_per_number=2,
        retry_delays={Outcome.BUSY: timedelta(minutes=5), Outcome.NO_ANSWER: timedelta(hours=3)},
        slots=(Slot("early", time(8, 30), time(10)), Slot("late", time(10), time(11, 45))),
        min_gap=timedelta(minutes=15),
        spread_after=frozenset({Outcome.NO_ANSWER}),
        closed_dates=frozenset({date(2026, 6, 12)}),
    )
    stored = json.loads(json.dumps(rules_to_json(rules)))
    deadline = sh(2026, 6, 30, 18)
    assert rules_from_json(stored, deadline) == CallingRules(
        **{**rules.__dict__, "deadline": deadline}
    )
    assert stored["windows"] == [{"start": "08:30", "end": "11:45", "weekdays": [0, 1, 2, 3, 4]}]
    assert stored["retry_delay_minutes"]["busy"] == 5


def test_empty_rules_json_gives_the_defaults() -> None:
    assert rules_from_json({}) == CallingRules()


def test_a_misspelt_rule_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_attempts_per_cse"):
        rules_from_json({"max_attempts_per_cse": 3})


@pytest.mark.parametrize(
    "data",
    [
        {"windows": [{"start": "9", "end": "12:00"}]},
        {"windows": [{"start": "12:00", "end": "09:00"}]},
        {"max_attempts_per_case": "6"},
        {"retry_delay_minutes": {"ringing": 5}},
        {"timezone": "Mars/Olympus"},
        {"closed_dates": ["2026-13-01"]},
        [],
    ],
)
def test_bad_rule_values_are_config_errors(data: Any) -> None:
    with pytest.raises(ConfigError):
        rules_from_json(data)


def test_more_than_four_slots_are_refused() -> None:
    slots = [{"name": f"s{h}", "start": f"{h:02}:00", "end": f"{h:02}:30"} for h in range(9, 14)]
    with pytest.raises(ConfigError, match="at most 4"):
        rules_from_json({"slots": slots})


# -- scheduling --------------------------------------------------------------------------------


def test_refresh_makes_new_items_due_at_once_in_the_window(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    assert refresh(engine, campaign, NOW) == 1
    row = item(engine, item_id)
    assert (row.due_at, row.wait_reason) == (NOW, "new")
    assert refresh(engine, campaign, NOW) == 0  # nothing changed


def test_refresh_out_of_hours_waits_for_the_next_window(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, sh(2026, 6, 18, 21))  # Thursday evening before the holiday
    row = item(engine, item_id)
    # Friday 19 June to Sunday 21 June 2026 is the Dragon Boat Festival.
    assert row.due_at == sh(2026, 6, 22, 9) and row.wait_reason == "new"


def test_refresh_uses_only_valid_current_numbers(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, numbers=(A, B))
    with engine.begin() as conn:
        t = table(Contact)
        conn.execute(t.update().where(t.c.e164 == A).values(superseded_at=NOW))
        conn.execute(t.update().where(t.c.e164 == B).values(validity="fake"))
    refresh(engine, campaign, NOW)
    row = item(engine, item_id)
    assert (row.due_at, row.wait_reason) == (None, "numbers-exhausted")


def test_refresh_holds_back_a_case_whose_numbers_are_all_do_not_call(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, numbers=(A,))
    add_dnc(engine, A)
    refresh(engine, campaign, NOW)
    assert item(engine, item_id).wait_reason == "do-not-call"


def test_refresh_after_the_deadline_waits_for_nothing(engine: Engine) -> None:
    campaign = add_campaign(engine, deadline=sh(2026, 6, 10, 9))
    item_id = add_item(engine, campaign, add_unit(engine))
    refresh(engine, campaign, NOW)
    row = item(engine, item_id)
    assert (row.due_at, row.wait_reason) == (None, "deadline")


def test_refresh_leaves_finished_items_alone(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, state="finished", final_disposition="1.1")
    assert refresh(engine, campaign, NOW) == 0
    assert item(engine, item_id).due_at is None


def test_a_hotline_check_waits_for_its_planned_time(engine: Engine, world) -> None:
    campaign, unit = world
    with engine.begin() as conn:
        hotline = conn.execute(
            table(Hotline)
            .insert()
            .values(unit_id=unit, e164=C, created_at=NOW)
            .returning(table(Hotline).c.id)
        ).scalar_one()
        item_id = conn.execute(
            table(QueueItem)
            .insert()
            .values(
                campaign_id=campaign,
                unit_id=unit,
                hotline_id=hotline,
                stratum="hotline",
                inclusion_probability=1.0,
                weight=1.0,
                state="open",
                wait_reason="new",
                appointment_at=sh(2026, 6, 10, 15, 30),
            )
            .returning(table(QueueItem).c.id)
        ).scalar_one()
    refresh(engine, campaign, NOW)
    row = item(engine, item_id)
    assert (row.due_at, row.wait_reason) == (sh(2026, 6, 10, 15, 30), "appointment")
    assert claim_next(engine, "a", now=NOW) is None
    claim = claim_next(engine, "a", now=sh(2026, 6, 10, 15, 30))
    assert claim is not None and claim.appointment
    assert next_number(engine, claim, sh(2026, 6, 10, 15, 30)) == C


# -- the claim order ---------------------------------------------------------------------------


def test_a_worker_gets_back_the_item_it_holds_first(engine: Engine, world) -> None:
    campaign, unit = world
    low = add_item(engine, campaign, unit, priority=0)
    add_item(engine, campaign, unit, priority=5)
    refresh(engine, campaign, NOW)
    set_item(engine, low, held_by="ann", held_at=NOW - timedelta(minutes=1))
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None and claim.item_id == low and claim.held_at == NOW


def test_due_appointments_come_before_priority(engine: Engine, world) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit, priority=9)
    booked = add_item(engine, campaign, unit, appointment_at=NOW - timedelta(minutes=5))
    later = add_item(engine, campaign, unit, appointment_at=NOW + timedelta(hours=1))
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None and claim.item_id == booked and claim.appointment
    assert item(engine, later).due_at == NOW + timedelta(hours=1)


def test_an_appointment_with_an_agent_waits_for_them_then_for_anyone(engine: Engine, world) -> None:
    campaign, unit = world
    plain = add_item(engine, campaign, unit)
    booked = add_item(
        engine, campaign, unit, appointment_at=NOW, appointment_agent="bob", priority=-1
    )
    refresh(engine, campaign, NOW)
    first = claim_next(engine, "ann", now=NOW)
    assert first is not None and first.item_id == plain  # not ann's appointment
    release(engine, plain, "ann")
    mine = claim_next(engine, "bob", now=NOW)
    assert mine is not None and mine.item_id == booked
    release(engine, booked, "bob")
    late = NOW + timedelta(minutes=31)  # bob did not come within the reserve
    anyone = claim_next(engine, "ann", now=late)
    assert anyone is not None and anyone.item_id == booked and anyone.appointment


def test_higher_priority_comes_first(engine: Engine, world) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit, priority=0)
    urgent = add_item(engine, campaign, unit, priority=3)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None and claim.item_id == urgent


def test_fewest_attempts_in_the_current_slot_come_first(engine: Engine, world) -> None:
    campaign, unit = world
    old = NOW - timedelta(days=2)
    # Slot 0 is the morning, slot 2 the evening (DEFAULT_SLOTS).
    tried_mornings = add_item(engine, campaign, unit, slot0_attempts=2, attempts=2)
    tried_evenings = add_item(engine, campaign, unit, slot2_attempts=2, attempts=2)
    for item_id in (tried_mornings, tried_evenings):
        set_item(engine, item_id, due_at=old, wait_reason="retry", last_attempt_at=old)
    morning = claim_next(engine, "ann", now=NOW)
    assert morning is not None and morning.item_id == tried_evenings
    release(engine, tried_evenings, "ann")
    evening = claim_next(engine, "ann", now=sh(2026, 6, 10, 18))
    assert evening is not None and evening.item_id == tried_mornings


def test_never_attempted_then_the_oldest_last_attempt(engine: Engine, world) -> None:
    campaign, unit = world
    ids = [add_item(engine, campaign, unit) for _ in range(3)]
    refresh(engine, campaign, NOW)
    set_item(engine, ids[0], last_attempt_at=NOW - timedelta(hours=3))
    set_item(engine, ids[1], last_attempt_at=NOW - timedelta(hours=5))
    order = []
    for _ in ids:
        claim = claim_next(engine, "ann", now=NOW)
        assert claim is not None
        order.append(claim.item_id)
        set_item(engine, claim.item_id, held_by="done", held_at=NOW)
    assert order == [ids[2], ids[1], ids[0]]
    assert claim_next(engine, "ann", now=NOW) is None


def test_items_held_by_others_or_not_due_are_not_claimed(engine: Engine, world) -> None:
    campaign, unit = world
    held = add_item(engine, campaign, unit)
    later = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    set_item(engine, held, held_by="bob", held_at=NOW - timedelta(minutes=9))
    set_item(engine, later, due_at=NOW + timedelta(minutes=1))
    assert claim_next(engine, "ann", now=NOW) is None


def test_a_vanished_workers_claim_expires_after_the_lease(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    assert claim_next(engine, "bob", now=NOW) is not None
    assert claim_next(engine, "ann", now=NOW + timedelta(minutes=9)) is None
    claim = claim_next(engine, "ann", now=NOW + timedelta(minutes=11))
    assert claim is not None and claim.item_id == item_id
    assert item(engine, item_id).held_by == "ann"


def test_release_expired_frees_only_old_claims(engine: Engine, world) -> None:
    campaign, unit = world
    old, fresh = add_item(engine, campaign, unit), add_item(engine, campaign, unit)
    set_item(engine, old, held_by="bob", held_at=NOW - timedelta(minutes=11))
    set_item(engine, fresh, held_by="ann", held_at=NOW - timedelta(minutes=1))
    assert release_expired(engine, NOW) == 1
    assert item(engine, old).held_by is None and item(engine, fresh).held_by == "ann"


def test_release_gives_an_item_back_only_from_its_holder(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim_next(engine, "ann", now=NOW)
    assert not release(engine, item_id, "bob")
    assert release(engine, item_id, "ann")
    assert item(engine, item_id).held_by is None


# -- scopes --------------------------------------------------------------------------------------


def test_a_scope_of_units_sees_only_those_queues(engine: Engine, world) -> None:
    campaign, unit = world
    other = add_unit(engine)
    add_item(engine, campaign, unit, priority=5)
    mine = add_item(engine, campaign, other)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", Scope(units=frozenset({other})), NOW)
    assert claim is not None and claim.item_id == mine
    assert claim_next(engine, "ann", Scope(units=frozenset()), NOW) is None


def test_agent_scope_reads_the_units_an_agent_works_for(engine: Engine, world) -> None:
    campaign, unit = world
    other = add_unit(engine)
    add_item(engine, campaign, unit, priority=5)
    theirs = add_item(engine, campaign, other)
    refresh(engine, campaign, NOW)
    with engine.begin() as conn:
        agent = conn.execute(
            table(Agent)
            .insert()
            .values(login="ann", created_at=NOW, active=True)
            .returning(table(Agent).c.id)
        ).scalar_one()
        conn.execute(agent_units.insert().values(agent_id=agent, unit_id=other))
    scope = agent_scope(engine, "ann")
    assert scope.units == {other}
    claim = claim_next(engine, "ann", scope, NOW)
    assert claim is not None and claim.item_id == theirs
    with pytest.raises(CallbackError, match="no active agent"):
        agent_scope(engine, "nobody")


def test_a_scope_of_campaigns_and_of_dialers(engine: Engine, world) -> None:
    manual, unit = world
    robot = add_campaign(engine, dialer="simulated")
    by_hand = add_item(engine, manual, unit, priority=5)
    automated = add_item(engine, robot, unit)
    refresh(engine, manual, NOW)
    refresh(engine, robot, NOW)
    claim = claim_next(engine, "dispatcher:h:1", Scope(dialers=frozenset({"simulated"})), NOW)
    assert claim is not None and claim.item_id == automated
    assert claim_next(engine, "x", Scope(campaigns=frozenset({robot})), NOW) is None
    claim = claim_next(engine, "x", Scope(campaigns=frozenset({manual})), NOW)
    assert claim is not None and claim.item_id == by_hand


# -- never outside the calling window ------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        sh(2026, 6, 10, 8, 59),  # before the morning window
        sh(2026, 6, 10, 12, 30),  # lunch
        sh(2026, 6, 10, 20, 0),  # the evening window has closed
        sh(2026, 6, 13, 10, 0),  # Saturday
        sh(2026, 6, 19, 10, 0),  # Dragon Boat Festival (a Friday)
        sh(2027, 6, 9, 10, 0),  # a year the holiday calendar does not know yet
    ],
)
def test_nothing_is_claimed_outside_the_calling_window(engine: Engine, world, when) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit, due_at=NOW - timedelta(days=1), wait_reason="new")
    assert claim_next(engine, "ann", now=when) is None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    when=st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2026, 12, 31, 23, 59),
        timezones=st.just(SH),
    )
)
def test_a_claim_is_made_exactly_when_the_rules_allow_a_call(
    engine: Engine, world, when: datetime
) -> None:
    campaign, unit = world
    with engine.begin() as conn:
        exists = conn.execute(sa.select(sa.func.count()).select_from(table(QueueItem))).scalar()
    if not exists:
        add_item(engine, campaign, unit, due_at=sh(2025, 12, 1, 10), wait_reason="new")
    claim = claim_next(engine, "ann", now=when)
    assert (claim is not None) == is_callable(CallingRules(), when)
    if claim is not None:
        release(engine, claim.item_id, "ann")


def test_a_swapped_working_saturday_is_callable(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, due_at=sh(2026, 5, 8, 10), wait_reason="new")
    claim = claim_next(engine, "ann", now=sh(2026, 5, 9, 10))  # 调休: a working Saturday
    assert claim is not None and claim.item_id == item_id


def test_nothing_is_claimed_after_the_deadline(engine: Engine) -> None:
    campaign = add_campaign(engine, deadline=sh(2026, 6, 10, 11))
    add_item(engine, campaign, add_unit(engine), due_at=NOW, wait_reason="new")
    assert claim_next(engine, "ann", now=sh(2026, 6, 10, 10, 59)) is not None
    release_expired(engine, sh(2026, 6, 11), lease=timedelta(0))
    assert claim_next(engine, "ann", now=sh(2026, 6, 10, 11)) is None


@pytest.mark.parametrize("status", ["draft", "closed"])
def test_only_sampled_campaigns_are_claimed(engine: Engine, status: str) -> None:
    campaign = add_campaign(engine, status=status)
    add_item(engine, campaign, add_unit(engine), due_at=NOW, wait_reason="new")
    assert claim_next(engine, "ann", now=NOW) is None


# -- the outbox: begin_attempt -------------------------------------------------------------------


def test_begin_attempt_writes_a_pending_attempt_and_blocks_the_item(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    attempt_id = begin_attempt(engine, claim, A, "manual", NOW)
    (attempt,) = attempts_of(engine, item_id)
    assert (attempt.id, attempt.state, attempt.number, attempt.worker) == (
        attempt_id,
        "pending",
        A,
        "ann",
    )
    assert attempt.contact_id is not None
    row = item(engine, item_id)
    assert (row.due_at, row.wait_reason, row.held_by) == (None, "in-progress", "ann")
    # Even once the lease has long expired, nobody claims an item whose attempt is out.
    assert claim_next(engine, "bob", now=NOW + timedelta(hours=1)) is None


def test_a_number_put_on_the_do_not_call_list_after_sampling_is_never_dialled(
    engine: Engine, world
) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, numbers=(A, B))
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    add_dnc(engine, A)  # the citizen called the office after the queue was filled
    with pytest.raises(OnDoNotCallList, match=r"\+86138\*\*\*\*1111"):
        begin_attempt(engine, claim, A, "manual", NOW)
    assert attempts_of(engine, item_id) == []
    row = item(engine, item_id)
    assert row.held_by is None and row.due_at == NOW  # released, due on the other number
    again = claim_next(engine, "ann", now=NOW)
    assert again is not None and next_number(engine, again, NOW) == B


def test_begin_attempt_refuses_a_claim_that_was_lost(engine: Engine, world) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    later = NOW + timedelta(minutes=11)
    assert claim_next(engine, "bob", now=later) is not None
    with pytest.raises(ClaimLost):
        begin_attempt(engine, claim, A, "manual", later)


def test_begin_attempt_refuses_a_second_attempt_while_one_is_out(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    begin_attempt(engine, claim, A, "manual", NOW)
    with pytest.raises(AttemptInProgress):
        begin_attempt(engine, claim, A, "manual", NOW)
    assert len(attempts_of(engine, item_id)) == 1


def test_begin_attempt_refuses_once_the_window_has_closed(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, sh(2026, 6, 10, 11, 59))
    claim = claim_next(engine, "ann", now=sh(2026, 6, 10, 11, 59))
    assert claim is not None
    with pytest.raises(NotCallable):
        begin_attempt(engine, claim, A, "manual", sh(2026, 6, 10, 12, 0))
    row = item(engine, item_id)
    assert row.held_by is None and row.due_at == sh(2026, 6, 10, 14)


def test_begin_attempt_refuses_a_number_not_of_the_case(engine: Engine, world) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    with pytest.raises(NumberNotUsable):
        begin_attempt(engine, claim, B, "manual", NOW)


# -- placed and finished: idempotent ---------------------------------------------------------------


def test_attempt_placed_twice_changes_nothing(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    attempt_id = begin_attempt(engine, claim, A, "manual", NOW)
    assert attempt_placed(engine, attempt_id, "CA1", NOW + timedelta(seconds=2))
    assert not attempt_placed(engine, attempt_id, "CA2", NOW + timedelta(seconds=9))
    (attempt,) = attempts_of(engine, item_id)
    assert (attempt.state, attempt.provider_call_id) == ("placed", "CA1")
    assert attempt.placed_at == NOW + timedelta(seconds=2)


def test_finish_attempt_twice_changes_nothing(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    first = call(engine, "ann", NOW, EventKind.NO_ANSWER)
    assert first.changed and first.disposition == "3.13"
    before = item(engine, item_id)
    again = finish_attempt(engine, first.attempt_id, EventKind.BUSY, NOW + timedelta(minutes=1))
    assert not again.changed and again.disposition == "3.13"
    assert item(engine, item_id) == before
    assert not attempt_placed(engine, first.attempt_id, "late", NOW + timedelta(minutes=2))


def test_no_answer_is_retried_after_its_delay_from_when_the_call_was_placed(
    engine: Engine, world
) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    attempt_id = begin_attempt(engine, claim, A, "manual", NOW)
    placed = NOW + timedelta(minutes=3)  # the dialer took three minutes to place it
    attempt_placed(engine, attempt_id, "CA1", placed)
    result = finish_attempt(engine, attempt_id, EventKind.NO_ANSWER, placed + timedelta(minutes=1))
    row = item(engine, item_id)
    assert not result.finished and result.wait_reason == "retry"
    # Two hours after placing, in another slot than the morning: the afternoon at 14:00.
    assert row.due_at == sh(2026, 6, 10, 14, 0)
    assert (row.attempts, row.slot0_attempts, row.last_attempt_at) == (1, 1, placed)
    assert row.held_by is None


def test_a_final_outcome_finishes_the_case(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    call(engine, "ann", NOW, EventKind.NO_ANSWER)
    later = sh(2026, 6, 10, 15)
    result = call(engine, "ann", later, EventKind.COMPLETED, progress=Progress.ALL)
    assert result.finished and result.final_disposition == "1.1"
    row = item(engine, item_id)
    assert (row.state, row.final_disposition, row.due_at, row.finished_at) == (
        "finished",
        "1.1",
        None,
        later,
    )
    assert claim_next(engine, "ann", now=sh(2026, 6, 11, 10)) is None


def test_the_callers_code_overrides_the_outcomes(engine: Engine, world) -> None:
    campaign, unit = world
    add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    result = call(engine, "ann", NOW, EventKind.COMPLETED, final=Disposition.PARTIAL)
    assert (result.disposition, result.final_disposition) == ("1.2", "1.2")


def test_the_attempt_limit_finishes_the_case_with_its_final_code(engine: Engine) -> None:
    rules = CallingRules(max_attempts_per_case=2, min_gap=timedelta(0))
    campaign = add_campaign(engine, rules=rules)
    item_id = add_item(engine, campaign, add_unit(engine))
    refresh(engine, campaign, NOW)
    first = call(engine, "ann", NOW, AgentOutcome.APPLICANT_UNAVAILABLE)
    assert not first.finished
    second = call(engine, "ann", first.due_at, EventKind.NO_ANSWER)
    # A contact (2.21, never available) beats an unknown (3.13) when the limit closes the case.
    assert second.finished and second.final_disposition == "2.21"
    assert item(engine, item_id).attempts == 2


def test_a_final_outcome_wins_at_the_last_attempt(engine: Engine) -> None:
    campaign = add_campaign(engine, rules=CallingRules(max_attempts_per_case=1))
    add_item(engine, campaign, add_unit(engine))
    refresh(engine, campaign, NOW)
    result = call(engine, "ann", NOW, AgentOutcome.REFUSED)
    assert result.final_disposition == "2.112"


def test_a_dead_number_moves_on_to_the_next_then_closes(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit, numbers=(A, B))
    refresh(engine, campaign, NOW)
    first = call(engine, "ann", NOW, AgentOutcome.DEAD_NUMBER)
    assert not first.finished and first.due_at == NOW + timedelta(minutes=10)
    claim = claim_next(engine, "ann", now=first.due_at)
    assert claim is not None and next_number(engine, claim, first.due_at) == B
    release(engine, claim.item_id, "ann")
    last = call(engine, "ann", first.due_at, AgentOutcome.WRONG_PERSON)
    assert last.finished and last.final_disposition == "2.291"
    assert item(engine, item_id).state == "finished"


def test_an_appointment_is_kept_and_served_first(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    add_item(engine, campaign, unit, priority=9)
    refresh(engine, campaign, NOW)
    set_item(engine, item_id, priority=10)  # so that it is the one called first
    at = sh(2026, 6, 11, 16, 30)
    result = call(
        engine, "ann", NOW, AgentOutcome.APPOINTMENT, appointment=Appointment(at, agent="ann")
    )
    assert (result.due_at, result.wait_reason, result.disposition) == (at, "appointment", "2.35")
    set_item(engine, item_id, priority=0)
    claim = claim_next(engine, "ann", now=at)
    assert claim is not None and claim.item_id == item_id and claim.appointment
    release(engine, item_id, "ann")
    kept = call(engine, "ann", at, EventKind.NO_ANSWER)
    row = item(engine, item_id)
    assert kept.wait_reason == "retry" and row.appointment_at is None  # used up


def test_an_appointment_outside_the_window_records_nothing(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    claim = claim_next(engine, "ann", now=NOW)
    assert claim is not None
    attempt_id = begin_attempt(engine, claim, A, "manual", NOW)
    with pytest.raises(AppointmentError, match="outside the calling windows"):
        finish_attempt(
            engine,
            attempt_id,
            AgentOutcome.APPOINTMENT,
            NOW,
            appointment=Appointment(sh(2026, 6, 10, 22)),
        )
    (attempt,) = attempts_of(engine, item_id)
    assert attempt.state == "pending" and item(engine, item_id).attempts == 0


# -- reconciliation ------------------------------------------------------------------------------


def test_reconcile_marks_stale_attempts_unknown_and_reschedules(engine: Engine, world) -> None:
    campaign, unit = world
    item_id = add_item(engine, campaign, unit)
    fresh_id = add_item(engine, campaign, unit)
    refresh(engine, campaign, NOW)
    stale = claim_next(engine, "dispatcher:a:1", now=NOW)
    assert stale is not None and stale.item_id == item_id
    stale_attempt = begin_attempt(engine, stale, A, "simulated", NOW)
    attempt_placed(engine, stale_attempt, "SIM-1", NOW)
    later = NOW + timedelta(minutes=50)
    fresh = claim_next(engine, "dispatcher:a:2", now=later)
    assert fresh is not None and fresh.item_id == fresh_id
    begin_attempt(engine, fresh, A, "simulated", later)

    done = reconcile_unknown(engine, timedelta(minutes=30), NOW + timedelta(hours=1))
    assert done == [stale_attempt]
    (attempt,) = attempts_of(engine, item_id)
    assert (attempt.state, attempt.disposition) == ("unknown", "3.16")
    row = item(engine, item_id)
    assert row.attempts == 1 and row.held_by is None and row.wait_reason == "retry"
    assert row.due_at == NOW + timedelta(hours=1)  # 30 minutes after a failure, in the window
    assert attempts_of(engine, fresh_id)[0].state == "pending"
    # The dead worker's call reports back at last: it is never re-opened.
    late = finish_attempt(engine, stale_attempt, EventKind.COMPLETED, NOW + timedelta(hours=2))
    assert not late.changed


# -- queue status ------------------------------------------------------------------------------


def test_queue_status_counts_every_kind_of_wait(engine: Engine) -> None:
    campaign = add_campaign(engine, name="2026-W24")
    east, west = add_unit(engine, "东区"), add_unit(engine, "西区")
    for _ in range(3):
        add_item(engine, campaign, east)  # due
    held = add_item(engine, campaign, east)
    retry = add_item(engine, campaign, east)
    booked = add_item(engine, campaign, east, appointment_at=NOW + timedelta(hours=2))
    blocked = add_item(engine, campaign, west, numbers=(B,))
    add_item(engine, campaign, west, state="finished", final_disposition="1.1")
    add_item(engine, campaign, west, state="finished", final_disposition="2.112")
    add_item(engine, campaign, west, state="finished", final_disposition="1.1")
    add_dnc(engine, B)
    refresh(engine, campaign, NOW)
    set_item(engine, held, held_by="ann", held_at=NOW)
    set_item(engine, retry, due_at=NOW + timedelta(hours=1), wait_reason="retry")
    assert item(engine, booked).wait_reason == "appointment"
    assert item(engine, blocked).wait_reason == "do-not-call"

    rows = {r.unit: r for r in queue_status(engine, NOW)}
    e, w = rows["东区"], rows["西区"]
    assert (e.calling, e.due, e.held, e.retry, e.appointment, e.other, e.finished) == (
        True, 3, 1, 1, 1, 0, 0,
    )  # fmt: skip
    assert (w.due, w.other, w.waiting, w.finished) == (0, 1, {"do-not-call": 1}, 3)
    assert w.dispositions == {"1.1": 2, "2.112": 1}
    assert [r.unit for r in queue_status(engine, NOW, unit="西区")] == ["西区"]
    assert queue_status(engine, NOW, campaign="nope") == []
    # An hour and a half later the retry is due, and ann's claim has lapsed.
    later = {r.unit: r for r in queue_status(engine, NOW + timedelta(minutes=90))}["东区"]
    assert (later.due, later.held, later.retry, later.appointment) == (5, 0, 0, 1)


@pytest.fixture
def queue_command() -> None:
    """Register ``callback queue`` on the root group if callback.cli has not yet."""
    from callback.cli import cli as root
    from callback.cli.queue import queue

    if "queue" not in root.commands:
        root.add_command(queue)


@pytest.mark.usefixtures("queue_command")
def test_queue_status_command_prints_a_table_and_json(cli, engine: Engine) -> None:
    campaign = add_campaign(engine, name="2026-W24")
    unit = add_unit(engine, "西湖区市场监管局")
    add_item(engine, campaign, unit)
    add_item(engine, campaign, unit, state="finished", final_disposition="1.1")
    refresh(engine, campaign, NOW)
    result = cli("queue", "status", "--at", "2026-06-10 10:00")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "campaign", "unit", "calling", "due", "held", "retry", "appointment", "other",
        "finished", "tester",
    ]  # fmt: skip
    assert lines[2].split() == [
        "2026-W24", "西湖区市场监管局", "yes", "1", "0", "0", "0", "0", "1", "0",
    ]  # fmt: skip
    assert "完成访问" in result.output
    # The CJK unit name counts double, so the columns line up on a terminal.
    head, row = lines[0], lines[2]
    assert width(head[: head.index("calling")]) == width(row[: row.index("yes")])
    as_json = cli("queue", "status", "--json", "--campaign", "2026-W24", "--at", "2026-06-10 21:00")
    data = json.loads(as_json.output)
    assert data[0]["calling"] is False and data[0]["due"] == 1 and data[0]["open"] == 1
    assert data[0]["dispositions"] == {"1.1": 1}


@pytest.mark.usefixtures("queue_command")
def test_queue_status_command_counts_as_of_the_root_now(cli, engine: Engine) -> None:
    campaign = add_campaign(engine, name="2026-W24")
    add_item(engine, campaign, add_unit(engine, "西湖区市场监管局"))
    refresh(engine, campaign, NOW)  # due at NOW, Wednesday 10:00

    def status(now: str) -> dict[str, Any]:
        result = cli("--now", now, "queue", "status", "--json")
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.output)
        return row

    early = status("2026-06-10 09:30")
    assert (early["calling"], early["due"]) == (True, 0)
    on_time = status("2026-06-10 10:00")
    assert (on_time["calling"], on_time["due"]) == (True, 1)
    evening = status("2026-06-10 21:00")
    assert (evening["calling"], evening["due"]) == (False, 1)


@pytest.mark.usefixtures("queue_command")
def test_queue_status_command_with_nothing_to_show(cli) -> None:
    result = cli("queue", "status", "--unit", "nowhere")
    assert result.exit_code == 0 and "No queue items match." in result.output


@pytest.mark.usefixtures("queue_command")
def test_queue_status_command_refuses_a_bad_time(cli) -> None:
    result = cli("queue", "status", "--at", "tomorrow")
    assert result.exit_code == 2 and "not a time" in result.output
