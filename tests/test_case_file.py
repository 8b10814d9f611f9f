"""A case's file: everything that happened to one case, masked unless asked for whole."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import NOW, A, dial, world

from callback.attempt_outcomes import finish_attempt
from callback.case_file import CaseNotFound, case_file
from callback.corrections import list_corrections, propose
from callback.dialing import EventKind
from callback.models import CallAttempt, Case, Correction, ProblemReport, QueueItem, table

NEW = "+8613587654321"
LATER = NOW + timedelta(seconds=2, microseconds=258530)


@pytest.fixture
def story(engine: Engine) -> None:
    """Case C0 of 张三: dialled once (busy), a new number from the office, a problem raised."""
    campaign = world(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Case)).values(contact_name="李四"))
    attempt = dial(engine, campaign)
    finish_attempt(engine, attempt, EventKind.BUSY, NOW)
    propose(engine, "C0", "phone", "135 8765 4321", "office", NOW, note="张三来电告知新号码")
    # The office marks the old number wrong a moment later (a time with microseconds).
    propose(engine, "C0", "wrong_number", "13912345671", "office", LATER)
    with engine.begin() as conn:
        unit = conn.execute(sa.select(table(QueueItem).c.unit_id)).scalar_one()
        conn.execute(
            sa.insert(table(ProblemReport)).values(
                unit_id=unit, case_id=1, attempt_id=attempt, campaign_id=campaign,
                category="其他", text="张三说办事窗口电话0571-87654321打不通", status="open",
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip


def test_the_file_masks_names_and_numbers_everywhere(engine: Engine, story: None) -> None:
    f = case_file(engine, "C0")
    assert (f.applicant_name, f.contact_name) == ("张*", "李*")
    assert [c.number for c in f.contacts] == ["139****5671", "135****4321"]
    assert [c.verification for c in f.contacts] == ["wrong_number", "corrected"]
    (call,) = f.calls
    assert (call.number, call.outcome, call.disposition) == ("139****5671", "busy", "3.12")
    assert f.queues[0].campaign == "june" and f.queues[0].attempts == 1
    assert [(c.kind, c.proposed, c.status) for c in f.corrections] == [
        ("phone", "135****4321", "applied"),
        ("wrong_number", "a number on file", "applied"),
    ]
    (problem,) = f.problems
    assert problem.text == "张*说办事窗口电话057*****4321打不通"
    added = next(a for a in f.audit if a.action == "contact.add")
    assert added.after["e164"] == "135****4321" and added.after["raw"] == "135****4321"
    assert added.actor == "office" and added.before is None
    applied = next(a for a in f.audit if a.action == "correction.apply")
    assert "张*来电告知新号码" in applied.reason  # the note, with the name masked
    dumped = json.dumps([vars(a) for a in f.audit], default=str, ensure_ascii=False)
    assert A[3:] not in dumped and NEW[3:] not in dumped and "张三" not in dumped


def test_the_whole_file_for_those_who_need_it(engine: Engine, story: None) -> None:
    f = case_file(engine, "C0", full=True)
    assert (f.applicant_name, f.contact_name) == ("张三", "李四")
    assert [c.number for c in f.contacts] == [A, NEW]
    assert f.calls[0].number == A
    assert "0571-87654321" in f.problems[0].text
    added = next(a for a in f.audit if a.action == "contact.add")
    assert added.after["e164"] == NEW


def test_times_in_the_audit_are_not_taken_for_numbers(engine: Engine, story: None) -> None:
    f = case_file(engine, "C0")
    checked = [
        c["checked_at"]
        for a in f.audit
        for c in (a.after or {}).get("contacts", [])
        if isinstance(c, dict) and c.get("checked_at")
    ]
    assert checked and all("*" not in at for at in checked)
    assert LATER.isoformat() in checked


def test_an_unknown_case_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(CaseNotFound, match="no case numbered 'C9'"):
        case_file(engine, "C9")


def test_the_cli_shows_the_file(cli, engine: Engine, story: None) -> None:
    shown = cli("cases", "show", "C0")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "applicant  张* (person), contact 李*" in out
    assert "139****5671" in out and "13912345671" not in out
    assert "contact.add" in out and "e164: — → 135****4321" in out
    assert "why: " in out
    whole = cli("cases", "show", "C0", "--full", "--json")
    assert json.loads(whole.output)["contacts"][1]["number"] == NEW
    missing = cli("cases", "show", "C9")
    assert missing.exit_code == 1 and "no case numbered 'C9'" in missing.output


def test_a_name_typed_into_a_survey_is_masked_as_the_corrections_listing_masks_it(
    engine: Engine, story: None
) -> None:
    # A contact correction from a question that takes typed text (the script's own answer,
    # not an option's value): the masked file must show it as `corrections list` does.
    with engine.begin() as conn:
        attempt = conn.execute(sa.select(table(CallAttempt).c.id)).scalar_one()
        conn.execute(
            sa.insert(table(Correction)).values(
                case_id=1, attempt_id=attempt, kind="contact",
                proposed={"contact": "王小明", "question": "suggestion"}, status="pending",
                proposed_by="agent", proposed_at=LATER,
            )
        )  # fmt: skip
    (listed,) = [c for c in list_corrections(engine, case_no="C0") if c.kind == "contact"]
    (shown,) = [c for c in case_file(engine, "C0").corrections if c.kind == "contact"]
    assert shown.proposed == listed.proposed == "王**"
    (whole,) = [c for c in case_file(engine, "C0", full=True).corrections if c.kind == "contact"]
    assert "王小明" in whole.proposed
