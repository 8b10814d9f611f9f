"""``callback hotlines``: add, import, list and deactivate units' hotlines, audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dbsupport import table_rows
from sqlalchemy.engine import Engine

from callback import hotlines
from callback.models import AuditEntry, Unit, table

NOW = datetime(2018, 10, 8, 2, 0, tzinfo=UTC)  # Monday 8 October 2018, 10:00 in Hangzhou
units_t, audit_t = table(Unit), table(AuditEntry)


@pytest.fixture
def units(engine: Engine) -> None:
    with engine.begin() as conn:
        for name in ("区民政局", "区市场监管局"):
            conn.execute(sa.insert(units_t).values(name=name, kind="department", created_at=NOW))


@pytest.fixture
def run(cli, units):
    """Invoke ``callback --now '2018-10-08 10:00' hotlines ARGS``."""

    def invoke(*args: str):
        return cli("--now", "2018-10-08 10:00", "hotlines", *args)

    return invoke


def listed(run, *options: str) -> list[dict[str, Any]]:
    result = run("list", "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def audit(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(audit_t).where(audit_t.c.entity == "hotlines").order_by(audit_t.c.id)
        ).all()


def one_line_error(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


# -- add ---------------------------------------------------------------------------------------


def test_a_landline_typed_with_dashes_takes_the_default_area_code(run):
    result = run("add", "区民政局", "8765-4321", "--label", "办事咨询")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Added."
    assert listed(run) == [
        {
            "id": 1, "unit": "区民政局", "e164": "+8657187654321", "extension": None,
            "label": "办事咨询", "active": True,
        }
    ]  # fmt: skip


def test_the_default_area_code_comes_from_the_settings(run, tmp_path):
    write(tmp_path / "callback.toml", 'default_area_code = "010"\n')  # the cli runs in tmp_path
    assert run("add", "区民政局", "8765-4321").exit_code == 0
    assert [h["e164"] for h in listed(run)] == ["+861087654321"]


def test_the_same_number_typed_another_way_is_already_listed(run, engine):
    assert run("add", "区民政局", "8765-4321").output.strip() == "Added."
    again = run("add", "区民政局", "0571-8765 4321")
    assert again.exit_code == 0
    assert again.output.strip() == "Already listed."
    assert len(listed(run)) == 1
    assert len(audit(engine)) == 1  # nothing changed, nothing audited


def test_one_number_may_serve_two_units(run):
    assert run("add", "区民政局", "0571-87654321").exit_code == 0
    assert run("add", "区市场监管局", "0571-87654321").output.strip() == "Added."
    assert [h["unit"] for h in listed(run)] == ["区市场监管局", "区民政局"]


def test_an_unknown_unit_is_a_clean_error_and_nothing_is_stored(run, engine):
    result = run("add", "区不存在局", "0571-87654321")
    assert result.exit_code == 1
    assert "no unit named '区不存在局'" in one_line_error(result)
    assert table_rows(engine, "hotlines") == [] and audit(engine) == []


def test_a_bad_number_is_a_clean_error(run, engine):
    result = run("add", "区民政局", "12")
    assert result.exit_code == 1
    assert "'12' is not a telephone number" in one_line_error(result)
    assert table_rows(engine, "hotlines") == []


def test_adding_is_audited_with_actor_and_after(run, engine):
    assert run("add", "区民政局", "8765-4321").exit_code == 0
    [entry] = audit(engine)
    assert (entry.action, entry.actor, entry.at) == ("hotline.add", "tester", NOW)
    assert entry.entity_id == listed(run)[0]["id"]
    assert entry.before is None
    assert entry.after == {
        "unit": "区民政局", "e164": "+8657187654321", "extension": None, "active": True,
    }  # fmt: skip


def test_a_new_hotline_is_audited_with_sql_null_before_as_other_creations(units, engine, tmp_path):
    # As agents and the do-not-call list write a creation: SQL NULL, not the JSON value null.
    assert hotlines.add(engine, "区民政局", "0571-87654321", "tester", NOW)
    path = write(tmp_path / "hotlines.csv", "区市场监管局,0571-87001234\n")
    assert hotlines.import_file(engine, path, "tester", NOW) == (1, 0)
    with engine.connect() as conn:
        nulls = conn.execute(
            sa.text("""SELECT "before" IS NULL FROM audit_log WHERE action = 'hotline.add'""")
        ).scalars()
        assert [bool(v) for v in nulls] == [True, True]


# -- import ------------------------------------------------------------------------------------


def test_import_with_a_header_adds_every_row(run, engine, tmp_path):
    path = write(
        tmp_path / "hotlines.csv",
        "unit,number,label\n"
        "区民政局,0571-8765 4321,办事咨询\n"
        "区市场监管局,8700-1234\n"
        "\n"
        "区民政局,057187654321\n",  # the first number again, typed another way
    )
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 added, 1 already listed."
    found = {(h["unit"], h["e164"], h["label"]) for h in listed(run)}
    assert found == {
        ("区民政局", "+8657187654321", "办事咨询"),
        ("区市场监管局", "+8657187001234", None),
    }
    assert [e.actor for e in audit(engine)] == ["tester", "tester"]


def test_import_of_a_gbk_file_from_excel(run, tmp_path):
    path = write(tmp_path / "hotlines.csv", "单位,电话\n区民政局,0571-87654321\n", "gbk")
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert [h["unit"] for h in listed(run)] == ["区民政局"]


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("区民政局,not a number", "row 3: number: 'not a number' is not a telephone number"),
        ("区不存在局,0571-87001234", "row 3: unit: no unit named '区不存在局'"),
        ("区民政局", "row 3: expected: unit, number[, label]"),
    ],
)
def test_a_bad_row_names_file_row_and_field_and_nothing_is_stored(
    run, engine, tmp_path, bad_row, message
):
    path = write(
        tmp_path / "hotlines.csv",
        f"unit,number\n区市场监管局,0571-87001111\n{bad_row}\n区民政局,0571-87002222\n",
    )
    result = run("import", str(path))
    assert result.exit_code == 1
    assert f"{path}, {message}" in one_line_error(result)
    assert table_rows(engine, "hotlines") == [] and audit(engine) == []


def test_import_of_a_missing_file_is_a_clean_error(run, tmp_path):
    result = run("import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert "nope.csv: file not found" in one_line_error(result)


def test_import_of_a_file_in_no_known_encoding_is_a_clean_error(run, engine, tmp_path):
    path = tmp_path / "hotlines.csv"
    path.write_bytes(b"\xff\xfe\x00\xd8")  # a UTF-16 byte order mark, then half a character
    result = run("import", str(path))
    assert result.exit_code == 1
    assert "hotlines.csv" in one_line_error(result)
    assert table_rows(engine, "hotlines") == []


# -- deactivate and list -----------------------------------------------------------------------


def test_a_deactivated_hotline_is_listed_only_with_all(run, engine):
    assert run("add", "区民政局", "0571-87654321").exit_code == 0
    assert run("add", "区市场监管局", "0571-87001234").exit_code == 0
    gone = next(h["id"] for h in listed(run) if h["unit"] == "区民政局")
    result = run("deactivate", str(gone), "--reason", "no longer published")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Hotline {gone} deactivated."
    assert [h["unit"] for h in listed(run)] == ["区市场监管局"]
    every = {h["id"]: h["active"] for h in listed(run, "--all")}
    assert every[gone] is False and len(every) == 2
    text = run("list", "--all").output
    assert "+8657187654321" in text and " no" in text
    assert "+8657187654321" not in run("list").output


def test_deactivation_is_audited_with_before_after_and_reason(run, engine):
    assert run("add", "区民政局", "0571-87654321").exit_code == 0
    hotline_id = listed(run)[0]["id"]
    assert run("deactivate", str(hotline_id), "--reason", "number changed").exit_code == 0
    entry = audit(engine)[-1]
    assert (entry.action, entry.actor, entry.entity_id) == ("hotline.deactivate", "tester",
                                                             hotline_id)  # fmt: skip
    assert (entry.before, entry.after) == ({"active": True}, {"active": False})
    assert entry.reason == "number changed"


def test_deactivating_twice_or_an_unknown_hotline_is_a_clean_error(run, engine):
    assert run("add", "区民政局", "0571-87654321").exit_code == 0
    hotline_id = listed(run)[0]["id"]
    assert run("deactivate", str(hotline_id), "--reason", "x").exit_code == 0
    again = run("deactivate", str(hotline_id), "--reason", "x")
    assert again.exit_code == 1
    assert "already inactive" in one_line_error(again)
    unknown = run("deactivate", "999", "--reason", "x")
    assert unknown.exit_code == 1
    assert "no hotline with id 999" in one_line_error(unknown)
    assert len(audit(engine)) == 2  # the add and the one deactivation


def test_deactivate_needs_a_reason(run):
    result = run("deactivate", "1")
    assert result.exit_code == 2 and "--reason" in result.output


def test_adding_a_deactivated_hotline_again_reactivates_it(run, engine):
    assert run("add", "区民政局", "0571-87654321").exit_code == 0
    hotline_id = listed(run)[0]["id"]
    assert run("deactivate", str(hotline_id), "--reason", "x").exit_code == 0
    result = run("add", "区民政局", "8765-4321")
    assert result.output.strip() == "Added."
    assert [(h["id"], h["active"]) for h in listed(run)] == [(hotline_id, True)]
    entry = audit(engine)[-1]
    assert (entry.action, entry.entity_id) == ("hotline.add", hotline_id)
    assert entry.before == {"active": False, "extension": None}
    assert entry.after["active"] is True


# -- numbers as units publish them -------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "e164", "extension"),
    [
        ("0571-8800 1111转8001", "+8657188001111", "8001"),
        ("057188001111-8001", "+8657188001111", "8001"),
        ("12345", "+8657112345", None),  # the city's 12345: the default area code's
        ("12366转2", "+8657112366", "2"),  # a menu choice keyed after the answer
        ("0574-12345", "+8657412345", None),  # another city's, as written
        ("+86 571 96345", "+8657196345", None),
        ("４００８１２３１２３", "+864008123123", None),  # full-width, from a web page
    ],
)
def test_a_number_is_listed_as_published_with_its_extension(run, published, e164, extension):
    result = run("add", "区民政局", published)
    assert result.exit_code == 0, result.output
    [hotline] = listed(run)
    assert (hotline["e164"], hotline["extension"]) == (e164, extension)


def test_the_list_shows_the_extension(run):
    assert run("add", "区民政局", "0571-8800 1111转8001").exit_code == 0
    output = run("list").output
    header, *_, row = output.splitlines()
    assert "extension" in header and "+8657188001111" in row and "8001" in row


@pytest.mark.parametrize("emergency", ["110", "0571-119", "120", "122转1"])
def test_an_emergency_number_is_never_a_hotline(run, engine, emergency):
    result = run("add", "区民政局", emergency)
    assert result.exit_code == 1
    assert "an emergency number" in one_line_error(result)
    assert table_rows(engine, "hotlines") == []


@pytest.mark.parametrize(
    ("published", "why"),
    [
        ("0000-12345", "not a valid Chinese telephone number"),  # no real area code before it
        ("0571-88001111/12345", "more than one number: list each on its own"),
    ],
)
def test_a_number_no_hotline_can_have_is_refused(run, engine, published, why):
    result = run("add", "区民政局", published)
    assert result.exit_code == 1
    message = one_line_error(result)
    assert f"{published!r} is not a telephone number of a hotline ({why})" in message
    assert table_rows(engine, "hotlines") == []


def test_the_same_number_with_another_extension_is_refused_while_listed(run, engine):
    assert run("add", "区民政局", "0571-8800 1111转8001").exit_code == 0
    assert run("add", "区民政局", "0571-8800 1111 转 8001").output.strip() == "Already listed."
    result = run("add", "区民政局", "0571-8800 1111转8002")
    assert result.exit_code == 1
    message = one_line_error(result)
    assert (
        "with extension 8001, not extension 8002" in message and "deactivate hotline 1" in message
    )
    assert [h["extension"] for h in listed(run)] == ["8001"] and len(audit(engine)) == 1


def test_reactivating_a_number_takes_the_extension_published_now(run, engine):
    assert run("add", "区民政局", "0571-8800 1111转8001").exit_code == 0
    assert run("deactivate", "1", "--reason", "extension changed").exit_code == 0
    assert run("add", "区民政局", "0571-8800 1111转8002").output.strip() == "Added."
    assert [(h["id"], h["extension"], h["active"]) for h in listed(run)] == [(1, "8002", True)]
    entry = audit(engine)[-1]
    assert entry.before == {"active": False, "extension": "8001"}
    assert (entry.after["extension"], entry.after["active"]) == ("8002", True)


def test_an_import_with_one_number_under_two_extensions_names_the_row(run, engine, tmp_path):
    path = write(tmp_path / "h.csv", "区民政局,0571-88001111转8001\n区民政局,0571-88001111转8002\n")
    result = run("import", str(path))
    assert result.exit_code == 1
    message = one_line_error(result)
    assert "h.csv" in message and "row 2" in message and "extension 8001" in message
    assert table_rows(engine, "hotlines") == []


def test_list_of_no_hotlines_is_empty(run):
    assert listed(run) == [] and listed(run, "--all") == []
