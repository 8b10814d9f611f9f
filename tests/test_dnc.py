"""The do-not-call list: numbers as typed, audited, masked when listed, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import dnc
from callback.errors import ImportFileError
from callback.models import AuditEntry


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
