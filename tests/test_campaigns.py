"""Campaigns in the database: exclusions counted, samples written once, spot checks planned."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from dbsupport import table_rows
from sqlalchemy.engine import Engine

from callback.allocation import AllocationError
from callback.campaign_states import close_campaign
from callback.campaigns import (
    CampaignError,
    campaign_summary,
    create_campaign,
    list_campaigns,
    sample_campaign,
)
from callback.importing import ImportOptions, import_file
from callback.models import (
    CallAttempt,
    Campaign,
    Case,
    Contact,
    DoNotCall,
    Hotline,
    QueueItem,
    Unit,
    table,
)
from callback.queues import rules_from_json, rules_to_json
from callback.rules import CallingRules, Window
from callback.sampling_design import Exclusions, SamplingDesign
from callback.spotchecks import HotlineDesign, report_weeks
from callback.synthetic import write_district

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2018, 10, 8, 2, 0, tzinfo=UTC)  # Monday 8 October 2018, 10:00 local
units_t, cases_t, contacts_t = table(Unit), table(Case), table(Contact)
queue_t, attempts_t, campaigns_t = table(QueueItem), table(CallAttempt), table(Campaign)


def local(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2018, month, day, hour, minute, tzinfo=SHANGHAI)


def mobile(n: int) -> str:
    return f"+86139{n:08d}"


class Frame:
    """A hand-built frame: units, cases and their numbers, inserted directly."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.units: dict[str, int] = {}
        self.cases: dict[str, int] = {}
        self._earlier: tuple[int, int] | None = None

    def unit(self, name: str) -> int:
        if name not in self.units:
            with self.engine.begin() as conn:
                self.units[name] = conn.execute(
                    sa.insert(units_t)
                    .values(name=name, kind="department", created_at=NOW)
                    .returning(units_t.c.id)
                ).scalar_one()
        return self.units[name]

    def case(
        self,
        case_no: str,
        *numbers: str | tuple[str, str, str, datetime | None],
        unit: str = "区民政局",
        handled: datetime | None = None,
        channel: str | None = "window",
        town: str | None = None,
        item: str = "结婚登记",
    ) -> int:
        """Add a case; a number is an E.164 mobile, or (e164, kind, validity, superseded_at)."""
        unit_id, town_id = self.unit(unit), self.unit(town) if town else None
        with self.engine.begin() as conn:
            case_id = conn.execute(
                sa.insert(cases_t)
                .values(
                    case_no=case_no,
                    item_name=item,
                    unit_id=unit_id,
                    town_id=town_id,
                    applicant_type="person",
                    handled_at=handled or local(7, 2),
                    channel=channel,
                )
                .returning(cases_t.c.id)
            ).scalar_one()
            for position, number in enumerate(numbers):
                e164, kind, validity, superseded = (
                    (number, "mobile", "valid", None) if isinstance(number, str) else number
                )
                conn.execute(
                    sa.insert(contacts_t).values(
                        case_id=case_id,
                        position=position,
                        raw=e164,
                        e164=e164,
                        kind=kind,
                        validity=validity,
                        source="import",
                        created_at=NOW,
                        superseded_at=superseded,
                    )
                )
        self.cases[case_no] = case_id
        return case_id

    def do_not_call(self, *numbers: str) -> None:
        with self.engine.begin() as conn:
            for number in numbers:
                conn.execute(
                    sa.insert(table(DoNotCall)).values(
                        e164=number, source="citizen", added_by="tester", added_at=NOW
                    )
                )

    def called(self, number: str, at: datetime, placed: bool = True) -> None:
        """Record an attempt on ``number`` in an earlier campaign."""
        if self._earlier is None:
            campaign = create_campaign(
                self.engine, "earlier", design(), script="s", dialer="d", created_by="t", now=NOW
            )
            with self.engine.begin() as conn:
                item = conn.execute(
                    sa.insert(queue_t)
                    .values(
                        campaign_id=campaign,
                        unit_id=self.unit("区民政局"),
                        stratum="x",
                        inclusion_probability=1.0,
                        weight=1.0,
                        state="finished",
                    )
                    .returning(queue_t.c.id)
                ).scalar_one()
            self._earlier = (campaign, item)
        campaign, item = self._earlier
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(attempts_t).values(
                    queue_item_id=item,
                    campaign_id=campaign,
                    number=number,
                    worker="agent",
                    dialer="manual",
                    state="ended" if placed else "pending",
                    created_at=at,
                    placed_at=at if placed else None,
                )
            )


def design(**options: Any) -> SamplingDesign:
    options.setdefault("size", 1000)
    return SamplingDesign.summer(2018, seed=options.pop("seed", 42), **options)


def new_campaign(engine: Engine, name: str = "summer", **options: Any) -> int:
    d = options.pop("design", None) or design(**options)
    return create_campaign(
        engine, name, d, script="service-callback", dialer="manual", created_by="tester", now=NOW
    )


def sampled(engine: Engine, campaign: int) -> dict[str, dict[str, Any]]:
    """The queue items of a campaign by case number."""
    query = (
        sa.select(cases_t.c.case_no, queue_t)
        .join(cases_t, cases_t.c.id == queue_t.c.case_id)
        .where(queue_t.c.campaign_id == campaign)
    )
    with engine.connect() as conn:
        return {row.case_no: dict(row._mapping) for row in conn.execute(query)}


@pytest.fixture
def frame(engine: Engine) -> Frame:
    return Frame(engine)


# -- exclusions --------------------------------------------------------------------------------


def test_every_exclusion_is_counted_under_its_reason(engine, frame):
    gone = NOW - timedelta(days=400)
    frame.case("no-contact")
    frame.case("fake", (mobile(2), "mobile", "fake", None))
    frame.case("superseded", (mobile(3), "mobile", "valid", gone))
    frame.case("service-line", ("+864008001234", "other", "valid", None))
    frame.case("barred", mobile(5))
    frame.case("all-barred", mobile(6), mobile(7))
    frame.case("one-barred", mobile(5), mobile(8))
    frame.case("called-10-days-ago", mobile(9))
    frame.case("called-40-days-ago", mobile(10))
    frame.case("second-number-called", mobile(11), mobile(12))
    frame.case("dial-pending", mobile(13))
    frame.case("shared-a", mobile(14))
    frame.case("shared-b", mobile(14), unit="区公安分局")
    frame.case("landline", ("+8657187654321", "landline", "valid", None))
    frame.case("last-year", mobile(15), handled=local(7, 2) - timedelta(days=365))
    frame.do_not_call(mobile(5), mobile(6), mobile(7))
    frame.called(mobile(9), NOW - timedelta(days=10))
    frame.called(mobile(10), NOW - timedelta(days=40))
    frame.called(mobile(12), NOW - timedelta(days=29, hours=23))
    frame.called(mobile(13), NOW - timedelta(days=1), placed=False)
    campaign = new_campaign(engine)

    report = sample_campaign(engine, campaign, NOW)

    assert report["frame"] == 14
    assert report["excluded"] == {
        "no_valid_phone": 4,
        "do_not_call": 2,
        "recently_called": 2,
        "duplicate_phone": 1,
    }
    assert report["eligible"] == 5
    assert report["frame"] == report["eligible"] + sum(report["excluded"].values())
    drawn = set(sampled(engine, campaign))
    assert drawn - {"shared-a", "shared-b"} == {
        "one-barred",
        "called-40-days-ago",
        "dial-pending",
        "landline",
    }
    assert len(drawn & {"shared-a", "shared-b"}) == 1


def test_the_contact_gap_can_be_shortened_or_turned_off(engine, frame):
    frame.case("a", mobile(1))
    frame.called(mobile(1), NOW - timedelta(days=10))
    week = new_campaign(engine, "week", exclusions=Exclusions(contact_gap_days=7))
    assert sample_campaign(engine, week, NOW)["excluded"]["recently_called"] == 0
    off = new_campaign(engine, "off", exclusions=Exclusions(contact_gap_days=0))
    assert sample_campaign(engine, off, NOW)["excluded"]["recently_called"] == 0
    default = new_campaign(engine, "default")
    assert sample_campaign(engine, default, NOW)["excluded"]["recently_called"] == 1


def test_calls_after_the_sampling_time_do_not_count(engine, frame):
    # Sampling "as of" a past moment: what was dialled after it was not known then.
    frame.case("a", mobile(1))
    frame.called(mobile(1), NOW + timedelta(days=1))
    campaign = new_campaign(engine)
    assert sample_campaign(engine, campaign, NOW)["excluded"]["recently_called"] == 0


def test_the_one_citizen_rule_can_be_turned_off(engine, frame):
    frame.case("a", mobile(1))
    frame.case("b", mobile(1))
    campaign = new_campaign(engine, exclusions=Exclusions(one_per_phone=False))
    report = sample_campaign(engine, campaign, NOW)
    assert report["excluded"]["duplicate_phone"] == 0
    assert set(sampled(engine, campaign)) == {"a", "b"}


def test_an_empty_frame_samples_nothing_and_says_so(engine, frame):
    frame.case("barred", mobile(1))
    frame.do_not_call(mobile(1))
    campaign = new_campaign(engine, size=10)
    report = sample_campaign(engine, campaign, NOW)
    assert (report["eligible"], report["sampled"], report["strata"]) == (0, 0, [])
    assert "every eligible case is taken" in report["notes"][0]
    assert campaign_summary(engine, campaign).status == "sampled"


def test_the_period_is_in_local_dates(engine, frame):
    frame.case("first-minute", mobile(1), handled=local(6, 1, 0, 0))
    frame.case("last-minute", mobile(2), handled=local(9, 30, 23, 59))
    frame.case("day-before", mobile(3), handled=local(5, 31, 23, 59))
    frame.case("day-after", mobile(4), handled=local(10, 1, 0, 0))
    campaign = new_campaign(engine)
    report = sample_campaign(engine, campaign, NOW)
    assert report["frame"] == 2
    assert set(sampled(engine, campaign)) == {"first-minute", "last-minute"}


# -- the sample --------------------------------------------------------------------------------


def populate(frame: Frame) -> None:
    """Two units, cases over four months: 40 + 20 + 8 + 2 in 区民政局, 30 in 区公安分局."""
    serial = 0
    for unit, months in (("区民政局", (40, 20, 8, 2)), ("区公安分局", (30, 0, 0, 0))):
        for month, count in zip((6, 7, 8, 9), months, strict=True):
            for day in range(count):
                serial += 1
                frame.case(
                    f"C{serial:03d}", mobile(serial), unit=unit, handled=local(month, 1 + day % 28)
                )


def test_queue_items_carry_stratum_probability_weight_and_the_case_s_unit(engine, frame):
    populate(frame)
    campaign = new_campaign(engine, size=20, strata=("unit", "month"))
    report = sample_campaign(engine, campaign, NOW)
    items = sampled(engine, campaign)
    assert len(items) == report["sampled"] == 20
    strata = {s["stratum"]: (s["N"], s["n"]) for s in report["strata"]}
    assert all(s["cases"] == s["N"] for s in report["strata"])  # no shared numbers here
    assert strata == {
        "unit=区公安分局|month=2018-06": (30, 6),
        "unit=区民政局|month=2018-06": (40, 8),
        "unit=区民政局|month=2018-07": (20, 4),
        "unit=区民政局|month=2018-08": (8, 2),
        "unit=区民政局|month=2018-09": (2, 0),
    }
    with engine.connect() as conn:
        unit_of = dict(conn.execute(sa.select(cases_t.c.case_no, cases_t.c.unit_id)).all())
    assert Counter(item["stratum"] for item in items.values()) == {
        name: n for name, (_, n) in strata.items() if n
    }
    for case_no, item in items.items():
        big_n, n = strata[item["stratum"]]
        assert item["unit_id"] == unit_of[case_no]
        assert item["inclusion_probability"] == pytest.approx(n / big_n)
        assert item["weight"] == pytest.approx(big_n / n)
        assert (item["state"], item["wait_reason"], item["due_at"]) == ("open", "new", None)
        assert item["hotline_id"] is None and item["attempts"] == 0


def test_weights_of_cases_sharing_a_number_count_the_cases_they_stand_for(engine, frame):
    for i in range(1, 5):
        frame.case(f"S{i}", mobile(99))  # one citizen, four cases
    for i in range(1, 7):
        frame.case(f"A{i}", mobile(i))
    campaign = new_campaign(engine, size=7, strata=())
    report = sample_campaign(engine, campaign, NOW)
    assert report["strata"] == [{"stratum": "all", "N": 7, "n": 7, "cases": 10}]
    items = sampled(engine, campaign)
    (shared,) = [item for case_no, item in items.items() if case_no.startswith("S")]
    assert shared["inclusion_probability"] == pytest.approx(1 / 4)
    assert shared["weight"] == pytest.approx(4.0)
    # Weights still add up to every eligible case the sample stands for.
    assert sum(item["weight"] for item in items.values()) == pytest.approx(10)


def test_the_same_seed_draws_the_same_sample_and_another_seed_another(engine, frame):
    populate(frame)
    first = new_campaign(engine, "first", size=25, seed=7, strata=("unit", "month"))
    again = new_campaign(engine, "again", size=25, seed=7, strata=("unit", "month"))
    other = new_campaign(engine, "other", size=25, seed=8, strata=("unit", "month"))
    for campaign in (first, again, other):
        sample_campaign(engine, campaign, NOW)
    assert set(sampled(engine, first)) == set(sampled(engine, again))
    assert set(sampled(engine, first)) != set(sampled(engine, other))


def test_town_channel_and_item_strata_have_readable_names(engine, frame):
    frame.case("a", mobile(1), town="西溪街道", channel="online", item="结婚登记")
    frame.case("b", mobile(2), town=None, channel=None, item="离婚登记")
    campaign = new_campaign(engine, strata=("town", "channel", "item"))
    report = sample_campaign(engine, campaign, NOW)
    assert sorted(s["stratum"] for s in report["strata"]) == [
        "town=(none)|channel=(none)|item=离婚登记",
        "town=西溪街道|channel=online|item=结婚登记",
    ]


def test_large_unit_ids_do_not_overflow_the_stratum_code(engine, frame):
    with engine.begin() as conn:  # unit x town x month x channel codes pass 2**31 here
        conn.execute(
            sa.insert(units_t).values(
                id=100_000, name="区大数据局", kind="department", created_at=NOW
            )
        )
    frame.units["区大数据局"] = 100_000
    frame.case("a", mobile(1), unit="区大数据局", town="区大数据局", channel="mobile")
    campaign = new_campaign(engine, strata=("unit", "town", "month", "channel"))
    report = sample_campaign(engine, campaign, NOW)
    assert [s["stratum"] for s in report["strata"]] == [
        "unit=区大数据局|town=区大数据局|month=2018-07|channel=mobile"
    ]


def test_a_margin_of_error_plans_each_unit(engine, frame):
    populate(frame)
    campaign = new_campaign(engine, size=None, margin=0.1, strata=("unit", "month"))
    report = sample_campaign(engine, campaign, NOW)
    per_unit = Counter()
    for stratum in report["strata"]:
        per_unit[stratum["stratum"].split("|")[0]] += stratum["n"]
    # n0 = 1.96² · 0.25 / 0.01 = 96.04; 区民政局 N = 70: 96.04 / (1 + 95.04/70) = 40.8 → 41;
    # 区公安分局 N = 30: 96.04 / (1 + 95.04/30) = 23.05 → 24.
    assert per_unit == {"unit=区民政局": 41, "unit=区公安分局": 24}
    assert report["requested"] == report["sampled"] == 65


def test_at_least_k_per_stratum_in_the_database(engine, frame):
    populate(frame)
    campaign = new_campaign(
        engine, size=12, strata=("unit", "month"), allocation="at-least", at_least=2
    )
    report = sample_campaign(engine, campaign, NOW)
    assert all(s["n"] >= min(2, s["N"]) for s in report["strata"])
    assert report["sampled"] == 12


def test_an_impossible_at_least_design_leaves_the_campaign_a_draft(engine, frame):
    populate(frame)
    campaign = new_campaign(
        engine, size=5, strata=("unit", "month"), allocation="at-least", at_least=2
    )
    with pytest.raises(AllocationError, match="at least 2 per stratum"):
        sample_campaign(engine, campaign, NOW)
    assert campaign_summary(engine, campaign).status == "draft"
    assert table_rows(engine, "queue_items") == []


def test_a_sample_of_an_imported_district_adds_up(engine, settings, tmp_path: Path):
    path = tmp_path / "cases.csv"
    write_district(path, 3000, seed=3, messy=0.05)
    import_file(engine, path, settings, ImportOptions(rejects_dir=tmp_path), now=NOW)
    campaign = new_campaign(engine, size=300, strata=("unit", "month"))
    report = sample_campaign(engine, campaign, NOW)
    assert report["frame"] == report["eligible"] + sum(report["excluded"].values())
    assert report["excluded"]["no_valid_phone"] > 0  # the fake numbers of a messy export
    assert sum(s["N"] for s in report["strata"]) == report["eligible"]
    assert sum(s["n"] for s in report["strata"]) == report["sampled"] == 300
    assert len(sampled(engine, campaign)) == 300
    with engine.connect() as conn:
        in_period = conn.execute(
            sa.select(sa.func.count()).where(
                cases_t.c.handled_at >= local(6, 1, 0), cases_t.c.handled_at < local(10, 1, 0)
            )
        ).scalar_one()
    assert report["frame"] == in_period


def _imported_district(engine: Engine, settings: Any, tmp_path: Path, frame: Frame) -> None:
    """A district of 3,000 imported cases, some numbers barred and some called recently."""
    path = tmp_path / "cases.csv"
    write_district(path, 3000, seed=5, messy=0.05)
    import_file(engine, path, settings, ImportOptions(rejects_dir=tmp_path), now=NOW)
    with engine.begin() as conn:
        frame.units.update(conn.execute(sa.select(units_t.c.name, units_t.c.id)).all())
        valid = conn.execute(
            sa.select(contacts_t.c.id, contacts_t.c.e164)
            .where(contacts_t.c.validity == "valid")
            .order_by(contacts_t.c.id)
        ).all()
        # Repeat applicants: a case early in the file with the number of one late in it, on
        # either side of any split of the case ids.
        half = len(valid) // 2
        for (contact, _), (_, number) in zip(valid[:300:3], valid[half : half + 100], strict=True):
            conn.execute(
                sa.update(contacts_t).where(contacts_t.c.id == contact).values(e164=number)
            )
    numbers = [number for _, number in valid]
    frame.do_not_call(*sorted(set(numbers[::97])))
    for number in sorted(set(numbers[5::89])):
        frame.called(number, NOW - timedelta(days=3))


def test_screening_in_a_second_process_draws_the_same_sample(
    engine, settings, tmp_path, frame, monkeypatch
):
    """A large SQLite frame is screened in two processes (callback.screenprocess); the
    sample, its weights and the report are the ones one process draws."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the second process screens SQLite files only")
    from callback import campaign_draws, screenprocess

    _imported_district(engine, settings, tmp_path, frame)
    children = []
    real_child = campaign_draws.screening_child

    def counted(*args: Any) -> Any:
        children.append(args[1])
        return real_child(*args)

    monkeypatch.setattr(campaign_draws, "screening_child", counted)
    reports, samples = [], []
    for name, smallest in (("two-processes", 0), ("one-process", 10**9)):
        monkeypatch.setattr(screenprocess, "PARALLEL_MIN_CASES", smallest)
        campaign = new_campaign(engine, name, size=400, strata=("unit", "month"))
        reports.append(sample_campaign(engine, campaign, NOW))
        samples.append(
            {
                case: (item["stratum"], item["inclusion_probability"], item["weight"])
                for case, item in sampled(engine, campaign).items()
            }
        )
    assert len(children) == 1  # only the first draw started a child
    assert reports[0]["excluded"]["duplicate_phone"] > 0
    assert reports[0]["excluded"]["do_not_call"] > 0
    assert reports[0]["excluded"]["recently_called"] > 0
    assert reports[0] == reports[1]
    assert samples[0] == samples[1] and len(samples[0]) == 400


def test_a_failing_screening_process_leaves_the_campaign_a_draft(
    engine, settings, tmp_path, frame, monkeypatch
):
    if engine.dialect.name != "sqlite":
        pytest.skip("the second process screens SQLite files only")
    from callback import campaign_draws, screenprocess

    _imported_district(engine, settings, tmp_path, frame)
    real_child = campaign_draws.screening_child

    def broken(database: str, sql: str, *rest: Any) -> Any:
        return real_child(database, sql.replace("cases", "no_such_table", 1), *rest)

    monkeypatch.setattr(campaign_draws, "screening_child", broken)
    monkeypatch.setattr(screenprocess, "PARALLEL_MIN_CASES", 0)
    campaign = new_campaign(engine, size=400)
    with pytest.raises(sqlite3.OperationalError, match="no such column: no_such_table.id"):
        sample_campaign(engine, campaign, NOW)
    assert campaign_summary(engine, campaign).status == "draft"
    assert sampled(engine, campaign) == {}


# -- once only ---------------------------------------------------------------------------------


def test_a_campaign_is_sampled_once(engine, frame):
    populate(frame)
    campaign = new_campaign(engine, size=10)
    sample_campaign(engine, campaign, NOW)
    before = table_rows(engine, "queue_items")
    with pytest.raises(CampaignError, match="sampled once"):
        sample_campaign(engine, campaign, NOW + timedelta(hours=1))
    assert table_rows(engine, "queue_items") == before
    summary = campaign_summary(engine, campaign)
    assert (summary.status, summary.sampled_at) == ("sampled", NOW)


def test_a_campaign_closed_unsampled_is_refused_as_closed_not_as_sampled(engine, frame):
    populate(frame)
    campaign = new_campaign(engine, size=10)
    close_campaign(engine, campaign, "office", NOW)
    with pytest.raises(CampaignError) as refused:
        sample_campaign(engine, campaign, NOW + timedelta(hours=1))
    message = str(refused.value)
    assert "is closed" in message and "without being sampled" in message
    assert "2018-10-08" in message and "it was sampled" not in message
    assert table_rows(engine, "queue_items") == []
    summary = campaign_summary(engine, campaign)
    assert (summary.status, summary.sampled_at) == ("closed", None)


def test_a_campaign_with_queue_items_is_not_sampled_even_as_a_draft(engine, frame):
    frame.case("a", mobile(1))
    frame.called(mobile(50), NOW - timedelta(days=100))  # the campaign "earlier" has an item
    with pytest.raises(CampaignError, match="has 1 queue items"):
        sample_campaign(engine, "earlier", NOW)


def test_a_closed_campaign_is_not_sampled_or_closed_again(engine, frame):
    campaign = new_campaign(engine)
    close_campaign(engine, "summer", "office", NOW)
    with pytest.raises(CampaignError, match="is closed"):
        sample_campaign(engine, campaign, NOW)
    with pytest.raises(CampaignError, match="already closed"):
        close_campaign(engine, campaign, "office", NOW)
    summary = campaign_summary(engine, campaign)
    assert (summary.status, summary.closed_at) == ("closed", NOW)


def test_an_unknown_campaign_is_a_clear_error(engine):
    with pytest.raises(CampaignError, match="no campaign 'nope'"):
        sample_campaign(engine, "nope", NOW)
    with pytest.raises(CampaignError, match="no campaign 12"):
        close_campaign(engine, 12, "office", NOW)


# -- creating and describing -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "with space", "-dash-first", "12345", "x" * 101, "a/b"])
def test_bad_campaign_names_are_refused(engine, name):
    with pytest.raises(CampaignError, match="campaign name"):
        new_campaign(engine, name)


def test_a_campaign_needs_a_script_a_dialer_and_an_aware_deadline(engine):
    with pytest.raises(CampaignError, match="the script name is empty"):
        create_campaign(engine, "a", design(), script=" ", dialer="d", created_by="t", now=NOW)
    with pytest.raises(CampaignError, match="the dialer name is empty"):
        create_campaign(engine, "a", design(), script="s", dialer="", created_by="t", now=NOW)
    with pytest.raises(CampaignError, match="time zone"):
        create_campaign(
            engine, "a", design(), script="s", dialer="d", created_by="t", now=NOW,
            deadline=datetime(2018, 10, 31),
        )  # fmt: skip
    assert list_campaigns(engine) == []


def test_campaign_names_are_unique(engine):
    new_campaign(engine, "2018夏季回访")
    with pytest.raises(CampaignError, match="already exists"):
        new_campaign(engine, "2018夏季回访")


def test_a_new_campaign_is_a_draft_with_its_design(engine):
    d = design(size=500, strata=("unit", "month"))
    campaign = create_campaign(
        engine,
        "summer",
        d,
        script="service-callback",
        dialer="simulated",
        created_by="tester",
        now=NOW,
        title="2018年6-9月办件回访",
        rules={"max_attempts_per_case": 4},
        deadline=datetime(2018, 10, 31, 9, tzinfo=UTC),
    )
    summary = campaign_summary(engine, campaign)
    assert (summary.name, summary.target, summary.status) == ("summer", "cases", "draft")
    assert (summary.script, summary.dialer) == ("service-callback", "simulated")
    assert (summary.period_start, summary.period_end) == (date(2018, 6, 1), date(2018, 9, 30))
    assert SamplingDesign.from_json(summary.design) == d
    assert summary.deadline == datetime(2018, 10, 31, 9, tzinfo=UTC)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(campaigns_t.c.rules)).scalar_one()
    # Written out in full, so that a later change of the defaults does not change the campaign.
    assert stored == rules_to_json(CallingRules(max_attempts_per_case=4))
    assert stored["max_attempts_per_case"] == 4


def test_calling_rules_are_checked_when_the_campaign_is_created(engine):
    with pytest.raises(CampaignError, match="summer: unknown calling rule settings: max_attempt"):
        create_campaign(
            engine, "summer", design(), script="s", dialer="d", created_by="t", now=NOW,
            rules={"max_attempt": 4},
        )  # fmt: skip
    assert list_campaigns(engine) == []


def test_a_spot_check_campaign_calls_in_its_office_hours(engine):
    hours = (Window(time(8, 30), time(12)),)
    d = HotlineDesign(date(2018, 6, 7), date(2018, 6, 20), seed=1, office_hours=hours)
    create_campaign(engine, "hotlines", d, script="s", dialer="d", created_by="t", now=NOW)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(campaigns_t.c.rules)).scalar_one()
    assert rules_from_json(stored).windows == hours


def test_summaries_count_each_unit_s_queue(engine, frame):
    populate(frame)
    first = new_campaign(engine, "first", size=10)
    new_campaign(engine, "second", size=10)
    sample_campaign(engine, first, NOW)
    with engine.begin() as conn:
        one = conn.execute(sa.select(sa.func.min(queue_t.c.id))).scalar_one()
        conn.execute(sa.update(queue_t).where(queue_t.c.id == one).values(state="finished"))
    summary = campaign_summary(engine, "first")
    assert (summary.items, summary.open, summary.finished) == (10, 9, 1)
    assert {q.unit for q in summary.queues} == {"区民政局", "区公安分局"}
    assert sum(q.items for q in summary.queues) == 10
    assert summary.report is not None and summary.report["sampled"] == 10
    listed = list_campaigns(engine)
    assert [(c.name, c.items, c.status) for c in listed] == [
        ("second", 0, "draft"),
        ("first", 10, "sampled"),
    ]


# -- hotline spot checks -----------------------------------------------------------------------


def add_hotline(engine: Engine, unit_id: int, number: str, active: bool = True) -> int:
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(table(Hotline))
            .values(unit_id=unit_id, e164=number, active=active, created_at=NOW)
            .returning(table(Hotline).c.id)
        ).scalar_one()


def test_hotline_campaigns_plan_k_checks_per_active_hotline_per_week(engine, frame):
    civil, police = frame.unit("区民政局"), frame.unit("区公安分局")
    one = add_hotline(engine, civil, "+8657188001111")
    two = add_hotline(engine, police, "+8657188002222")
    add_hotline(engine, police, "+8657188003333", active=False)
    d = HotlineDesign(date(2018, 10, 8), date(2018, 10, 31), seed=9, calls_per_week=3)
    campaign = create_campaign(
        engine, "hotlines-oct", d, script="hotline-check", dialer="manual",
        created_by="tester", now=NOW,
    )  # fmt: skip
    report = sample_campaign(engine, campaign, NOW)
    weeks = report_weeks(d.period_start, d.period_end)
    assert report["planned"] == 3 * 2 * len(weeks)
    assert report["hotlines"] == 2
    with engine.connect() as conn:
        items = conn.execute(sa.select(queue_t).where(queue_t.c.campaign_id == campaign)).all()
    assert Counter(item.hotline_id for item in items) == {one: 3 * len(weeks), two: 3 * len(weeks)}
    for item in items:
        assert item.unit_id == (civil if item.hotline_id == one else police)
        assert item.case_id is None and item.state == "open"
        assert item.appointment_at >= NOW
        local_time = item.appointment_at.astimezone(SHANGHAI)
        assert local_time.date() <= date(2018, 10, 31) and local_time.weekday() < 6
        assert item.stratum.startswith("unit=")
        assert (item.inclusion_probability, item.weight) == (1.0, 1.0)
    assert campaign_summary(engine, campaign).status == "sampled"
    with pytest.raises(CampaignError, match="sampled once"):
        sample_campaign(engine, campaign, NOW)


def test_hotline_designs_are_stored_as_such(engine):
    d = HotlineDesign(date(2018, 10, 8), date(2018, 10, 31), seed=9)
    campaign = create_campaign(
        engine, "h", d, script="hotline-check", dialer="manual", created_by="t", now=NOW
    )
    summary = campaign_summary(engine, campaign)
    assert summary.target == "hotlines"
    assert HotlineDesign.from_json(summary.design) == d
