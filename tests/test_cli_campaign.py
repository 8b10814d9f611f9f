"""``callback campaign``: create, list, show, sample and close, and their errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import calendar
from callback.config import Settings
from callback.importing import ImportOptions, import_file
from callback.models import Campaign, Case, Hotline, QueueItem, Unit, table
from callback.synthetic import write_district

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Monday 8 October 2018, 10:00 in Hangzhou: the first working day after the National Day week.
NOW = datetime(2018, 10, 8, 2, 0, tzinfo=UTC)
campaigns_t, queue_t, cases_t = table(Campaign), table(QueueItem), table(Case)
units_t, hotlines_t = table(Unit), table(Hotline)


@pytest.fixture
def cases(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    """A small district: 300 cases handled June to September 2018."""
    path = tmp_path / "district.csv"
    write_district(path, 300, seed=3)
    import_file(engine, path, settings, ImportOptions(rejects_dir=tmp_path), now=NOW)


@pytest.fixture
def run(cli):
    """Invoke ``callback --now '2018-10-08 10:00' ARGS``: commands act at NOW."""

    def invoke(*args: str):
        return cli("--now", "2018-10-08 10:00", *args)

    return invoke


def stored(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(campaigns_t).where(campaigns_t.c.name == name)).one()


def campaign_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(campaigns_t)).scalar_one()


def items(engine: Engine, name: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(queue_t)
            .join(campaigns_t, campaigns_t.c.id == queue_t.c.campaign_id)
            .where(campaigns_t.c.name == name)
            .order_by(queue_t.c.id)
        ).all()


def sampled_case_ids(engine: Engine, name: str) -> list[int]:
    return sorted(item.case_id for item in items(engine, name))


def one_line_error(result) -> str:
    """The error of a failed command, checked to be one clean line."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# -- create ------------------------------------------------------------------------------------


def test_create_stores_the_design_from_the_options(run, engine):
    result = run(
        "campaign", "create", "2018-summer", "--year", "2018", "--size", "40",
        "--strata", "unit, month", "--seed", "7", "--title", "2018年6-9月办事服务回访",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2018-06-01 to 2018-09-30, seed 7" in result.output
    assert "callback campaign sample 2018-summer" in result.output
    row = stored(engine, "2018-summer")
    assert (row.status, row.target, row.script, row.dialer) == (
        "draft", "cases", "service-callback", "manual",
    )  # fmt: skip
    assert row.created_by == "tester" and row.created_at == NOW
    assert row.title == "2018年6-9月办事服务回访"
    assert (row.period_start, row.period_end) == (date(2018, 6, 1), date(2018, 9, 30))
    assert row.design["period"] == {"start": "2018-06-01", "end": "2018-09-30"}
    assert row.design["strata"] == ["unit", "month"]
    assert row.design["size"] == 40 and row.design["seed"] == 7
    assert row.design["allocation"] == "proportional"
    assert row.design["exclusions"] == {"contact_gap_days": 30, "one_per_phone": True}


def test_without_a_seed_a_new_one_is_printed_and_stored(run, engine):
    result = run("campaign", "create", "a", "--year", "2018", "--size", "10")
    assert result.exit_code == 0, result.output
    printed = int(re.search(r"seed (\d+)\.", result.output).group(1))
    assert stored(engine, "a").design["seed"] == printed


def test_the_same_seed_draws_the_same_sample(run, engine, cases):
    for name, seed in (("first", "7"), ("again", "7"), ("other", "8")):
        created = run("campaign", "create", name, "--year", "2018", "--size", "40",
                      "--strata", "unit,month", "--seed", seed)  # fmt: skip
        assert created.exit_code == 0, created.output
        assert run("campaign", "sample", name).exit_code == 0
    first = sampled_case_ids(engine, "first")
    assert len(first) == 40
    assert sampled_case_ids(engine, "again") == first
    assert sampled_case_ids(engine, "other") != first


def test_from_and_to_set_the_period_and_the_sample_keeps_to_it(run, engine, cases):
    result = run("campaign", "create", "july", "--from", "2018-07-01", "--to", "2018-07-31",
                 "--size", "20", "--seed", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    row = stored(engine, "july")
    assert (row.period_start, row.period_end) == (date(2018, 7, 1), date(2018, 7, 31))
    assert run("campaign", "sample", "july").exit_code == 0
    with engine.connect() as conn:
        handled = conn.execute(
            sa.select(cases_t.c.handled_at).where(
                cases_t.c.id.in_(sampled_case_ids(engine, "july"))
            )
        ).scalars()
        months = {at.astimezone(SHANGHAI).strftime("%Y-%m") for at in handled}
    assert months == {"2018-07"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--year", "2018", "--from", "2018-06-01"], "give --year or --from/--to, not both"),
        (["--year", "2018", "--to", "2018-09-30"], "give --year or --from/--to, not both"),
        (["--from", "2018-06-01"], "give the period"),
        ([], "give the period"),
    ],
)
def test_the_period_is_given_one_way_or_it_is_a_usage_error(run, engine, options, message):
    result = run("campaign", "create", "x", "--size", "10", *options)
    assert result.exit_code == 2
    assert message in result.output
    assert campaign_count(engine) == 0


def test_a_period_that_ends_before_it_starts_is_a_clean_error(run, engine):
    result = run("campaign", "create", "x", "--from", "2018-09-01", "--to", "2018-06-01",
                 "--size", "10")  # fmt: skip
    assert result.exit_code == 1
    assert "ends (2018-06-01) before it starts (2018-09-01)" in one_line_error(result)
    assert campaign_count(engine) == 0


def test_an_unknown_calling_rule_is_a_one_line_error_and_nothing_is_stored(run, engine, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"max_attempts_per_cse": 3}', encoding="utf-8")
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--rules", str(rules))  # fmt: skip
    assert result.exit_code == 2  # a bad --rules file is a bad value, as when it is not JSON
    assert "unknown calling rule settings: max_attempts_per_cse" in one_line_error(result)
    assert f"--rules: {rules}: " in one_line_error(result)
    assert campaign_count(engine) == 0


def test_a_rules_file_that_is_not_json_names_the_file(run, engine, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text("max_attempts_per_case = 3", encoding="utf-8")
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--rules", str(rules))  # fmt: skip
    assert result.exit_code == 2
    assert "rules.json: not valid calling rules" in result.output
    assert campaign_count(engine) == 0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("rules.json", '{"windows": "09:00-12:00"}',
         'rules.windows: expected a list of windows like [{"start": "09:00", "end": "12:00"}]'),
        ("rules.json", '{"windows": [{"start": "09:00"}]}',
         'rules.windows[0].end: missing; give the local time as "HH:MM", e.g. "09:00"'),
        ("rules.json", '{"windows": [{"start": "12:00", "end": "09:00"}]}',
         "rules.windows[0].end: 09:00 is not after start 12:00"),
        ("rules.toml", 'windows = [{start = "09:00", end = "12:00", weekdays = ["mon", "mnd"]}]',
         "rules.windows[0].weekdays[1]: 'mnd' is not a day: expected 0-6 (Monday = 0)"),
        ("rules.toml", "windows = [{start = 09:00:00, end = 12:00:00}]",
         'rules.windows[0].start: expected a local time written "HH:MM" (00:00-23:59), e.g. '
         '"09:00", not datetime.time(9, 0) (in TOML, quote it: "09:00")'),
    ],
)  # fmt: skip
def test_malformed_windows_in_a_rules_file_name_the_file_and_field(
    run, engine, tmp_path, name, text, message
):
    rules = tmp_path / name
    rules.write_text(text, encoding="utf-8")
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--rules", str(rules))  # fmt: skip
    assert result.exit_code == 2, result.output
    error = one_line_error(result)
    assert f"Invalid value for --rules: {rules}: {message}" in error
    assert campaign_count(engine) == 0


def test_window_days_in_a_rules_file_may_be_names(run, engine, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('windows = [{start = "09:00", end = "12:00", weekdays = ["mon", "周二"]}]')
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--rules", str(rules))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stored(engine, "x").rules["windows"] == [
        {"start": "09:00", "end": "12:00", "weekdays": [0, 1]}
    ]


def test_the_rules_of_a_toml_file_are_stored_in_full(run, engine, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'max_attempts_per_case = 3\nwindows = [{start = "09:00", end = "12:00"}]\n',
        encoding="utf-8",
    )
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--rules", str(rules))  # fmt: skip
    assert result.exit_code == 0, result.output
    stored_rules = stored(engine, "x").rules
    assert stored_rules["max_attempts_per_case"] == 3
    assert stored_rules["windows"] == [{"start": "09:00", "end": "12:00"}]
    # Every setting is written out, so later changes of the defaults leave it alone.
    assert "max_attempts_per_number" in stored_rules and "slots" in stored_rules


@pytest.mark.parametrize(
    ("deadline", "local"),
    [
        ("2018-10-31", datetime(2018, 10, 31, 23, 59)),  # a date: to the end of that day
        ("2018-10-31 17:00", datetime(2018, 10, 31, 17, 0)),
        ("2018-10-31T17:00", datetime(2018, 10, 31, 17, 0)),
    ],
)
def test_the_deadline_is_local_time_in_shanghai(run, engine, deadline, local):
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--deadline", deadline)  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = local.replace(tzinfo=SHANGHAI)
    assert stored(engine, "x").deadline == expected
    assert stored(engine, "x").deadline == expected.astimezone(UTC)  # 8 hours before, in UTC
    listed = run("campaign", "list")
    assert f"{local:%Y-%m-%d %H:%M}" in listed.output


def test_a_deadline_with_an_offset_keeps_it(run, engine):
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--deadline", "2018-10-31T17:00+00:00")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stored(engine, "x").deadline == datetime(2018, 10, 31, 17, 0, tzinfo=UTC)


def test_a_deadline_that_is_not_a_time_is_a_usage_error(run, engine):
    result = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                 "--deadline", "end of October")  # fmt: skip
    assert result.exit_code == 2
    assert "--deadline" in result.output and "not a date or time" in result.output
    assert campaign_count(engine) == 0


DESIGN_TOML = """\
seed = 11
strata = ["unit", "channel"]
size = 25
allocation = "proportional"

[period]
start = 2018-07-01
end = 2018-08-31

[exclusions]
contact_gap_days = 0
one_per_phone = false
"""

DESIGN_JSON = {
    "seed": 11,
    "strata": ["unit", "channel"],
    "size": 25,
    "allocation": "proportional",
    "period": {"start": "2018-07-01", "end": "2018-08-31"},
    "exclusions": {"contact_gap_days": 0, "one_per_phone": False},
}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_design_file_in_toml_or_json_is_stored(run, engine, tmp_path, suffix):
    path = tmp_path / f"design{suffix}"
    text = DESIGN_TOML if suffix == ".toml" else json.dumps(DESIGN_JSON)
    path.write_text(text, encoding="utf-8")
    result = run("campaign", "create", "x", "--design", str(path))
    assert result.exit_code == 0, result.output
    assert "2018-07-01 to 2018-08-31, seed 11" in result.output
    row = stored(engine, "x")
    assert (row.period_start, row.period_end) == (date(2018, 7, 1), date(2018, 8, 31))
    design = row.design
    assert design["strata"] == ["unit", "channel"] and design["size"] == 25
    assert design["exclusions"] == {"contact_gap_days": 0, "one_per_phone": False}
    assert design["seed"] == 11


def test_a_design_file_and_the_same_seed_draw_what_the_options_draw(run, engine, cases, tmp_path):
    path = tmp_path / "design.json"
    path.write_text(json.dumps(DESIGN_JSON), encoding="utf-8")
    assert run("campaign", "create", "by-file", "--design", str(path)).exit_code == 0
    by_options = run(
        "campaign", "create", "by-options", "--from", "2018-07-01", "--to", "2018-08-31",
        "--strata", "unit,channel", "--size", "25", "--seed", "11", "--contact-gap-days", "0",
        "--every-case",
    )  # fmt: skip
    assert by_options.exit_code == 0, by_options.output
    for name in ("by-file", "by-options"):
        assert run("campaign", "sample", name).exit_code == 0
    assert sampled_case_ids(engine, "by-file") == sampled_case_ids(engine, "by-options")


def test_design_options_next_to_a_design_file_are_refused(run, engine, tmp_path):
    path = tmp_path / "design.json"
    path.write_text(json.dumps(DESIGN_JSON), encoding="utf-8")
    result = run("campaign", "create", "x", "--design", str(path), "--seed", "5", "--size", "9")
    assert result.exit_code == 2
    assert "--design gives the whole design" in result.output
    assert "--seed" in result.output and "--size" in result.output
    assert campaign_count(engine) == 0


def test_an_unknown_key_in_a_design_file_is_a_clean_error(run, engine, tmp_path):
    path = tmp_path / "design.toml"
    path.write_text("sise = 30\n" + DESIGN_TOML, encoding="utf-8")
    result = run("campaign", "create", "x", "--design", str(path))
    assert result.exit_code == 1
    assert "unknown design key(s) sise" in one_line_error(result)
    assert campaign_count(engine) == 0


def test_a_design_file_that_is_not_toml_names_the_file(run, engine, tmp_path):
    path = tmp_path / "design.toml"
    path.write_text('{"seed": 1}', encoding="utf-8")
    result = run("campaign", "create", "x", "--design", str(path))
    assert result.exit_code == 2
    assert "design.toml: not valid design" in result.output
    assert campaign_count(engine) == 0


def test_a_second_campaign_of_the_same_name_is_refused(run, engine):
    assert run("campaign", "create", "x", "--year", "2018", "--size", "10").exit_code == 0
    result = run("campaign", "create", "x", "--year", "2018", "--size", "20")
    assert result.exit_code == 1
    assert "a campaign named x already exists" in one_line_error(result)
    assert stored(engine, "x").design["size"] == 10


# -- sample, show, list, close -----------------------------------------------------------------


@pytest.fixture
def summer(run, cases) -> str:
    """Campaign 'summer', created (40 cases by unit and month, seed 7), not yet sampled."""
    result = run("campaign", "create", "summer", "--year", "2018", "--size", "40",
                 "--strata", "unit,month", "--seed", "7")  # fmt: skip
    assert result.exit_code == 0, result.output
    return "summer"


def test_sample_fills_the_queues_with_scheduled_items(run, engine, summer):
    result = run("campaign", "sample", summer)
    assert result.exit_code == 0, result.output
    assert "Frame 300 cases; eligible 300; sampled 40 of 40 requested." in result.output
    queued = items(engine, summer)
    assert len(queued) == 40
    assert all(item.due_at is not None for item in queued)
    assert stored(engine, summer).status == "sampled"
    status = run("queue", "status", "--campaign", summer, "--at", "2018-10-08 10:00", "--json")
    assert status.exit_code == 0, status.output
    rows = json.loads(status.output)
    assert sum(r["open"] for r in rows) == 40
    assert all("unscheduled" not in r["waiting"] for r in rows)
    # Monday 10:00 is inside the default calling window: every new item is due at once.
    assert sum(r["due"] for r in rows) == 40


def test_sample_json_is_the_report(run, engine, summer):
    result = run("campaign", "sample", summer, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sampled"] == report["requested"] == 40
    assert sum(s["n"] for s in report["strata"]) == 40
    assert report["frame"] == report["eligible"] + sum(report["excluded"].values())
    assert stored(engine, summer).sample_report == report


def test_sampling_twice_is_refused_and_changes_nothing(run, engine, summer):
    assert run("campaign", "sample", summer).exit_code == 0
    before = sampled_case_ids(engine, summer)
    again = run("campaign", "sample", summer)
    assert again.exit_code == 1
    assert "a campaign is sampled once" in one_line_error(again)
    assert "has 40 queue items" in again.output
    assert sampled_case_ids(engine, summer) == before


def test_an_unknown_campaign_is_a_clean_error(run):
    for verb in ("show", "sample", "close"):
        result = run("campaign", verb, "nope")
        assert result.exit_code == 1
        assert "no campaign 'nope'" in one_line_error(result)


def test_show_prints_the_settings_report_and_queue_counts(run, engine, summer):
    draft = run("campaign", "show", summer)
    assert draft.exit_code == 0, draft.output
    assert "status draft" in draft.output and "deadline none" in draft.output
    assert "sampled at" not in draft.output
    assert run("campaign", "sample", summer).exit_code == 0
    shown = run("campaign", "show", summer)
    assert "status sampled" in shown.output
    assert "sampled at 2018-10-08 10:00" in shown.output
    assert "sampled 40 of 40 requested" in shown.output
    data = json.loads(run("campaign", "show", summer, "--json").output)
    assert (data["items"], data["open"], data["finished"]) == (40, 40, 0)
    assert sum(q["items"] for q in data["queues"]) == 40
    by_unit: dict[str, int] = {}
    for item in items(engine, summer):
        by_unit[item.unit_id] = by_unit.get(item.unit_id, 0) + 1
    assert sorted(q["items"] for q in data["queues"]) == sorted(by_unit.values())
    # The text shows each unit's queue with its count.
    first = data["queues"][0]
    assert re.search(rf"{re.escape(first['unit'])}\s+{first['items']}\s+{first['open']}\s+0",
                     shown.output)  # fmt: skip


def test_show_by_id(run, engine, summer):
    campaign_id = stored(engine, summer).id
    result = run("campaign", "show", f"#{campaign_id}")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{summer} (id {campaign_id})")


def test_list_prints_each_campaign_with_its_counts(run, engine, summer):
    assert run("campaign", "create", "later", "--year", "2018", "--size", "5").exit_code == 0
    assert run("campaign", "sample", summer).exit_code == 0
    text = run("campaign", "list").output
    assert re.search(r"summer\s+cases\s+sampled\s+manual\s+2018-06-01 – 2018-09-30\s+40\s+40\s+0",
                     text)  # fmt: skip
    assert re.search(r"later\s+cases\s+draft\s+.*\s0\s+0\s+0$", text, re.MULTILINE)
    data = json.loads(run("campaign", "list", "--json").output)
    assert [c["name"] for c in data] == ["later", "summer"]  # newest first
    counts = {c["name"]: (c["items"], c["open"], c["finished"], c["status"]) for c in data}
    assert counts == {"summer": (40, 40, 0, "sampled"), "later": (0, 0, 0, "draft")}


def test_close_then_close_again_is_refused(run, engine, summer):
    assert run("campaign", "sample", summer).exit_code == 0
    closed = run("campaign", "close", summer)
    assert closed.exit_code == 0, closed.output
    assert "Closed campaign summer." in closed.output
    row = stored(engine, summer)
    assert row.status == "closed" and row.closed_at == NOW
    assert len(items(engine, summer)) == 40  # its items stay
    again = run("campaign", "close", summer)
    assert again.exit_code == 1
    assert "already closed on 2018-10-08" in one_line_error(again)
    assert "closed" in run("campaign", "show", summer).output


def test_a_closed_draft_cannot_be_sampled(run, engine, summer):
    assert run("campaign", "close", summer).exit_code == 0
    result = run("campaign", "sample", summer)
    assert result.exit_code == 1
    assert "is closed" in one_line_error(result)
    assert items(engine, summer) == []


# -- hotline spot checks -----------------------------------------------------------------------


@pytest.fixture
def hotlines(engine: Engine) -> dict[str, int]:
    """Three units' hotlines, of which the third is no longer active."""
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for n, name in enumerate(("区民政局", "区市场监管局", "区税务局")):
            unit_id = conn.execute(
                sa.insert(units_t)
                .values(name=name, kind="department", created_at=NOW)
                .returning(units_t.c.id)
            ).scalar_one()
            ids[name] = conn.execute(
                sa.insert(hotlines_t)
                .values(unit_id=unit_id, e164=f"+86571870000{n:02d}", active=n < 2,
                        created_at=NOW)
                .returning(hotlines_t.c.id)
            ).scalar_one()  # fmt: skip
    return ids


def in_office_hours(at: datetime) -> bool:
    local = at.astimezone(SHANGHAI)
    hours = (time(9), time(11, 30)), (time(14), time(17))
    return calendar.is_working_day(local.date()) and any(
        start <= local.time() < end for start, end in hours
    )


def test_a_hotlines_campaign_plans_checks_of_active_hotlines_in_office_hours(run, engine, hotlines):
    created = run("campaign", "create", "spot", "--hotlines", "--from", "2018-10-08",
                  "--to", "2018-10-24", "--seed", "3", "--calls-per-week", "2")  # fmt: skip
    assert created.exit_code == 0, created.output
    row = stored(engine, "spot")
    assert (row.target, row.script) == ("hotlines", "hotline-check")
    assert row.design["calls_per_week"] == 2
    sampled = run("campaign", "sample", "spot")
    assert sampled.exit_code == 0, sampled.output
    # Report weeks start on Thursdays 4, 11 and 18 October: 3 weeks x 2 calls x 2 hotlines.
    assert "Planned 12 spot checks of 2 hotlines over 3 report weeks" in sampled.output
    planned = items(engine, "spot")
    assert len(planned) == 12
    active = {hotlines["区民政局"], hotlines["区市场监管局"]}
    assert {item.hotline_id for item in planned} == active
    assert all(item.case_id is None for item in planned)
    assert all(in_office_hours(item.appointment_at) for item in planned)
    assert all(item.appointment_at >= NOW for item in planned)
    assert all(item.due_at == item.appointment_at for item in planned)


def test_case_sampling_options_are_refused_for_hotlines(run, engine):
    result = run("campaign", "create", "spot", "--hotlines", "--year", "2018", "--size", "10")
    assert result.exit_code == 2
    assert "--size: not for --hotlines spot checks" in result.output
    cases_only = run("campaign", "create", "x", "--year", "2018", "--size", "10",
                     "--calls-per-week", "3")  # fmt: skip
    assert cases_only.exit_code == 2
    assert "--calls-per-week is for --hotlines" in cases_only.output
    assert campaign_count(engine) == 0
