"""Corrections of the frame: applied at once or after review, rejected, reverted, all audited;
a bad number refused; a re-import never undoes a correction."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import corrections, plugins
from callback.attempts import attempt_placed, begin_attempt
from callback.calls import CallHandler
from callback.claims import Scope, claim_next
from callback.config import Settings
from callback.correction_steps import CorrectionError
from callback.dialing import CallEvent, EventKind
from callback.importing import ImportOptions, import_file
from callback.models import (
    AuditEntry,
    CallAttempt,
    Campaign,
    Case,
    Contact,
    Correction,
    QueueItem,
    Unit,
    table,
)
from callback.queues import refresh, rules_to_json
from callback.rules import CallingRules

NOW = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
LATER = NOW + timedelta(hours=1)
A, B, C = "+8613912345671", "+8613587654321", "+8657187654321"
EXPORTERS = "callback.default_plugins.exporters"


# -- small worlds, also used by test_export and test_problems ---------------------------


@pytest.fixture(autouse=True)
def builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-ins, with the exporters even before callback.plugins lists them."""
    if EXPORTERS not in plugins.DEFAULT_PLUGINS:
        monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", (*plugins.DEFAULT_PLUGINS, EXPORTERS))
    plugins.reset_for_tests()
    yield
    plugins.reset_for_tests()


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands of this issue on the root group, until callback.cli registers them."""
    from callback.cli import cli as root
    from callback.cli.corrections import corrections as corrections_group
    from callback.cli.frame import frame
    from callback.cli.frame_export import export_command
    from callback.cli.problems import problems

    added = ((root, "corrections", corrections_group), (root, "problems", problems),
             (frame, "export", export_command))  # fmt: skip
    for group, name, command in added:
        if name not in group.commands:
            monkeypatch.setitem(group.commands, name, command)


def world(
    engine: Engine,
    cases: Sequence[tuple[str, Sequence[str]]] = (("C1", (A,)),),
    review: bool = False,
    name: str = "june",
) -> int:
    """A sampled campaign of ``cases`` (case number, numbers), all of 区民政局; its id."""
    with engine.begin() as conn:
        unit = _unit(conn, "区民政局")
        campaign = conn.execute(
            sa.insert(table(Campaign)).values(
                name=name, target="cases", script="service-callback", dialer="simulated",
                period_start=date(2026, 5, 1), period_end=date(2026, 5, 31), deadline=None,
                rules=rules_to_json(CallingRules()), design={}, review_corrections=review,
                status="sampled", created_by="tester", created_at=NOW,
            ).returning(table(Campaign).c.id)
        ).scalar_one()  # fmt: skip
        for case_no, numbers in cases:
            case = add_case(conn, case_no, numbers, unit)
            conn.execute(
                sa.insert(table(QueueItem)).values(
                    campaign_id=campaign, unit_id=unit, case_id=case, stratum="s",
                    inclusion_probability=1.0, weight=1.0, state="open", wait_reason="new",
                )
            )  # fmt: skip
    refresh(engine, campaign, NOW)
    return campaign


def _unit(conn: Any, name: str) -> int:
    found = conn.execute(sa.select(table(Unit).c.id).where(table(Unit).c.name == name)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            sa.insert(table(Unit)).values(name=name, kind="department", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()
    )  # fmt: skip


def add_case(conn: Any, case_no: str, numbers: Sequence[str], unit: int, **facts: Any) -> int:
    """A case of 张三 handled 2026-05-20 09:00 in Shanghai, with ``numbers`` on file."""
    values = dict(case_no=case_no, item_name="结婚登记", unit_id=unit, applicant_name="张三",
                  contact_name="张三", applicant_type="person", channel="window",
                  handled_at=datetime(2026, 5, 20, 1, tzinfo=UTC))  # fmt: skip
    case = conn.execute(
        sa.insert(table(Case)).values(**(values | facts)).returning(table(Case).c.id)
    ).scalar_one()
    for position, number in enumerate(numbers):
        valid = number.startswith("+")
        conn.execute(
            sa.insert(table(Contact)).values(
                case_id=case, position=position, raw=number, e164=number if valid else None,
                kind=("mobile" if number.startswith("+861") else "landline") if valid else None,
                validity="valid" if valid else "fake",
                source="import", created_at=NOW,
            )
        )  # fmt: skip
    return int(case)


def call(engine: Engine, campaign: int, keys: Sequence[str], now: datetime = NOW) -> int:
    """Dial the next case of the campaign and answer the IVR with ``keys``; the attempt id."""
    claim = claim_next(engine, "ivr-test", Scope(campaigns=frozenset({campaign})), now)
    assert claim is not None
    with engine.connect() as conn:
        number = conn.execute(
            sa.select(table(Contact).c.e164)
            .where(table(Contact).c.case_id == claim.case_id, table(Contact).c.e164.is_not(None))
            .order_by(table(Contact).c.position)
        ).scalars().first()  # fmt: skip
    assert number is not None
    attempt = begin_attempt(engine, claim, number, "simulated", now)
    attempt_placed(engine, attempt, f"call-{attempt}", now)
    handler = CallHandler(engine, clock=lambda: now)
    handler(CallEvent(attempt, f"call-{attempt}", EventKind.ANSWERED, now))
    turn = handler.begin(attempt)
    for key in keys:
        assert not turn.hangup, key
        turn = handler.reply(attempt, key)
    handler(CallEvent(attempt, f"call-{attempt}", EventKind.COMPLETED, now + timedelta(seconds=90)))
    return attempt


#: Not the applicant but knows them, and here is the applicant's number.
KNOWS_APPLICANT = ["3", "13587654321#"]
#: 本人, but not my case (the item, unit or date is not theirs).
NOT_MY_CASE = ["1", "2"]
#: 本人, my case, went once, satisfied, no suggestion, policy explained, may recontact.
SATISFIED = ["1", "1", "1", "2", "2", "1", "1"]


def rows(engine: Engine, model: Any, **where: Any) -> list[Any]:
    t = table(model)
    with engine.connect() as conn:
        query = sa.select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(t.c.id)
        return list(conn.execute(query).all())


def audit(engine: Engine, action: str) -> list[Any]:
    return rows(engine, AuditEntry, action=action)


def case_row(engine: Engine, case_no: str = "C1") -> Any:
    (found,) = rows(engine, Case, case_no=case_no)
    return found


# -- applying ------------------------------------------------------------------------------


def test_a_new_number_from_a_call_is_added_and_the_old_one_marked_wrong(engine: Engine) -> None:
    campaign = world(engine)
    attempt = call(engine, campaign, KNOWS_APPLICANT)
    proposed = rows(engine, Correction)
    assert {c.kind for c in proposed} == {"contact", "phone"}
    result = corrections.apply_pending(engine, LATER, "office")
    assert sorted(result.applied) == [c.id for c in proposed] and not result.waiting
    old, new = rows(engine, Contact)
    assert (old.e164, old.verification, old.superseded_at) == (A, "wrong_number", None)
    assert (new.e164, new.source, new.verification) == (B, "callback", "corrected")
    assert new.checked_at == NOW + timedelta(seconds=90)  # when the call that taught it ended
    phone = next(c for c in rows(engine, Correction) if c.kind == "phone")
    assert (phone.status, phone.decided_by, phone.attempt_id) == ("applied", "office", attempt)
    assert phone.after["added"]["e164"] == B
    (added,) = audit(engine, "contact.add")
    assert (added.actor, added.attempt_id, added.after["e164"]) == ("office", attempt, B)
    applied = audit(engine, "correction.apply")
    assert len(applied) == 2 and all(e.attempt_id == attempt and e.at == LATER for e in applied)
    assert all(e.before["status"] == "pending" and e.after["status"] == "applied" for e in applied)


def test_review_keeps_corrections_pending_until_the_supervisor_decides(engine: Engine) -> None:
    campaign = world(engine, review=True)
    call(engine, campaign, KNOWS_APPLICANT)
    assert corrections.apply_pending(engine, LATER, "office").applied == []
    assert {c.status for c in rows(engine, Correction)} == {"pending"}
    assert len(rows(engine, Contact)) == 1
    contact, phone = sorted(rows(engine, Correction), key=lambda c: c.kind)
    corrections.apply(engine, phone.id, "supervisor", LATER, "checked with the applicant")
    corrections.reject(engine, contact.id, "supervisor", LATER, "the number is the family's")
    assert [(c.kind, c.status, c.decided_by) for c in
            sorted(rows(engine, Correction), key=lambda c: c.kind)] == [
        ("contact", "rejected", "supervisor"), ("phone", "applied", "supervisor")]  # fmt: skip
    (rejected,) = audit(engine, "correction.reject")
    assert (rejected.actor, rejected.reason, rejected.entity_id) == (
        "supervisor",
        "the number is the family's",
        contact.id,
    )
    assert rejected.after == {"status": "rejected"}
    assert len(rows(engine, Contact)) == 2


def test_the_office_can_correct_the_contact_person_and_revert_it(engine: Engine) -> None:
    world(engine)
    decision = corrections.propose(engine, "C1", "contact", " 王五 ", "office", NOW)
    assert decision.status == "applied"
    assert case_row(engine).contact_name == "王五"
    (update,) = audit(engine, "case.update")
    assert (update.before, update.after) == ({"contact_name": "张三"}, {"contact_name": "王五"})
    corrections.revert(engine, decision.correction_id, "office", LATER, "王五 was the agent")
    assert case_row(engine).contact_name == "张三"
    (correction,) = rows(engine, Correction)
    assert correction.status == "reverted"
    back = audit(engine, "case.update")[-1]
    assert (back.before, back.after, back.at) == (
        {"contact_name": "王五"}, {"contact_name": "张三"}, LATER
    )  # fmt: skip
    assert audit(engine, "correction.revert")[0].reason == "王五 was the agent"


def test_reverting_a_new_number_supersedes_it_and_deletes_nothing(engine: Engine) -> None:
    world(engine)
    decision = corrections.propose(
        engine, "C1", "phone", "135 8765 4321", "office", NOW, replaces="13912345671"
    )
    old, new = rows(engine, Contact)
    assert (old.verification, new.verification, new.source) == (
        "wrong_number",
        "corrected",
        "agent",
    )
    corrections.revert(engine, decision.correction_id, "office", LATER, "typed the wrong case")
    old, new = rows(engine, Contact)
    assert (old.verification, old.checked_at, old.superseded_at) == ("not_called", None, None)
    assert new.superseded_at == LATER and new.e164 == B  # still there, no longer current
    assert [e.entity_id for e in audit(engine, "contact.supersede")] == [new.id]
    assert len(audit(engine, "contact.verify")) == 2  # marked wrong, then restored


def test_a_unit_not_in_the_frame_is_created_and_audited(engine: Engine) -> None:
    world(engine)
    corrections.propose(engine, "C1", "unit", "西溪街道", "office", NOW)
    with engine.connect() as conn:
        unit = conn.execute(
            sa.select(table(Unit)).where(table(Unit).c.name == "西溪街道")
        ).one()  # fmt: skip
    assert unit.kind == "town" and case_row(engine).unit_id == unit.id
    (created,) = audit(engine, "unit.create")
    assert created.after == {"name": "西溪街道", "kind": "town"} and created.actor == "office"
    assert audit(engine, "case.update")[0].after == {"unit": "西溪街道"}


def test_an_item_correction_may_carry_the_item_code(engine: Engine) -> None:
    world(engine)
    corrections.propose(engine, "C1", "item", "补发结婚证", "office", NOW, item_code="330100-1")
    assert (case_row(engine).item_name, case_row(engine).item_code) == ("补发结婚证", "330100-1")


def test_a_number_the_applicant_answered_on_is_not_marked_wrong(engine: Engine) -> None:
    campaign = world(engine)
    attempt = call(engine, campaign, SATISFIED)
    corrections.propose(engine, "C1", "phone", "13587654321", "agent1", NOW, attempt_id=attempt)
    old, new = rows(engine, Contact)
    assert (old.verification, new.verification) == ("verified", "corrected")


def test_a_wrong_number_found_by_the_office_is_marked(engine: Engine) -> None:
    world(engine, cases=[("C1", (A, B))])
    corrections.propose(engine, "C1", "wrong_number", "135-8765-4321", "office", NOW)
    first, second = rows(engine, Contact)
    assert (first.verification, second.verification) == ("not_called", "wrong_number")
    assert second.superseded_at is None


# -- what needs a person -------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["12345", "13800000000", "13912345671/13587654321", ""])
def test_a_bad_proposed_number_is_refused_and_nothing_is_stored(engine: Engine, typed: str) -> None:
    world(engine)
    with pytest.raises(CorrectionError, match="not a telephone number that can be dialled"):
        corrections.propose(engine, "C1", "phone", typed, "office", NOW)
    assert rows(engine, Correction) == [] and len(rows(engine, Contact)) == 1


def test_a_bad_number_proposed_in_a_call_stays_pending_with_the_reason(engine: Engine) -> None:
    campaign = world(engine)
    attempt = call(engine, campaign, SATISFIED)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table(Correction)).values(
                case_id=case_row(engine).id, attempt_id=attempt, kind="phone",
                proposed={"phone": "13800000000", "question": "new_phone"}, status="pending",
                proposed_by="ivr", proposed_at=NOW,
            )
        )  # fmt: skip
    result = corrections.apply_pending(engine, LATER, "office")
    ((correction_id, why),) = result.waiting
    assert "138*****000" not in why and "13800000000" not in why  # masked, never whole
    assert "not a telephone number" in why and "placeholder" in why
    assert rows(engine, Correction)[0].status == "pending"
    with pytest.raises(CorrectionError, match="not a telephone number"):
        corrections.apply(engine, correction_id, "office", LATER)
    corrections.apply(engine, correction_id, "office", LATER, value="13587654321")
    assert rows(engine, Contact)[-1].e164 == B


def test_not_my_case_needs_a_person_to_say_what_was_wrong(engine: Engine) -> None:
    campaign = world(engine)
    call(engine, campaign, ["1", "2"])  # the applicant, but not their case
    (correction,) = rows(engine, Correction)
    assert correction.kind == "case"
    assert corrections.apply_pending(engine, LATER, "office").waiting[0][0] == correction.id
    with pytest.raises(CorrectionError, match="did not recognise the case"):
        corrections.apply(engine, correction.id, "office", LATER)
    with pytest.raises(CorrectionError, match="not what it should be"):
        corrections.apply(engine, correction.id, "office", LATER, as_kind="item")
    corrections.apply(engine, correction.id, "office", LATER, value="离婚登记", as_kind="item")
    assert case_row(engine).item_name == "离婚登记"
    assert rows(engine, Correction)[0].after == {"item_name": "离婚登记"}


def test_apply_pending_does_not_create_units(engine: Engine) -> None:
    world(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table(Correction)).values(
                case_id=case_row(engine).id, kind="unit", proposed={"unit": "区住建局"},
                status="pending", proposed_by="agent1", proposed_at=NOW,
            )
        )  # fmt: skip
    (waiting,) = corrections.apply_pending(engine, LATER, "office").waiting
    assert "not in the frame" in waiting[1]
    corrections.apply(engine, waiting[0], "office", LATER)  # a person may create it
    assert rows(engine, Correction)[0].status == "applied"


def test_a_decided_correction_is_not_decided_again(engine: Engine) -> None:
    world(engine)
    decision = corrections.propose(engine, "C1", "contact", "王五", "office", NOW)
    for step in (corrections.apply, corrections.reject):
        with pytest.raises(CorrectionError, match="is applied; only a pending"):
            step(engine, decision.correction_id, "office", LATER)
    corrections.revert(engine, decision.correction_id, "office", LATER)
    with pytest.raises(CorrectionError, match="is reverted; only a applied"):
        corrections.revert(engine, decision.correction_id, "office", LATER)
    with pytest.raises(CorrectionError, match="no correction 999"):
        corrections.apply(engine, 999, "office", LATER)


def test_a_revert_that_would_undo_a_later_change_is_refused(engine: Engine) -> None:
    world(engine)
    first = corrections.propose(engine, "C1", "contact", "王五", "office", NOW)
    second = corrections.propose(engine, "C1", "contact", "赵六", "office", LATER)
    with pytest.raises(CorrectionError, match="has changed since"):
        corrections.revert(engine, first.correction_id, "office", LATER)
    corrections.revert(engine, second.correction_id, "office", LATER)
    corrections.revert(engine, first.correction_id, "office", LATER)
    assert case_row(engine).contact_name == "张三"


# -- re-imports ----------------------------------------------------------------------------

HEADER = [
    "办件编号",
    "事项名称",
    "实施部门",
    "申请人",
    "联系人",
    "联系电话",
    "办结时间",
    "办理渠道",
]


def _export_file(path: Path, channel: str = "窗口", contact: str = "张三") -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerow(["C1", "结婚登记", "区民政局", "张三", contact, "13912345671",
                         "2026-05-20 09:00", channel])  # fmt: skip
        writer.writerow(["C2", "结婚登记", "区民政局", "李四", "李四", "13587654320",
                         "2026-05-21 09:00", "窗口"])  # fmt: skip
    return path


def _imported_and_corrected(engine: Engine, tmp_path: Path) -> Settings:
    settings = Settings(database_url=str(engine.url), actor="importer")
    import_file(engine, _export_file(tmp_path / "june.csv"), settings, ImportOptions(), NOW)
    campaign = world(engine, cases=(), name="reimport")
    with engine.begin() as conn:  # case C1 sampled and called once
        c1 = conn.execute(sa.select(table(Case).c.id).where(table(Case).c.case_no == "C1")).scalar()
        unit = conn.execute(sa.select(table(Case).c.unit_id).where(table(Case).c.id == c1)).scalar()
        item = conn.execute(
            sa.insert(table(QueueItem)).values(
                campaign_id=campaign, unit_id=unit, case_id=c1, stratum="s",
                inclusion_probability=1.0, weight=1.0, state="open", wait_reason="new",
            ).returning(table(QueueItem).c.id)
        ).scalar_one()  # fmt: skip
        attempt = conn.execute(
            sa.insert(table(CallAttempt)).values(
                queue_item_id=item, campaign_id=campaign, number=A, worker="agent1",
                dialer="manual", state="ended", created_at=NOW, outcome="completed",
                disposition="1.1",
            ).returning(table(CallAttempt).c.id)
        ).scalar_one()  # fmt: skip
    corrections.propose(engine, "C1", "contact", "王五", "agent1", NOW, attempt_id=attempt)
    assert case_row(engine).contact_name == "王五"
    return settings


def test_reimporting_the_same_file_keeps_the_correction(engine: Engine, tmp_path: Path) -> None:
    settings = _imported_and_corrected(engine, tmp_path)
    result = import_file(engine, tmp_path / "june.csv", settings, ImportOptions(), LATER)
    assert (result.updated, result.unchanged) == (0, 2)
    assert case_row(engine).contact_name == "王五"


def test_a_reimport_that_changed_another_fact_keeps_the_correction(
    engine: Engine, tmp_path: Path
) -> None:
    settings = _imported_and_corrected(engine, tmp_path)
    changed = _export_file(tmp_path / "june-v2.csv", channel="网上")
    assert import_file(engine, changed, settings, ImportOptions(), LATER).updated == 1
    case = case_row(engine)
    assert case.channel == "online"  # the source's change is taken
    assert case.contact_name == "王五"  # the callback's correction stands


def test_a_source_that_now_says_something_else_is_noted_not_taken(
    engine: Engine, tmp_path: Path
) -> None:
    settings = _imported_and_corrected(engine, tmp_path)
    changed = _export_file(tmp_path / "june-v3.csv", contact="赵六")
    import_file(engine, changed, settings, ImportOptions(), LATER)
    assert case_row(engine).contact_name == "王五"
    (conflict,) = audit(engine, "case.conflict")
    assert (conflict.before, conflict.after) == ({"contact_name": "王五"}, {"contact_name": "赵六"})
    assert "correction" in conflict.reason and conflict.actor == "importer"


def test_corrected_facts_name_the_latest_correction(engine: Engine) -> None:
    world(engine)
    corrections.propose(engine, "C1", "contact", "王五", "office", NOW)
    latest = corrections.propose(engine, "C1", "contact", "赵六", "office", LATER)
    corrections.propose(engine, "C1", "item", "补发结婚证", "office", LATER)
    with engine.connect() as conn:
        found = corrections.corrected_facts(conn, case_row(engine).id)
    assert set(found) == {"contact_name", "item_name"}
    assert found["contact_name"] == corrections.CorrectedFact(latest.correction_id, "王五", "赵六")
    corrections.revert(engine, latest.correction_id, "office", LATER)
    with engine.connect() as conn:
        assert (
            corrections.corrected_facts(conn, case_row(engine).id)["contact_name"].after == "王五"
        )


# -- the command line ----------------------------------------------------------------------


def test_the_commands_review_apply_reject_and_revert(engine: Engine, cli, commands) -> None:
    campaign = world(engine, review=True)
    call(engine, campaign, KNOWS_APPLICANT)
    listed = cli("corrections", "list", "--status", "pending")
    assert listed.exit_code == 0, listed.output
    assert "135****4321" in listed.output and "13587654321" not in listed.output
    assert "(knows_applicant)" in listed.output
    contact, phone = sorted(rows(engine, Correction), key=lambda c: c.kind)
    assert cli("corrections", "apply", str(phone.id), "--note", "ok").output.strip() == (
        f"correction {phone.id} applied."
    )
    rejected = cli("corrections", "reject", str(contact.id), "--note", "family number")
    assert rejected.exit_code == 0, rejected.output
    reverted = cli("corrections", "revert", str(phone.id), "--note", "mistake")
    assert reverted.exit_code == 0, reverted.output
    assert [c.status for c in sorted(rows(engine, Correction), key=lambda c: c.kind)] == [
        "rejected", "reverted"
    ]  # fmt: skip
    again = cli("corrections", "revert", str(phone.id), "--note", "twice")
    assert again.exit_code == 1 and "is reverted" in again.output
    assert "Traceback" not in again.output


def test_a_not_my_case_correction_lists_its_kind_not_a_boolean(
    engine: Engine, cli, commands
) -> None:
    campaign = world(engine, review=True)
    call(engine, campaign, NOT_MY_CASE)
    (correction,) = rows(engine, Correction)
    assert (correction.kind, correction.proposed) == ("case", {"case": False, "question": "case"})
    listed = cli("corrections", "list")
    assert listed.exit_code == 0, listed.output
    (line,) = [x for x in listed.output.splitlines() if f"{correction.id}  C1" in x]
    assert " case " in line and "False" not in line and "()" not in line
    (shown,) = json.loads(cli("corrections", "list", "--json").output)
    assert (shown["kind"], shown["proposed"]) == ("case", "")


def test_add_and_its_errors_on_the_command_line(engine: Engine, cli, commands) -> None:
    world(engine)
    added = cli("corrections", "add", "C1", "--contact", "王五", "--note", "per the unit")
    assert added.exit_code == 0 and "applied" in added.output, added.output
    listed = cli("corrections", "list", "--json")
    assert "王*" in listed.output and "王五" not in listed.output
    bad = cli("corrections", "add", "C1", "--phone", "12345")
    assert bad.exit_code == 1 and "not a telephone number" in bad.output
    assert cli("corrections", "add", "C1", "--phone", "1", "--unit", "x").exit_code == 2
    assert cli("corrections", "add", "C9", "--unit", "x").exit_code == 1
    assert cli("corrections", "apply").exit_code == 2
    pending = cli("corrections", "apply", "--without-review")
    assert pending.exit_code == 0 and pending.output.startswith("0 applied")
