"""Reports as files: XLSX workbooks with charts (openpyxl) and CSV, and the rows they share
with the HTML page (callback.report_html).

Everything shown comes from callback.reports, where names and numbers are already masked.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from callback.estimates import WeightedProportion
from callback.rates import CATEGORIES, RATE_NAMES, Proportion
from callback.reports import RatesReport
from callback.weekly import UnitWeek, WeeklyReport

PERCENT = "0.0%"
STATUS = {"open": "待整改 open", "fixing": "整改中 fixing"}
CHANNELS = {"window": "窗口", "online": "网上", "mobile": "掌上", "nearby": "就近", "mail": "邮寄"}
#: Column kinds: how a value is written to a cell and shown on the page.
Kind = str  # "text", "int", "pct", "pp" (a change in percentage points), "num"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def points(change: float | None) -> str:
    return "—" if change is None else f"{change * 100:+.1f}"


def interval(p: Proportion | WeightedProportion) -> str:
    return "—" if p.low is None or p.high is None else f"{pct(p.low)}–{pct(p.high)}"


# -- rows shared by the workbook and the page ---------------------------------------------------

UNIT_COLUMNS: list[tuple[str, Kind]] = [
    ("排名 rank", "int"), ("单位 unit", "text"), ("抽样 sampled", "int"),
    ("本周拨打 attempted", "int"), ("本周完成 completed", "int"),
    ("累计完成 to date", "int"), ("完成率 completion", "pct"),
    ("实现率 realisation", "pct"), ("实现率 95% CI", "text"), ("实现率 n", "int"),
    ("实现率较上周 Δ pp", "pp"),
    ("满意率 satisfaction", "pct"), ("满意率 95% CI", "text"), ("满意率 n", "int"),
    ("满意率较上周 Δ pp", "pp"),
]  # fmt: skip
HOTLINE_COLUMNS: list[tuple[str, Kind]] = [
    ("单位 unit", "text"), ("抽查 calls", "int"), ("接通率 connection", "pct"),
    ("接通率 95% CI", "text"), ("较上周 Δ pp", "pp"), ("实时答复率 real-time answer", "pct"),
    ("实时答复率 n", "int"), ("接听用时中位数 median s", "num"), ("待核实 pending", "int"),
]  # fmt: skip
PROBLEM_COLUMNS: list[tuple[str, Kind]] = [
    ("单位 unit", "text"), ("办件编号 case", "text"), ("类别 category", "text"),
    ("内容 text", "text"), ("状态 status", "text"), ("责任人 owner", "text"),
    ("整改期限 due", "text"), ("提出日期 raised", "text"), ("逾期 overdue", "text"),
]  # fmt: skip


def unit_row(x: UnitWeek) -> list[Any]:
    return [
        x.rank, x.unit, x.sampled, x.attempted, x.completed, x.completed_to_date,
        x.completion.estimate, x.realisation.estimate, interval(x.realisation),
        x.realisation.n, x.realisation_change, x.satisfaction.estimate,
        interval(x.satisfaction), x.satisfaction.n, x.satisfaction_change,
    ]  # fmt: skip


def hotline_row(x: UnitWeek) -> list[Any]:
    h = x.hotline
    return [
        x.unit, h.calls, h.connection.estimate, interval(h.connection), x.connection_change,
        h.real_time_answer.estimate, h.real_time_answer.n, h.median_seconds_to_answer, h.pending,
    ]  # fmt: skip


def problem_rows(report: WeeklyReport) -> list[list[Any]]:
    zone = ZoneInfo(report.timezone)
    return [
        [p.unit, p.case_no, p.category, p.text, STATUS.get(p.status, p.status), p.owner,
         p.due_date.isoformat() if p.due_date else "",
         p.created_at.astimezone(zone).date().isoformat(), "是 yes" if p.overdue else ""]
        for p in report.problems
    ]  # fmt: skip


def district_rows(districts: Iterable[Any]) -> list[list[Any]]:
    rows = []
    for d in districts:
        for label, w in (("实现率", d.rates.realisation), ("满意率", d.rates.satisfaction)):
            rows.append([
                d.campaign, label, w.estimate, interval(w),
                w.standard_error, w.design_effect, w.unweighted.estimate,
                interval(w.unweighted), w.n, w.estimator,
            ])  # fmt: skip
    return rows


DISTRICT_COLUMNS: list[tuple[str, Kind]] = [
    ("任务 campaign", "text"), ("指标 rate", "text"), ("加权估计 weighted", "pct"),
    ("95% CI", "text"), ("标准误 SE", "pct"), ("设计效应 deff", "num"),
    ("未加权 unweighted", "pct"), ("未加权 95% CI", "text"), ("n", "int"),
    ("估计量 estimator", "text"),
]  # fmt: skip


# -- XLSX ------------------------------------------------------------------------------------

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")


def _sheet(
    ws: Worksheet, columns: Sequence[tuple[str, Kind]], rows: Iterable[Sequence[Any]], top: int = 1
) -> int:
    """Write a table from row ``top``; return the last row written."""
    for col, (name, _) in enumerate(columns, start=1):
        cell = ws.cell(top, col, name)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        width = 48 if name.startswith("内容") else max(10, min(24, len(name) + 4))
        ws.column_dimensions[get_column_letter(col)].width = width
    last = top
    for last, row in enumerate(rows, start=top + 1):
        for col, (value, (_, kind)) in enumerate(zip(row, columns, strict=True), start=1):
            if kind == "pp" and value is not None:
                value = round(value * 100, 1)  # percentage points, as the header says
            cell = ws.cell(last, col, value)
            if kind == "pct":
                cell.number_format = PERCENT
            elif kind == "num":
                cell.number_format = "0.0##"
            if kind == "text":
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = ws.cell(top + 1, 1)
    # Printed (and converted to PDF) landscape, as wide as one page, as long as it takes.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    return last


def _chart(
    ws: Worksheet, title: str, label_col: int, value_cols: Sequence[int], rows: tuple[int, int],
    anchor: str,
) -> None:  # fmt: skip
    """A clustered bar chart of percentage columns, one bar per unit."""
    first, last = rows
    if last <= first:
        return
    chart = BarChart()
    chart.type, chart.title, chart.style = "bar", title, 10
    chart.y_axis.number_format, chart.y_axis.scaling.min, chart.y_axis.scaling.max = PERCENT, 0, 1
    chart.y_axis.title = "%"
    # openpyxl 3.1 leaves the axes' "delete" flag unset, which Excel reads as hidden axes.
    chart.x_axis.delete = chart.y_axis.delete = False
    for col in value_cols:
        chart.add_data(
            Reference(ws, min_col=col, min_row=first, max_row=last), titles_from_data=True
        )
    chart.set_categories(Reference(ws, min_col=label_col, min_row=first + 1, max_row=last))
    chart.height, chart.width = max(7.5, 1.0 * (last - first) + 4), 18
    ws.add_chart(chart, anchor)


def _save(wb: Workbook, path: Path) -> None:
    # Written aside and moved into place: whoever opens the file (a mail job, a web page) never
    # sees half of it, and a failed run leaves last week's file as it was.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    wb.save(partial)
    os.replace(partial, path)


def write_weekly_xlsx(report: WeeklyReport, path: Path) -> None:
    """The weekly report as a workbook: summary, units (with a chart), hotlines, problems."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概况 summary"
    ws.append([f"办事服务回访周报 Weekly callback report {report.week.label}"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["生成时间 generated", local_minute(report.generated_at, report.timezone)])
    ws.append(["回访任务 campaigns", ", ".join(report.campaigns) or "—"])
    ws.append([])
    t = report.total
    for label, value, fmt in [
        ("抽样 sampled", t.sampled, None), ("本周拨打 attempted", t.attempted, None),
        ("本周完成 completed", t.completed, None), ("累计完成 to date", t.completed_to_date, None),
        ("完成率 completion", t.completion.estimate, PERCENT),
        ("实现率 realisation", t.realisation.estimate, PERCENT),
        ("满意率 satisfaction", t.satisfaction.estimate, PERCENT),
        ("接通率 connection", t.hotline.connection.estimate, PERCENT),
        ("实时答复率 real-time answer", t.hotline.real_time_answer.estimate, PERCENT),
    ]:  # fmt: skip
        ws.append([label, value])
        if fmt:
            ws.cell(ws.max_row, 2).number_format = fmt
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 30, 24
    top = ws.max_row + 2
    ws.cell(
        top - 1, 1, "全区加权估计（截至本周末） District weighted estimate, to week end"
    ).font = _HEADER_FONT
    last = _sheet(ws, DISTRICT_COLUMNS, district_rows(report.district), top)
    for offset, note in enumerate(report.notes, start=2):
        ws.cell(last + offset, 1, note)

    units = wb.create_sheet("单位 units")
    last = _sheet(units, UNIT_COLUMNS, [unit_row(x) for x in report.units])
    _chart(units, "实现率与满意率 (本周)", 2, (8, 12), (1, last), f"A{last + 3}")
    hotlines = wb.create_sheet("咨询电话 hotlines")
    with_calls = [x for x in report.units if x.hotline.calls]
    last = _sheet(hotlines, HOTLINE_COLUMNS, [hotline_row(x) for x in with_calls])
    _chart(hotlines, "接通率与实时答复率 (本周)", 1, (3, 6), (1, last), f"A{last + 3}")
    _sheet(wb.create_sheet("问题 problems"), PROBLEM_COLUMNS, problem_rows(report))
    _save(wb, path)


def local_minute(at: datetime, timezone: str) -> str:
    """``at`` as local ``YYYY-MM-DD HH:MM`` in ``timezone``, as the reports print instants."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


GROUP_COLUMNS: list[tuple[str, Kind]] = [
    ("分组 group", "text"), ("完成 completes", "int"),
    ("实现率 realisation", "pct"), ("实现率 95% CI", "text"), ("实现率 k", "int"),
    ("实现率 n", "int"), ("满意率 satisfaction", "pct"), ("满意率 95% CI", "text"),
    ("满意率 k", "int"), ("满意率 n", "int"),
]  # fmt: skip
OUTCOME_COLUMNS: list[tuple[str, Kind]] = [
    ("任务 campaign", "text"), ("单位 unit", "text"), ("样本 cases", "int"),
    ("未结 open", "int"), ("e", "num"), ("e 来源 source", "text"),
    *((name.upper(), "pct") for name in RATE_NAMES),
    *((category, "int") for category in CATEGORIES),
]  # fmt: skip


def group_label(by: str, group: str) -> str:
    return f"{CHANNELS[group]} {group}" if by == "channel" and group in CHANNELS else group


def rates_tables(report: RatesReport) -> dict[str, tuple[list[tuple[str, Kind]], list[list[Any]]]]:
    """The rates report as named tables (sheets of the workbook, sections of the terminal)."""
    groups = [
        [group_label(report.by, g.group), g.completes, g.realisation.estimate,
         interval(g.realisation), g.realisation.k, g.realisation.n, g.satisfaction.estimate,
         interval(g.satisfaction), g.satisfaction.k, g.satisfaction.n]
        for g in (*report.groups, report.total)
    ]  # fmt: skip
    outcomes = [
        [o.campaign, o.unit or "全部 all", o.cases, o.open, o.rates.e, o.rates.e_source,
         *o.rates.rates().values(), *(o.rates.counts.get(k, 0) for k in CATEGORIES)]
        for o in report.outcomes
    ]  # fmt: skip
    hotlines = [
        [h.unit, h.rates.calls, h.rates.connection.estimate, interval(h.rates.connection),
         h.rates.real_time_answer.estimate, interval(h.rates.real_time_answer),
         h.rates.real_time_answer.n, h.rates.median_seconds_to_answer, h.rates.pending]
        for h in report.hotlines
    ]  # fmt: skip
    hotline_columns: list[tuple[str, Kind]] = [
        ("单位 unit", "text"), ("抽查 calls", "int"), ("接通率 connection", "pct"),
        ("接通率 95% CI", "text"), ("实时答复率 real-time answer", "pct"),
        ("实时答复率 95% CI", "text"), ("实时答复率 n", "int"), ("接听用时中位数 median s", "num"),
        ("待核实 pending", "int"),
    ]  # fmt: skip
    level = f"{report.confidence * 100:g}%"

    def at_level(columns: list[tuple[str, Kind]]) -> list[tuple[str, Kind]]:
        return [(name.replace("95%", level), kind) for name, kind in columns]

    return {
        f"分组 by {report.by}": (at_level(GROUP_COLUMNS), groups),
        "加权估计 district": (at_level(DISTRICT_COLUMNS), district_rows(report.district)),
        "AAPOR": (OUTCOME_COLUMNS, outcomes),
        "咨询电话 hotlines": (at_level(hotline_columns), hotlines),
    }


def write_rates_xlsx(report: RatesReport, path: Path) -> None:
    """The rates report as a workbook, one sheet per table, the groups with a chart."""
    wb = Workbook()
    first = True
    for name, (columns, rows) in rates_tables(report).items():
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        ws.title, first = name[:31], False
        last = _sheet(ws, columns, rows)
        if name.startswith("分组"):
            # The chart leaves out the total row: it would dwarf nothing but add a bar.
            _chart(ws, f"实现率与满意率 by {report.by}", 1, (3, 7), (1, last - 1), f"A{last + 3}")
    notes = wb.create_sheet("说明 notes")
    for note in (f"campaigns: {', '.join(report.campaigns) or '—'}", *report.notes):
        notes.append([note])
    _save(wb, path)


CSV_HEADER = ("section", "campaign", "group", "measure", "value", "low", "high", "k", "n")


def rates_csv_rows(report: RatesReport) -> list[tuple[Any, ...]]:
    """The rates report in long form: one measure per row, every section in one file."""
    rows: list[tuple[Any, ...]] = []
    for g in (*report.groups, report.total):
        for measure, p in (("realisation", g.realisation), ("satisfaction", g.satisfaction)):
            rows.append((f"by {report.by}", "", g.group, measure, p.estimate, p.low, p.high,
                         p.k, p.n))  # fmt: skip
    for d in report.district:
        for measure, w in (
            ("realisation", d.rates.realisation),
            ("satisfaction", d.rates.satisfaction),
        ):
            rows.append(("district weighted", d.campaign, w.estimator, measure, w.estimate, w.low,
                         w.high, "", w.n))  # fmt: skip
            u = w.unweighted
            rows.append(("district unweighted", d.campaign, "", measure, u.estimate, u.low,
                         u.high, u.k, u.n))  # fmt: skip
    for o in report.outcomes:
        counts = ((f"count {k}", o.rates.counts.get(k, 0)) for k in CATEGORIES)
        for measure, value in (*o.rates.rates().items(), ("e", o.rates.e), *counts):
            rows.append(("aapor", o.campaign, o.unit or "", measure, value, "", "", "", o.cases))
    for h in report.hotlines:
        for measure, p in (("connection", h.rates.connection),
                           ("real_time_answer", h.rates.real_time_answer)):  # fmt: skip
            rows.append(("hotline", "", h.unit, measure, p.estimate, p.low, p.high, p.k, p.n))
        median = h.rates.median_seconds_to_answer
        rows.append(("hotline", "", h.unit, "median_seconds_to_answer", median, "", "", "",
                     h.rates.timed_calls))  # fmt: skip
        rows.append(("hotline", "", h.unit, "pending", h.rates.pending, "", "", "",
                     h.rates.calls))  # fmt: skip
    return rows


def write_rates_csv(report: RatesReport, path: Path) -> None:
    # UTF-8 with a byte-order mark: Excel in China opens it as UTF-8 only with one.
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        writer.writerows(("" if v is None else v for v in row) for row in rates_csv_rows(report))
