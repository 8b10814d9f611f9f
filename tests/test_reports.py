"""The report figures from the database, on small worlds whose answers are worked by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from statsmodels.regression.linear_model import WLS
from statsmodels.stats.proportion import proportion_confint

from callback.cli.context import AppContext
from callback.cli.report import report
from callback.models import (
    CallAttempt,
    Campaign,
    Case,
    Hotline,
    ProblemReport,
    QueueItem,
    Response,
    Unit,
    table,
)
from callback.report_scope import ReportError
from callback.report_weeks import Week, last_complete_week, report_week, week_at
from callback.reports import rates_report
from callback.weekly import weekly_data

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 6, 8, 2, 0, tzinfo=UTC)  # Monday 8 June 2026, 10:00 in Shanghai
#: Wednesday 10 June 23:59:59 and Thursday 11 June 00:00:00 in Shanghai, in UTC.
LAST_SECOND = datetime(2026, 6, 10, 15, 59, 59, tzinfo=UTC)
MIDNIGHT = datetime(2026, 6, 10, 16, 0, 0, tzinfo=UTC)
OLD, NEW = Week(date(2026, 6, 4)), Week(date(2026, 6, 11))


class World:
    """Rows written straight into the tables, so that every count is known in advance."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cases = 0

    def insert(self, model: Any, **values: Any) -> int:
        with self.engine.begin() as conn:
            t = table(model)
            return int(conn.execute(sa.insert(t).values(**values).returning(t.c.id)).scalar_one())

    def unit(self, name: str, kind: str = "department") -> int:
        return self.insert(Unit, name=name, kind=kind, created_at=T0)

    def campaign(self, name: str, target: str = "cases", report: Any = None) -> int:
        return self.insert(
            Campaign, name=name, target=target, script="service-callback", dialer="simulated",
            period_start=date(2026, 5, 1), period_end=date(2026, 5, 31), rules={}, design={},
            sample_report=report, review_corrections=False, status="sampled",
            created_by="tester", created_at=T0,
        )  # fmt: skip

    def item(
        self, campaign: int, unit: int, *, final: str | None = None, town: int | None = None,
        item: str = "结婚登记", channel: str | None = "window", stratum: str = "s",
        weight: float = 1.0, hotline: int | None = None, applicant: str = "张三丰",
        finished_at: datetime | None = T0,
    ) -> int:  # fmt: skip
        case = None
        if hotline is None:
            self.cases += 1
            case = self.insert(
                Case, case_no=f"C{self.cases}", item_name=item, unit_id=unit, town_id=town,
                applicant_name=applicant, applicant_type="person", handled_at=T0, channel=channel,
            )  # fmt: skip
        return self.insert(
            QueueItem, campaign_id=campaign, unit_id=unit, case_id=case, hotline_id=hotline,
            stratum=stratum, inclusion_probability=1 / weight, weight=weight,
            state="finished" if final else "open", final_disposition=final,
            finished_at=finished_at if final else None,
        )  # fmt: skip

    def attempt(self, item: int, at: datetime | None, code: str | None = "3.13") -> int:
        with self.engine.connect() as conn:
            campaign = conn.execute(
                sa.select(table(QueueItem).c.campaign_id).where(table(QueueItem).c.id == item)
            ).scalar_one()
        return self.insert(
            CallAttempt, queue_item_id=item, campaign_id=campaign, number="+8613912345678",
            worker="tester", dialer="simulated", state="ended", created_at=at or T0,
            placed_at=at, disposition=code,
        )  # fmt: skip

    def response(
        self, item: int, realised: bool | None = None, satisfied: bool | None = None, *,
        complete: bool = True, at: datetime = T0, rates: dict[str, Any] | None = None,
        answers: dict[str, Any] | None = None, code: str | None = None,
    ) -> int:  # fmt: skip
        attempt = self.attempt(item, at, code or ("1.1" if complete else "2.12"))
        with self.engine.connect() as conn:
            campaign = conn.execute(
                sa.select(table(QueueItem).c.campaign_id).where(table(QueueItem).c.id == item)
            ).scalar_one()
        return self.insert(
            Response, queue_item_id=item, campaign_id=campaign, attempt_id=attempt,
            script="service-callback", complete=complete, answers=answers or {"trips": 1},
            rates=rates or {"realised": realised, "satisfied": satisfied}, realised=realised,
            satisfied=satisfied, recorded_at=at,
        )  # fmt: skip

    def interview(self, campaign: int, unit: int, realised: bool | None,
                  satisfied: bool | None, at: datetime = T0, **item: Any) -> int:  # fmt: skip
        queue_item = self.item(campaign, unit, final="1.1", finished_at=at, **item)
        self.response(queue_item, realised, satisfied, at=at)
        return queue_item


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def wilson(k: int, n: int) -> tuple[float, float]:
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(low), float(high)


# -- the week --------------------------------------------------------------------------------


def test_a_week_runs_from_thursday_to_wednesday() -> None:
    for offset in range(7):
        assert report_week(date(2026, 6, 11) + timedelta(days=offset)) == NEW
    assert report_week(date(2026, 6, 10)) == OLD
    assert (NEW.start.isoweekday(), NEW.end.isoweekday()) == (4, 3)
    assert NEW.label == "2026-06-11 至 2026-06-17" and NEW.previous() == OLD
    with pytest.raises(ValueError, match="Thursday"):
        Week(date(2026, 6, 10))


def test_a_week_is_bounded_by_local_midnights_stored_in_utc() -> None:
    assert NEW.bounds(SHANGHAI) == (MIDNIGHT, MIDNIGHT + timedelta(days=7))
    assert week_at(LAST_SECOND, SHANGHAI) == OLD
    assert week_at(MIDNIGHT, SHANGHAI) == NEW


def test_the_default_week_is_the_one_that_ended_last_wednesday() -> None:
    thursday_morning = datetime(2026, 6, 11, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert last_complete_week(thursday_morning, SHANGHAI) == OLD
    assert last_complete_week(MIDNIGHT, SHANGHAI) == OLD
    assert last_complete_week(LAST_SECOND, SHANGHAI) == OLD.previous()


def test_wednesday_235959_is_in_the_old_week_and_thursday_midnight_in_the_new(
    world: World, engine: Engine
) -> None:
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    late = world.interview(campaign, unit, True, True, at=LAST_SECOND)
    world.attempt(late, LAST_SECOND - timedelta(minutes=5))
    early = world.interview(campaign, unit, False, True, at=MIDNIGHT)
    world.attempt(early, MIDNIGHT)
    old = weekly_data(engine, OLD, MIDNIGHT + timedelta(days=1))
    new = weekly_data(engine, NEW, MIDNIGHT + timedelta(days=8))
    (old_line,), (new_line,) = old.units, new.units
    assert (old_line.attempted, old_line.completed, old_line.realisation.k) == (1, 1, 1)
    assert (new_line.attempted, new_line.completed, new_line.realisation.k) == (1, 1, 0)
    assert (old_line.completed_to_date, new_line.completed_to_date) == (1, 2)
    assert new_line.realisation_change == pytest.approx(-1.0)  # 0/1 this week, 1/1 the last
    by_week = rates_report(engine, "week").groups
    assert [(g.group, g.completes) for g in by_week] == [(OLD.label, 1), (NEW.label, 1)]


# -- 实现率 and 满意率 by group ----------------------------------------------------------------


def test_rates_by_unit_are_counted_by_hand(world: World, engine: Engine) -> None:
    campaign = world.campaign("june")
    a, b, c = world.unit("区民政局"), world.unit("区市场监管局"), world.unit("城东街道", "town")
    for realised, satisfied in [(True, True), (True, False), (False, True), (None, True)]:
        world.interview(campaign, a, realised, satisfied)
    for _ in range(3):  # all one class
        world.interview(campaign, c, True, True)
    world.item(campaign, b, final="2.112")  # a refusal: no complete, so no group
    world.item(campaign, b)  # still open
    partial = world.item(campaign, a, final="1.2")
    world.response(partial, True, True, complete=False)  # a partial is not a complete
    world.item(campaign, a, final="1.1")  # complete without a response: counted, no answers

    result = rates_report(engine, "unit", ["june"])
    groups = {g.group: g for g in result.groups}
    assert set(groups) == {"区民政局", "城东街道"}
    first = groups["区民政局"]
    assert first.completes == 5
    assert (first.realisation.k, first.realisation.n) == (2, 3)
    assert (first.satisfaction.k, first.satisfaction.n) == (3, 4)
    assert (first.realisation.low, first.realisation.high) == pytest.approx(wilson(2, 3))
    assert (first.satisfaction.low, first.satisfaction.high) == pytest.approx(wilson(3, 4))
    whole = groups["城东街道"]
    assert whole.realisation.estimate == 1.0 and whole.realisation.high == 1.0
    assert whole.realisation.low == pytest.approx(wilson(3, 3)[0])
    assert (result.total.completes, result.total.realisation.k, result.total.realisation.n) == (
        8, 5, 6
    )  # fmt: skip


def test_completes_are_the_cases_closed_as_complete_whatever_their_responses_say(
    world: World, engine: Engine
) -> None:
    # Responses written before screen-outs and refusals had statuses of their own say
    # "complete" for calls that reached the script's end on "not me" or a refusal; the demo
    # had 147 such cases closed as 2.291 and 9 closed as 2.11 (not me, then a hang-up).
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    world.interview(campaign, unit, False, True)
    for code in ("2.291", "2.11", "2.112"):
        item = world.item(campaign, unit, final=code)
        world.response(item, True, True, answers={"identity": "wrong_number"}, code=code)
    still_open = world.item(campaign, unit)  # "not me" on its first number, more to try
    world.response(still_open, True, True, answers={"identity": "wrong_number"}, code="2.291")

    result = rates_report(engine, "unit", ["june"])
    total = result.total
    assert (total.completes, total.realisation.n, total.satisfaction.n) == (1, 1, 1)
    assert (total.realisation.k, total.satisfaction.k) == (0, 1)
    (district,) = result.district
    assert district.rates.completes == 1
    assert (district.rates.realisation.n, district.rates.satisfaction.unweighted.n) == (1, 1)
    whole = next(x for x in result.outcomes if x.unit is None).rates
    assert (whole.counts["I"], whole.counts["R"], whole.counts["NC"]) == (1, 2, 2)
    assert whole.rr1 == pytest.approx(1 / 5)
    assert [g.completes for g in rates_report(engine, "week").groups] == [1]
    week = weekly_data(engine, OLD, MIDNIGHT).total
    assert (week.completed, week.completed_to_date, week.realisation.n) == (1, 1, 1)
    assert week.completion.k == 1 and week.completion.n == 5


def test_a_campaign_without_completes_has_no_groups_and_no_estimate(
    world: World, engine: Engine
) -> None:
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    world.item(campaign, unit)
    result = rates_report(engine, "unit", ["june"])
    assert result.groups == ()
    assert result.total.completes == 0 and result.total.realisation.estimate is None
    (district,) = result.district
    assert district.rates.realisation.estimate is None


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("town", {"(无)": (1, 1), "城东街道": (1, 2)}),
        ("item", {"结婚登记": (1, 2), "营业执照": (1, 1)}),
        ("channel", {"online": (0, 1), "window": (2, 2)}),
    ],
)
def test_rates_by_town_item_and_channel(
    world: World, engine: Engine, by: str, expected: dict[str, tuple[int, int]]
) -> None:
    campaign, unit, town = world.campaign("june"), world.unit("区民政局"), world.unit("城东街道")
    world.interview(campaign, unit, True, True, town=town)
    world.interview(campaign, unit, False, True, town=town, channel="online")
    world.interview(campaign, unit, True, True, item="营业执照")
    groups = {g.group: (g.realisation.k, g.realisation.n) for g in rates_report(engine, by).groups}
    assert groups == expected


def test_only_the_named_campaigns_count_and_unknown_ones_are_errors(
    world: World, engine: Engine
) -> None:
    unit = world.unit("区民政局")
    june, july = world.campaign("june"), world.campaign("july")
    world.interview(june, unit, True, True)
    world.interview(july, unit, False, False)
    assert rates_report(engine, "unit", ["june"]).total.realisation.k == 1
    assert rates_report(engine, "unit", [str(july)]).total.realisation.k == 0
    assert rates_report(engine, "unit").total.completes == 2
    with pytest.raises(ReportError, match="no campaign 'august'"):
        rates_report(engine, "unit", ["august"])
    with pytest.raises(ReportError, match="cannot group by"):
        rates_report(engine, "colour")


# -- the weighted district estimate ------------------------------------------------------------

STRATA = {  # stratum: (N_h, answers as (weight, realised))
    "unit=A": (400, [(40.0, True)] * 6 + [(40.0, False)] * 2 + [(80.0, True), (80.0, False)]),
    "unit=B": (90, [(15.0, True)] * 2 + [(15.0, False)] * 4),
    "unit=C": (30, [(10.0, True)] * 3),
}


def _weighted_world(world: World, report: Any) -> None:
    campaign, unit = world.campaign("june", report=report), world.unit("区民政局")
    for stratum, (_, answers) in STRATA.items():
        for weight, realised in answers:
            world.interview(campaign, unit, realised, True, stratum=stratum, weight=weight)


def test_the_weighted_estimate_matches_statsmodels_with_stratum_sizes(
    world: World, engine: Engine
) -> None:
    report = {"strata": [{"stratum": h, "N": n, "n": len(a)} for h, (n, a) in STRATA.items()]}
    _weighted_world(world, report)
    (district,) = rates_report(engine, "unit", ["june"]).district
    got = district.rates.realisation
    assert district.population_known and got.estimator == "separate ratio"

    # Independently: each stratum's weighted mean and its HC1 variance by weighted least
    # squares on a constant, with the finite-population correction, combined by N_h / N.
    big_n = sum(n for n, _ in STRATA.values())
    estimate = variance = 0.0
    for size, answers in STRATA.values():
        y = np.array([float(v) for _, v in answers])
        w = np.array([weight for weight, _ in answers])
        fit = WLS(y, np.ones_like(y), weights=w).fit(cov_type="HC1")
        share = size / big_n
        estimate += share * fit.params[0]
        variance += share**2 * (1 - len(y) / size) * fit.bse[0] ** 2
    assert got.estimate == pytest.approx(estimate)
    assert got.standard_error == pytest.approx(math.sqrt(variance))
    assert got.unweighted.k == 12 and got.unweighted.n == 19


def test_without_stratum_sizes_the_combined_estimator_matches_cochran(
    world: World, engine: Engine
) -> None:
    _weighted_world(world, report=None)
    result = rates_report(engine, "unit", ["june"])
    (district,) = result.district
    got = district.rates.realisation
    assert not district.population_known and got.estimator == "combined ratio"
    assert any("combined ratio" in note for note in result.notes)

    # Cochran (1977, 6.11): V(R) = [V(Y) - 2R C(Y, X) + R^2 V(X)] / X^2 over strata, with
    # the stratum totals' (co)variances from with-replacement formulas.
    y_total = x_total = vy = vx = cxy = 0.0
    for _, answers in STRATA.values():
        wy = np.array([w * v for w, v in answers], dtype=float)
        wx = np.array([w for w, _ in answers], dtype=float)
        n = len(answers)
        y_total, x_total = y_total + wy.sum(), x_total + wx.sum()
        vy += n * np.var(wy, ddof=1)
        vx += n * np.var(wx, ddof=1)
        cxy += n * np.cov(wy, wx, ddof=1)[0, 1]
    ratio = y_total / x_total
    assert got.estimate == pytest.approx(ratio)
    expected = (vy - 2 * ratio * cxy + ratio**2 * vx) / x_total**2
    assert got.standard_error == pytest.approx(math.sqrt(expected))


# -- AAPOR rates -----------------------------------------------------------------------------


def test_aapor_rates_from_final_and_interim_dispositions(world: World, engine: Engine) -> None:
    campaign, a, b = world.campaign("june"), world.unit("区民政局"), world.unit("城东街道")
    for code in ["1.1"] * 4 + ["1.2", "2.112", "2.112", "2.21", "3.13", "4.10"]:
        world.item(campaign, a, final=code)
    hung_up = world.item(campaign, b)  # open: no answer, then a hang-up at the introduction
    world.attempt(hung_up, T0, "3.13")
    world.attempt(hung_up, T0 + timedelta(hours=3), "2.11")
    busy = world.item(campaign, b)  # open: busy twice
    world.attempt(busy, T0, "3.12")
    world.attempt(busy, T0 + timedelta(hours=1), "3.12")
    world.item(campaign, b)  # open, never dialled: 3.11
    # I=4 P=1 R=3 NC=1 O=0 UH=3 UO=0 NE=1; e = 9/10.
    lines = {line.unit: line for line in rates_report(engine, "unit", ["june"]).outcomes}
    whole = lines[None].rates
    assert dict(whole.counts) == {
        "I": 4, "P": 1, "R": 3, "NC": 1, "O": 0, "UH": 3, "UO": 0, "NE": 1
    }  # fmt: skip
    assert whole.e == pytest.approx(0.9) and whole.e_source == "estimated"
    expected = {
        "RR1": 4 / 12, "RR2": 5 / 12, "RR3": 4 / 11.7, "RR4": 5 / 11.7, "RR5": 4 / 9,
        "RR6": 5 / 9, "COOP1": 4 / 8, "COOP2": 5 / 8, "COOP3": 4 / 8, "COOP4": 5 / 8,
        "REF1": 3 / 12, "REF2": 3 / 11.7, "REF3": 3 / 9, "CON1": 8 / 12, "CON2": 8 / 11.7,
        "CON3": 8 / 9,
    }  # fmt: skip
    assert whole.rates() == pytest.approx(expected)
    assert (lines[None].cases, lines[None].open) == (13, 3)
    town = lines["城东街道"]
    assert (town.cases, town.open) == (3, 3) and town.rates.e_source == "pooled"
    assert dict(town.rates.counts)["R"] == 1 and town.rates.e == pytest.approx(0.9)
    assert town.rates.rr1 == 0.0 and town.rates.con1 == pytest.approx(1 / 3)
    given = rates_report(engine, "unit", ["june"], e=0.5).outcomes[0].rates
    assert given.e == 0.5 and given.rr3 == pytest.approx(4 / (9 + 1.5))


# -- hotline spot checks ----------------------------------------------------------------------


def test_hotline_rates_from_spot_check_responses(world: World, engine: Engine) -> None:
    campaign, unit = world.campaign("checks", target="hotlines"), world.unit("区民政局")
    hotline = world.insert(Hotline, unit_id=unit, e164="+8657187654321", created_at=T0)
    answers = [
        ({"connected": True, "real_time": True}, {"answered_by": "person", "answer_seconds": 5}),
        ({"connected": True, "real_time": False}, {"answered_by": "person", "answer_seconds": 12}),
        ({"connected": False, "real_time": None}, {"answered_by": "machine", "answer_seconds": 2}),
    ]
    for rates, given in answers:
        item = world.item(campaign, unit, final="1.1", hotline=hotline)
        world.response(item, at=T0, rates=rates, answers=given)
    silent = world.item(campaign, unit, final="3.13", hotline=hotline)  # rang out
    world.attempt(silent, T0)
    world.item(campaign, unit, hotline=hotline)  # planned, not dialled yet: not a check
    (line,) = rates_report(engine, "unit", ["checks"]).hotlines
    assert line.rates.calls == 4
    assert (line.rates.connection.k, line.rates.connection.n) == (2, 4)
    assert (line.rates.real_time_answer.k, line.rates.real_time_answer.n) == (1, 2)
    assert line.rates.median_seconds_to_answer == 8.5 and line.rates.timed_calls == 2
    week = weekly_data(engine, OLD, MIDNIGHT)
    assert week.total.hotline.calls == 4 and week.units[0].hotline.connection.k == 2


def test_a_check_nobody_has_identified_the_answerer_of_is_pending(
    world: World, engine: Engine
) -> None:
    # Answered on a line whose dialer cannot tell a person from a machine, handed to a tester
    # who has not called yet: neither connected nor not, until someone says.
    campaign, unit = world.campaign("checks", target="hotlines"), world.unit("区民政局")
    hotline = world.insert(Hotline, unit_id=unit, e164="+8657187654321", created_at=T0)
    person = world.item(campaign, unit, final="1.1", hotline=hotline)
    world.response(
        person, at=T0, rates={"connected": True, "real_time": True},
        answers={"answered": True, "answered_by": "person", "answer_seconds": 5},
    )  # fmt: skip
    silent = world.item(campaign, unit, final="3.13", hotline=hotline)
    world.attempt(silent, T0)
    untold = world.item(campaign, unit, hotline=hotline)
    world.response(
        untold, at=T0, rates={"connected": False, "real_time": None},
        answers={"answered": True, "answer_seconds": 4}, complete=False, code="2.36",
    )  # fmt: skip
    # A switchboard answered and the extension was keyed: nothing recorded, open with a
    # tester. Pending too; once the tester's item is over without a record, it is not.
    switchboard, closed = (world.item(campaign, unit, hotline=hotline) for _ in range(2))
    with engine.begin() as conn:
        items = table(QueueItem)
        conn.execute(
            sa.update(items)
            .where(items.c.id.in_([switchboard, closed]))
            .values(handed_to="agent", handed_at=T0)
        )
        conn.execute(
            sa.update(items)
            .where(items.c.id == closed)
            .values(state="finished", final_disposition="3.13", finished_at=T0)
        )
    for item in (switchboard, closed):
        world.attempt(item, T0, code="2.36")
    report = rates_report(engine, "unit", ["checks"])
    (line,) = report.hotlines
    assert (line.rates.calls, line.rates.pending) == (5, 2)
    assert (line.rates.connection.k, line.rates.connection.n) == (1, 3)
    assert any("2 spot checks answered by someone not yet identified" in n for n in report.notes)
    week = weekly_data(engine, OLD, MIDNIGHT)
    assert (week.total.hotline.pending, week.total.hotline.connection.n) == (2, 3)
    assert any("待核实" in note for note in week.notes)


# -- the weekly report's figures --------------------------------------------------------------


def test_the_week_covers_campaigns_running_in_it(world: World, engine: Engine) -> None:
    unit = world.unit("区民政局")
    running, ended, draft = (world.campaign(n) for n in ("running", "ended", "draft"))
    for campaign in (running, ended, draft):
        world.item(campaign, unit)
    with engine.begin() as conn:
        campaigns = table(Campaign)
        conn.execute(
            sa.update(campaigns)
            .where(campaigns.c.id == ended)
            .values(status="closed", closed_at=MIDNIGHT - timedelta(days=8))
        )
        conn.execute(sa.update(campaigns).where(campaigns.c.id == draft).values(status="draft"))
    report = weekly_data(engine, OLD, MIDNIGHT)  # fmt: skip
    assert report.campaigns == ("running",) and report.units[0].sampled == 1


def test_units_are_ranked_by_the_mean_of_their_rates(world: World, engine: Engine) -> None:
    campaign = world.campaign("june")
    a, b, c, d = (world.unit(n) for n in ("甲局", "乙局", "丙街道", "丁街道"))
    day = T0 + timedelta(days=1)
    for unit, answers in [
        (a, [(True, True), (True, False)]),  # 1.0 and 0.5: 0.75
        (b, [(True, True)]),  # 1.0
        (c, [(False, True), (True, True)]),  # 0.5 and 1.0: 0.75, fewer completes than none
    ]:
        for realised, satisfied in answers:
            world.interview(campaign, unit, realised, satisfied, at=day)
    world.item(campaign, d)
    world.interview(campaign, a, False, False, at=day - timedelta(days=7))  # the week before
    lines = weekly_data(engine, OLD, MIDNIGHT).units
    assert [(x.unit, x.rank) for x in lines] == [("乙局", 1), ("丙街道", 2), ("甲局", 2),
                                                  ("丁街道", None)]  # fmt: skip
    first = next(x for x in lines if x.unit == "甲局")
    assert (first.sampled, first.completed, first.completed_to_date) == (3, 2, 3)
    assert first.completion.estimate == 1.0
    assert first.realisation_change == pytest.approx(1.0)  # 2/2 against 0/1
    assert first.satisfaction_change == pytest.approx(0.5)


def test_open_problems_are_listed_masked_with_owner_and_due_date(
    world: World, engine: Engine
) -> None:
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    item = world.interview(campaign, unit, True, False, applicant="王小明")
    with engine.connect() as conn:
        case = conn.execute(
            sa.select(table(QueueItem).c.case_id).where(table(QueueItem).c.id == item)
        ).scalar_one()
    for status, due in [("open", date(2026, 6, 9)), ("fixing", date(2026, 7, 1)),
                        ("fixed", None)]:  # fmt: skip
        world.insert(
            ProblemReport, unit_id=unit, case_id=case, campaign_id=campaign, category="效率",
            text="王小明反映：材料要求不清，请回电13912345678", status=status, owner="李科长",
            due_date=due, created_at=T0, updated_at=T0,
        )  # fmt: skip
    problems = weekly_data(engine, OLD, MIDNIGHT).problems
    assert [(p.status, p.overdue) for p in problems] == [("open", True), ("fixing", False)]
    assert problems[0].text == "王**反映：材料要求不清，请回电139****5678"
    assert problems[0].owner == "李科长" and problems[0].case_no == "C1"


# -- the command -----------------------------------------------------------------------------


def invoke(database_url: str, *args: str) -> Any:
    app = AppContext({"database_url": database_url}, None)
    return CliRunner().invoke(report, list(args), obj=app)


def test_report_rates_prints_tables_json_csv_and_xlsx(
    world: World, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    world.interview(campaign, unit, True, True)
    world.interview(campaign, unit, False, True)
    result = invoke(database_url, "rates", "--campaign", "june", "--csv", str(tmp_path / "r.csv"),
                    "--xlsx", str(tmp_path / "r.xlsx"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "区民政局" in result.output and "50.0" in result.output and "RR1" in result.output
    assert (tmp_path / "r.csv").read_bytes().startswith(b"\xef\xbb\xbfsection,campaign")
    assert (tmp_path / "r.xlsx").stat().st_size > 0
    data = json.loads(invoke(database_url, "rates", "--json").output)
    assert data["groups"][0]["realisation"]["k"] == 1 and data["by"] == "unit"


def test_report_errors_are_clean(world: World, engine: Engine, database_url: str) -> None:
    result = invoke(database_url, "rates", "--campaign", "nosuch")
    assert result.exit_code == 1 and "no campaign 'nosuch'" in result.output
    assert "Traceback" not in result.output
    assert invoke(database_url, "rates", "--by", "colour").exit_code == 2
    assert invoke(database_url, "weekly", "--week-of", "10 June").exit_code == 2


def test_report_weekly_writes_the_workbook_and_the_page(
    world: World, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    campaign, unit = world.campaign("june"), world.unit("区民政局")
    world.interview(campaign, unit, True, True)
    result = invoke(database_url, "weekly", "--week-of", "2026-06-08", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        str(tmp_path / "weekly-2026-06-04.xlsx"), str(tmp_path / "weekly-2026-06-04.html")
    ]  # fmt: skip
