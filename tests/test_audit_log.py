"""The audit log read back: filters, newest first, masked unless asked for whole."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.engine import Engine
from test_calls import NOW, A, world

from callback import dnc
from callback.audit_log import audit_entries
from callback.campaign_states import pause_campaign
from callback.corrections import propose

DAY = timedelta(days=1)


def history(engine: Engine) -> None:
    """Three days of changes by three people (NOW is Wednesday 10:00 in Shanghai)."""
    world(engine)
    dnc.add(engine, ["13912345671"], "alice", reason="asked", now=NOW)
    dnc.remove(engine, ["13912345671"], "bob", "张三 called back from 0571-87654321",
               citizen_asked=True, now=NOW + DAY)  # fmt: skip
    pause_campaign(engine, "june", "carol", NOW + 2 * DAY, "脚本有误")
    propose(engine, "C0", "contact", "李四", "alice", NOW + 2 * DAY)


def test_filters_and_order(engine: Engine) -> None:
    history(engine)
    everything = audit_entries(engine)
    assert [e.at for e in everything] == sorted((e.at for e in everything), reverse=True)
    assert [e.action for e in audit_entries(engine, action="dnc")] == ["dnc.remove", "dnc.add"]
    assert [e.action for e in audit_entries(engine, action="dnc.add")] == ["dnc.add"]
    assert audit_entries(engine, action="dn") == []  # a kind is a whole word, not a prefix
    assert {e.actor for e in audit_entries(engine, actor="bob")} == {"bob"}
    day2 = audit_entries(engine, since=NOW + DAY - timedelta(hours=1), until=NOW + 2 * DAY)
    assert [e.action for e in day2] == ["dnc.remove"]
    case = audit_entries(engine, case_no="C0")
    assert case and all(e.case_no == "C0" for e in case)
    assert "case.update" in {e.action for e in case}
    assert len(audit_entries(engine, limit=2)) == 2


def test_numbers_and_names_are_masked_unless_asked(engine: Engine) -> None:
    history(engine)
    (removed,) = audit_entries(engine, action="dnc.remove")
    assert removed.before["e164"] == "139****5671"
    assert removed.reason == "张三 called back from 057*****4321"  # no case: no name known
    (update,) = audit_entries(engine, action="case.update")
    assert update.after == {"contact_name": "李*"} and update.case_no == "C0"
    dumped = json.dumps([vars(e) for e in audit_entries(engine)], default=str, ensure_ascii=False)
    assert A[3:] not in dumped and "李四" not in dumped
    (whole,) = audit_entries(engine, action="dnc.remove", full=True)
    assert whole.before["e164"] == A and "0571-87654321" in whole.reason


def test_the_cli_lists_changes(cli, engine: Engine) -> None:
    history(engine)
    out = cli("audit", "--action", "dnc").output
    assert "bob  dnc.remove  do_not_call 1" in out
    assert "e164: 139****5671 → —" in out
    assert "2026-06-11 10:00" in out  # local time
    day = cli("audit", "--since", "2026-06-12", "--until", "2026-06-12", "--json")
    assert {e["actor"] for e in json.loads(day.output)} == {"carol", "alice"}
    assert "13912345671" in cli("audit", "--action", "dnc", "--full").output
    limited = cli("audit", "--limit", "1")
    assert "--limit shows more" in limited.output


def test_being_shown_names_and_numbers_whole_is_on_record(cli, engine: Engine, tmp_path) -> None:
    history(engine)
    before = len(audit_entries(engine, limit=None))
    cli("cases", "show", "C0")
    cli("dnc", "list")
    cli("audit")
    assert len(audit_entries(engine, limit=None)) == before  # masked screens disclose nothing

    cli("--actor", "zhao", "cases", "show", "C0", "--full")
    cli("--actor", "zhao", "dnc", "list", "--full")
    cli("--actor", "zhao", "audit", "--action", "dnc", "--full")
    exported = cli("--actor", "zhao", "frame", "export", "--out", str(tmp_path / "frame.csv"))
    assert exported.exit_code == 0, exported.output
    seen = {e.action: e for e in audit_entries(engine, actor="zhao")}
    assert set(seen) == {"disclose.case", "disclose.dnc", "disclose.audit", "disclose.frame"}
    assert seen["disclose.case"].case_no == "C0"
    assert seen["disclose.audit"].after == {"action": "dnc", "entries": "2"}
    assert seen["disclose.frame"].after == {"file": "frame.csv", "format": "csv", "cases": 1,
                                          "numbers": 1}  # fmt: skip
    # The case's own file lists who saw it whole.
    assert "disclose.case" in cli("cases", "show", "C0").output
    assert len(audit_entries(engine, action="disclose")) == 4
