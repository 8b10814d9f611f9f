"""The do-not-call list: numbers as typed, audited, masked when listed, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_calls import A, rows, world

from callback import dnc
from callback.errors import ImportFileError
from callback.models import AuditEntry, QueueItem


def test_numbers_are_normalised_and_added_once(engine: Engine) -> None:
    assert dnc.add(engine, ["139 1234 5671", "+8613912345671", "87654321"], "tester") == (2, 0)
    assert dnc.add(engine, ["13912345671"], "tester") == (0, 1)
    assert [e.e164 for e in dnc.entries(engine)] == ["+8613912345671", "+8657187654321"]
    assert dnc.is_blocked(engine, "+8657187654321")
    assert not dnc.is_blocked(engine, "+8613587654321")


def test_adding_is_audited(engine: Engine) -> None:
    dnc.add(engine, ["13912345671"], "alice", reason="asked not to be called")
    with engine.connect() as conn:
        entry = conn.execute(sa.select(AuditEntry.__table__)).one()
    assert (entry.action, entry.actor, entry.reason) == (
        "dnc.add",
        "alice",
        "asked not to be called",
    )
    assert entry.after == {"e164": "+8613912345671", "source": "office"}


def test_a_bad_number_is_refused(engine: Engine) -> None:
    with pytest.raises(dnc.DoNotCallError, match="'12345'"):
        dnc.add(engine, ["12345"], "tester")
    assert dnc.entries(engine) == []


def test_import_a_file_and_name_the_bad_row(engine: Engine, tmp_path: Path) -> None:
    good = tmp_path / "dnc.csv"
    good.write_text("号码,原因\n13912345671,本人要求\n0571-87654321\n\n", encoding="utf-8")
    assert dnc.import_file(engine, good, "tester") == (2, 0)
    assert {e.reason for e in dnc.entries(engine)} == {"本人要求", None}
    bad = tmp_path / "bad.csv"
    bad.write_text("13587654321\nnot a number\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="bad.csv, row 2"):
        dnc.import_file(engine, bad, "tester")
    assert len(dnc.entries(engine)) == 2  # nothing of the bad file was added


def test_cli_add_list_masked_and_full(cli) -> None:
    assert cli("dnc", "add", "13912345671", "--reason", "本人要求").output.startswith("1 added")
    listed = cli("dnc", "list")
    assert "139****5671" in listed.output and "13912345671" not in listed.output
    assert "+8613912345671" in cli("dnc", "list", "--full").output
    data = json.loads(cli("dnc", "list", "--json").stdout)
    assert data[0]["number"] == "139****5671" and data[0]["reason"] == "本人要求"
    bad = cli("dnc", "add", "abc")
    assert bad.exit_code == 1 and "not a telephone number" in bad.output


def test_import_a_gbk_file_from_excel(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "谢绝回访.csv"
    path.write_text("号码,原因\n13912345671,本人要求不再回访\n0571-87654321,单位电话\n", "gbk")
    assert dnc.import_file(engine, path, "tester") == (2, 0)
    assert {e.reason for e in dnc.entries(engine)} == {"本人要求不再回访", "单位电话"}


def test_a_bad_row_of_a_gbk_file_names_the_file_and_row(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text("号码,原因\n13912345671,本人要求\n无号码,投诉\n", "gbk")
    with pytest.raises(ImportFileError, match=r"dnc.csv, row 3: '无号码' is not a telephone"):
        dnc.import_file(engine, path, "tester")
    assert dnc.entries(engine) == []


def test_cli_import_of_a_gbk_file(cli, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text("号码,原因\n13912345671,本人要求\n", "gbk")
    result = cli("dnc", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 added")
    assert [e.reason for e in dnc.entries(engine)] == ["本人要求"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00\xd8", "not readable as utf-16"),  # a byte order mark, half a character
        ("号码\n13912345671\n".encode("gbk") + b"\x80\xff\n", "cannot tell the encoding"),
    ],
    ids=["broken-utf-16", "neither-utf-8-nor-gbk"],
)
def test_cli_import_of_an_undecodable_file_is_a_clean_error(
    cli, engine: Engine, tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "dnc.csv"
    path.write_bytes(data)
    result = cli("dnc", "import", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: {path}: {message}" in result.output
    assert dnc.entries(engine) == []


def test_cli_import_of_a_missing_file_is_a_clean_error(cli, tmp_path: Path) -> None:
    result = cli("dnc", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1 and "nope.csv: file not found" in result.output


def test_removing_is_audited_with_the_entry_as_it_was(engine: Engine) -> None:
    dnc.add(engine, ["13912345671"], "alice", reason="unit asked", source="unit")
    removed, absent = dnc.remove(engine, ["139 1234 5671", "13587654321"], "bob", "wrong number")
    assert (removed, absent) == (1, ["+8613587654321"])
    assert dnc.entries(engine) == []
    with engine.connect() as conn:
        t = AuditEntry.__table__
        entry = conn.execute(sa.select(t).where(t.c.action == "dnc.remove")).one()
    assert (entry.actor, entry.reason, entry.after) == ("bob", "wrong number", None)
    assert entry.before["e164"] == "+8613912345671"
    assert (entry.before["source"], entry.before["reason"]) == ("unit", "unit asked")
    assert entry.before["added_by"] == "alice"
    with pytest.raises(dnc.DoNotCallError, match="say why"):
        dnc.remove(engine, ["13912345671"], "bob", " ")


def test_a_citizens_own_block_is_lifted_only_at_their_request(engine: Engine) -> None:
    dnc.add(engine, ["13912345671"], "ivr", reason="asked in a call", source="citizen")
    dnc.add(engine, ["13587654321"], "office", reason="typo")
    with pytest.raises(dnc.DoNotCallError, match=r"139\*\*\*\*5671: the citizen asked"):
        dnc.remove(engine, ["13587654321", "13912345671"], "bob", "cleaning up")
    assert len(dnc.entries(engine)) == 2  # all or nothing: the typo stays too
    assert dnc.remove(engine, ["13912345671"], "bob", "called us", citizen_asked=True) == (1, [])


def test_the_queues_show_a_block_and_its_lifting_at_once(engine: Engine) -> None:
    world(engine)
    assert rows(engine, QueueItem)[0].due_at is not None
    dnc.add(engine, [A], "office", reason="asked")
    item = rows(engine, QueueItem)[0]
    assert (item.due_at, item.wait_reason) == (None, "do-not-call")
    dnc.remove(engine, [A], "office", "added to the wrong case")
    item = rows(engine, QueueItem)[0]
    assert item.due_at is not None and item.wait_reason != "do-not-call"


def test_cli_remove(cli) -> None:
    cli("dnc", "add", "13912345671", "--source", "citizen")
    refused = cli("dnc", "remove", "13912345671", "--reason", "why")
    assert refused.exit_code == 1 and "--citizen-asked" in refused.output
    done = cli("dnc", "remove", "13912345671", "13587654321", "--reason", "called back",
               "--citizen-asked")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "1 removed." in done.output and "Not on the list: 135****4321." in done.output
