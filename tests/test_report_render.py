"""The weekly report's files from a rehearsed demo campaign: they open in LibreOffice, render in
headless Chromium without errors, need nothing from the network, and show nobody's name or
number."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback.default_plugins.dialers import SimulatedDialer
from callback.models import (
    Campaign,
    Case,
    Contact,
    Hotline,
    ProblemReport,
    QueueItem,
    Unit,
    table,
)
from callback.queues import rules_to_json
from callback.rates import proportion
from callback.rehearsal import rehearse
from callback.report_html import bar_chart_svg
from callback.report_render import write_rates_csv, write_rates_xlsx
from callback.reports import rates_report
from callback.rules import CallingRules
from callback.weekly import weekly_report

START = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)  # Wednesday 17:00 in Shanghai: calls go on
THURSDAY = datetime(2026, 6, 11, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NOW = datetime(2026, 6, 18, 1, 0, tzinfo=UTC)  # the next Thursday, 09:00: report time
UNITS = [("区民政局", "department"), ("区市场监管局", "department"), ("城东街道", "town")]
NAMES = ["张三丰", "李小龙", "欧阳娜娜", "王建国", "赵敏", "孙悟空", "周芷若", "吴承恩"]
CASES_PER_UNIT = 8


def _number(n: int) -> str:
    return f"+86139{n:08d}"


def demo(engine: Engine) -> dict[str, list[str]]:
    """A stratified case campaign and a hotline campaign, rehearsed across a week's end, plus
    open problems that quote citizens' names and numbers. Returns what must never be shown."""
    secret: dict[str, list[str]] = {"names": [], "numbers": []}
    strata = [{"stratum": f"unit={u}", "N": 40 * (i + 1), "n": CASES_PER_UNIT}
              for i, (u, _) in enumerate(UNITS)]  # fmt: skip
    with engine.begin() as conn:
        t = {m: table(m) for m in (Unit, Campaign, Case, Contact, QueueItem, Hotline)}
        units = [
            conn.execute(sa.insert(t[Unit]).values(name=name, kind=kind, created_at=START)
                         .returning(t[Unit].c.id)).scalar_one()
            for name, kind in UNITS
        ]  # fmt: skip
        campaigns = {}
        for name, target, script in [("demo", "cases", "service-callback"),
                                     ("demo-hotlines", "hotlines", "hotline-check")]:  # fmt: skip
            campaigns[target] = conn.execute(
                sa.insert(t[Campaign]).values(
                    name=name, target=target, script=script, dialer="simulated",
                    period_start=date(2026, 5, 1), period_end=date(2026, 5, 31),
                    rules=rules_to_json(CallingRules()), design={},
                    sample_report={"strata": strata} if target == "cases" else None,
                    review_corrections=False, status="sampled", created_by="demo",
                    created_at=START,
                ).returning(t[Campaign].c.id)
            ).scalar_one()  # fmt: skip
        n = 0
        for i, unit in enumerate(units):
            for k in range(CASES_PER_UNIT):
                n += 1
                name = NAMES[(n - 1) % len(NAMES)]
                case = conn.execute(
                    sa.insert(t[Case]).values(
                        case_no=f"330100-{n:05d}", item_name=("结婚登记", "营业执照")[k % 2],
                        unit_id=unit, town_id=units[2] if k % 3 == 0 else None,
                        applicant_name=name, applicant_type="person",
                        handled_at=datetime(2026, 5, 20, 1, tzinfo=UTC),
                        channel=("window", "online", "mobile")[k % 3],
                    ).returning(t[Case].c.id)
                ).scalar_one()  # fmt: skip
                conn.execute(sa.insert(t[Contact]).values(
                    case_id=case, position=0, raw=_number(n)[3:], e164=_number(n),
                    kind="mobile", validity="valid", source="import", created_at=START,
                ))  # fmt: skip
                big_n = strata[i]["N"]
                conn.execute(sa.insert(t[QueueItem]).values(
                    campaign_id=campaigns["cases"], unit_id=unit, case_id=case,
                    stratum=strata[i]["stratum"], inclusion_probability=CASES_PER_UNIT / big_n,
                    weight=big_n / CASES_PER_UNIT, state="open", wait_reason="new",
                ))  # fmt: skip
                secret["names"].append(name)
                secret["numbers"] += [_number(n), _number(n)[3:]]
                if k == 0:
                    conn.execute(sa.insert(table(ProblemReport)).values(
                        unit_id=unit, case_id=case, campaign_id=campaigns["cases"],
                        category="办事效率", status="open" if i else "fixing", owner="李科长",
                        text=f"{name}反映材料要求反复变化，请回电{_number(n)[3:]}",
                        due_date=date(2026, 6, 20), created_at=START, updated_at=START,
                    ))  # fmt: skip
            hotline = conn.execute(
                sa.insert(t[Hotline]).values(unit_id=unit, e164=f"+8657188{i:06d}",
                                             created_at=START).returning(t[Hotline].c.id)
            ).scalar_one()  # fmt: skip
            for check in range(2):
                conn.execute(sa.insert(t[QueueItem]).values(
                    campaign_id=campaigns["hotlines"], unit_id=unit, hotline_id=hotline,
                    stratum=f"check-{check}", inclusion_probability=1.0, weight=1.0,
                    state="open", wait_reason="new",
                ))  # fmt: skip
    # The cases from Wednesday afternoon, so that retries fall in the next week; the hotlines
    # on Thursday morning.
    for campaign, start in [(campaigns["cases"], START), (campaigns["hotlines"], THURSDAY)]:
        rehearse(
            engine, campaign, lambda handler: SimulatedDialer({"seed": 7}, handler, handler),
            start=start, lines=4,
        )  # fmt: skip
    return secret


@pytest.fixture
def files(engine: Engine, tmp_path: Path) -> tuple[Path, Path, dict[str, list[str]]]:
    secret = demo(engine)
    xlsx, html = weekly_report(engine, date(2026, 6, 12), tmp_path / "out", NOW)
    return xlsx, html, secret


def _shown(text: str, secret: dict[str, list[str]]) -> list[str]:
    return [s for s in secret["names"] + secret["numbers"] if s in text]


def _xlsx_text(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))


def test_the_demo_spans_the_end_of_a_week(engine: Engine) -> None:
    demo(engine)
    report = rates_report(engine, "week", ["demo"])
    assert len(report.groups) == 2  # Wednesday evening's completes, and Thursday's


def test_the_workbook_has_its_sheets_and_charts_and_no_personal_data(files) -> None:
    xlsx, _, secret = files
    assert xlsx.name == "weekly-2026-06-11.xlsx"
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["概况 summary", "单位 units", "咨询电话 hotlines", "问题 problems"]
    units = book["单位 units"]
    assert {units.cell(row, 2).value for row in range(2, 5)} == {u for u, _ in UNITS}
    with zipfile.ZipFile(xlsx) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 2
    text = _xlsx_text(xlsx)
    assert "反映材料要求反复变化" in text and "139****" in text
    assert _shown(text, secret) == []


def test_the_page_is_self_contained_and_shows_no_personal_data(files) -> None:
    _, html, secret = files
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and "办事服务回访周报 2026-06-11 至 2026-06-17" in page
    for fetches in ("<script", "<link", "<img", "http:", "https:", "url(", "@import"):
        assert fetches not in page
    assert "反映材料要求反复变化" in page and _shown(page, secret) == []


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"{names[0]} is not installed")


def test_the_workbook_opens_in_libreoffice(files, tmp_path: Path) -> None:
    soffice = _binary("soffice", "libreoffice")
    xlsx, _, _ = files
    subprocess.run(
        [soffice, f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
         "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), str(xlsx)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    pdf = (tmp_path / "pdf" / xlsx.name).with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def _chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    chromium = _binary("chromium", "chromium-browser", "google-chrome", "chrome")
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr", "--v=0",
         # Nothing may be fetched: every host resolves to nowhere.
         "--host-resolver-rules=MAP * ~NOTFOUND", *args, page.as_uri()],
        check=True, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _console(stderr: str) -> list[str]:
    # Chromium logs every console message and uncaught exception as ":CONSOLE" at INFO.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_console_errors_would_be_caught(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction()</script>")
    logged = _console(_chromium(page, tmp_path, "--dump-dom").stderr)
    assert any("undefinedFunction" in line for line in logged)


def test_the_page_renders_in_headless_chromium_without_errors(files, tmp_path: Path) -> None:
    _, html, _ = files
    dom = _chromium(html, tmp_path, "--dump-dom")
    assert _console(dom.stderr) == []
    assert len(re.findall(r"<svg\b", dom.stdout)) == 2 and "<rect" in dom.stdout
    assert "单位排名 Units, ranked" in dom.stdout
    shot = tmp_path / "page.png"
    screenshot = _chromium(html, tmp_path, "--window-size=1280,2000", f"--screenshot={shot}")
    assert _console(screenshot.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_rates_workbook_and_csv(engine: Engine, tmp_path: Path) -> None:
    secret = demo(engine)
    report = rates_report(engine, "channel")
    write_rates_xlsx(report, tmp_path / "rates.xlsx")
    write_rates_csv(report, tmp_path / "rates.csv")
    book = openpyxl.load_workbook(tmp_path / "rates.xlsx")
    assert book.sheetnames == ["分组 by channel", "加权估计 district", "AAPOR", "咨询电话 hotlines",
                               "说明 notes"]  # fmt: skip
    assert book["分组 by channel"]["A2"].value == "掌上 mobile"
    with open(tmp_path / "rates.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    sections = {row["section"] for row in rows}
    assert sections == {"by channel", "district weighted", "district unweighted", "aapor",
                        "hotline"}  # fmt: skip
    rr1 = next(r for r in rows if r["measure"] == "RR1" and r["group"] == "")
    assert 0 < float(rr1["value"]) <= 1
    # Every unit's checks whose answerer nobody has identified yet, beside its 接通率.
    pending = [r for r in rows if r["section"] == "hotline" and r["measure"] == "pending"]
    assert {r["group"] for r in pending} == {h.unit for h in report.hotlines}
    assert [int(r["value"]) for r in pending] == [h.rates.pending for h in report.hotlines]
    header = [c.value for c in book["咨询电话 hotlines"][1]]
    assert header[1] == "抽查 calls" and header[-1] == "待核实 pending"
    assert _shown(_xlsx_text(tmp_path / "rates.xlsx"), secret) == []


def test_a_chart_shows_missing_rates_as_a_dash_and_escapes_names() -> None:
    svg = bar_chart_svg(
        "<实现率>", ["A&B局", "空"], [("实现率", [proportion(3, 4), proportion(0, 0)])]
    )
    assert "&lt;实现率&gt;" in svg and "A&amp;B局" in svg and "—" in svg
    assert svg.count("<rect") == 2  # the legend's and one bar: nothing drawn for n = 0
    assert "75.0% (3/4, 95% CI" in svg


def test_the_week_of_a_report_defaults_to_the_last_complete_one(
    engine: Engine, tmp_path: Path
) -> None:
    thursday = datetime(2026, 6, 11, 1, 0, tzinfo=UTC)
    xlsx, html = weekly_report(engine, None, tmp_path, thursday)
    assert xlsx.name == "weekly-2026-06-04.xlsx" and html.name == "weekly-2026-06-04.html"
