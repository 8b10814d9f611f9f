"""Problems raised in calls: listed by unit, status and due date with names and numbers
masked, updated with an audit entry."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_corrections import (
    NOW,
    add_case,
    audit,
    builtin_plugins,  # noqa: F401 - an autouse fixture
    call,
    commands,  # noqa: F401 - a fixture
    rows,
    world,
)

from callback.models import ProblemReport, Unit, table
from callback.problems import (
    ProblemError,
    list_problems,
    mask_name,
    mask_numbers,
    mask_text,
    update_problem,
)

TODAY = date(2026, 6, 10)
#: What a citizen dictates: a mobile spaced out, a landline in full-width digits, a number read
#: out in Chinese numerals, an ID number, and their own name and the contact person's.
DICTATED = (
    "我是张三，手机139 1234 5671，座机０５７１－８７６５４３２１，或者打幺三五八七六五四三二一，"
    "身份证330106199001011234，找王五也行。2026-06-03去的，跑了3趟。"
)


def problem(engine: Engine, **values: Any) -> int:
    """A problem of 区民政局 on case C1 (applicant 张三, contact 王五)."""
    with engine.begin() as conn:
        unit = conn.execute(
            sa.select(table(Unit).c.id).where(table(Unit).c.name == values.pop("unit", "区民政局"))
        ).scalar_one()  # fmt: skip
        case = conn.execute(sa.text("SELECT id FROM cases WHERE case_no = 'C1'")).scalar()
        defaults = dict(unit_id=unit, case_id=case, category="dissatisfaction", text=DICTATED,
                        status="open", created_at=NOW, updated_at=NOW)  # fmt: skip
        return int(
            conn.execute(
                sa.insert(table(ProblemReport)).values(**(defaults | values))
                .returning(table(ProblemReport).c.id)
            ).scalar_one()
        )  # fmt: skip


@pytest.fixture
def frame(engine: Engine) -> Engine:
    world(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE cases SET contact_name = '王五' WHERE case_no = 'C1'"))
        unit = conn.execute(
            sa.insert(table(Unit)).values(name="西溪街道", kind="town", created_at=NOW)
            .returning(table(Unit).c.id)
        ).scalar_one()  # fmt: skip
        add_case(conn, "T1", (), unit)
    return engine


# -- masking -------------------------------------------------------------------------------


def test_numbers_in_free_text_are_masked_whatever_digits_they_use() -> None:
    masked = mask_numbers(DICTATED)
    for whole in ("1234 5671", "８７６５４３２１", "三五八七六五四三二一", "199001011234"):
        assert whole not in masked
    assert "139****5671" in masked  # the last four stay, to tell numbers apart
    assert "057*****4321" in masked and "135****4321" in masked
    assert "2026-06-03" in masked and "跑了3趟" in masked  # dates and counts are not numbers


def test_names_are_masked_longest_first() -> None:
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王") == "*" and mask_name(None) == ""
    assert mask_text("张三丰和张三", ["张三", "张三丰"]) == "张**和张*"


# -- listing -------------------------------------------------------------------------------


def test_list_filters_by_unit_status_and_overdue(frame: Engine) -> None:
    late = problem(frame, due_date=TODAY - timedelta(days=1))
    fixing = problem(frame, status="fixing", due_date=TODAY)
    fixed = problem(frame, status="fixed", due_date=TODAY - timedelta(days=9), resolution="ok")
    town = problem(frame, unit="西溪街道")
    ids = lambda found: [p.id for p in found]  # noqa: E731
    assert ids(list_problems(frame, TODAY)) == [late, fixing, fixed, town]
    assert ids(list_problems(frame, TODAY, unit="西溪街道")) == [town]
    assert ids(list_problems(frame, TODAY, statuses=["open", "fixing"])) == [late, fixing, town]
    assert ids(list_problems(frame, TODAY, overdue=True)) == [late]  # fixed ones are not late
    assert [p.overdue for p in list_problems(frame, TODAY)] == [True, False, False, False]
    with pytest.raises(ProblemError, match="no unit named"):
        list_problems(frame, TODAY, unit="区教育局")
    with pytest.raises(ProblemError, match="no problem status"):
        list_problems(frame, TODAY, statuses=["done"])


def test_every_listing_masks_names_and_numbers(frame: Engine) -> None:
    problem(frame, resolution="已回电 13912345671 向张三解释")
    (found,) = list_problems(frame, TODAY)
    assert found.applicant == "张*"
    for text in (found.text, found.resolution):
        assert "13912345671" not in text and "张三" not in text
    assert "王五" not in found.text and "王*" in found.text


def test_problems_raised_in_a_call_are_listed_masked(engine: Engine) -> None:
    campaign = world(engine)
    # 本人, my case, twice, dissatisfied, too slow, what went wrong (dictating a number) …
    call(engine, campaign, ["1", "1", "2", "4", "2", "等了两周，回电13587654321", "2", "1", "1"])
    (found,) = list_problems(engine, TODAY)
    assert (found.unit, found.case_no, found.category, found.status) == (
        "区民政局", "C1", "too_slow", "open"
    )  # fmt: skip
    assert found.text == "等了两周，回电135****4321" and found.campaign == "june"


# -- updating ------------------------------------------------------------------------------


def test_an_update_changes_what_it_names_and_is_audited(frame: Engine) -> None:
    problem_id = problem(frame)
    later = NOW + timedelta(hours=2)
    view = update_problem(frame, problem_id, "supervisor", later, TODAY, status="fixing",
                          owner="李科长", due_date=date(2026, 6, 30), note="assigned")  # fmt: skip
    assert (view.status, view.owner, view.due_date) == ("fixing", "李科长", date(2026, 6, 30))
    (entry,) = audit(frame, "problem.update")
    assert (entry.actor, entry.at, entry.entity, entry.entity_id, entry.reason) == (
        "supervisor", later, "problem", problem_id, "assigned"
    )  # fmt: skip
    assert entry.before == {"status": "open", "owner": None, "due_date": None}
    assert entry.after == {"status": "fixing", "owner": "李科长", "due_date": "2026-06-30"}
    (row,) = rows(frame, ProblemReport)
    assert row.updated_at == later and row.case_id == entry.case_id


def test_closing_needs_a_resolution(frame: Engine) -> None:
    problem_id = problem(frame)
    with pytest.raises(ProblemError, match="resolution"):
        update_problem(frame, problem_id, "supervisor", NOW, TODAY, status="fixed")
    update_problem(frame, problem_id, "supervisor", NOW, TODAY, status="explained",
                   resolution="政策要求本人到场核验")  # fmt: skip
    assert rows(frame, ProblemReport)[0].status == "explained"


def test_an_update_that_changes_nothing_writes_nothing(frame: Engine) -> None:
    problem_id = problem(frame, owner="李科长")
    update_problem(frame, problem_id, "supervisor", NOW, TODAY, owner="李科长")
    assert audit(frame, "problem.update") == []
    with pytest.raises(ProblemError, match="nothing to change"):
        update_problem(frame, problem_id, "supervisor", NOW, TODAY)
    with pytest.raises(ProblemError, match="no problem 999"):
        update_problem(frame, 999, "supervisor", NOW, TODAY, status="fixing")


# -- the command line ----------------------------------------------------------------------


@pytest.mark.usefixtures("commands")
def test_the_commands_list_masked_and_update(frame: Engine, cli) -> None:
    problem_id = problem(frame, due_date=date(2026, 6, 1))
    today = ("--now", "2026-06-10 10:00")
    listed = cli(*today, "problems", "list", "--overdue")
    assert listed.exit_code == 0, listed.output
    assert "overdue" in listed.output and "139****5671" in listed.output
    assert "13912345671" not in listed.output and "张三" not in listed.output
    as_json = json.loads(cli("problems", "list", "--json").output)
    assert as_json[0]["text"] == mask_text(DICTATED, ["张三", "王五"])
    updated = cli("problems", "update", str(problem_id), "--status", "fixing", "--owner", "李科长",
                  "--due", "2026-07-01")  # fmt: skip
    assert updated.exit_code == 0 and "fixing, due 2026-07-01" in updated.output, updated.output
    assert cli(*today, "problems", "list", "--overdue").output.count("\n") == 2  # nothing late
    closing = cli("problems", "update", str(problem_id), "--status", "fixed")
    assert closing.exit_code == 1 and "resolution" in closing.output
    assert "Traceback" not in closing.output
    assert cli("problems", "update", str(problem_id), "--due", "soon").exit_code == 2
