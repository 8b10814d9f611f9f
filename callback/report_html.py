"""The weekly report as one self-contained HTML page, its charts drawn as inline SVG.

No JavaScript, no stylesheet or font to fetch: the page opens offline, prints, and survives
being mailed as one file. Text stays text, so Chinese labels are drawn by the reader's own
fonts (a PNG from a plotting library would need CJK fonts on the server, and pygal's
interactive charts load their script from a CDN). The rows are callback.report_render's, the
same as the workbook's.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from callback.rates import Proportion
from callback.report_render import (
    DISTRICT_COLUMNS,
    HOTLINE_COLUMNS,
    PROBLEM_COLUMNS,
    UNIT_COLUMNS,
    Kind,
    district_rows,
    hotline_row,
    interval,
    local_minute,
    pct,
    points,
    problem_rows,
    unit_row,
)
from callback.weekly import WeeklyReport

_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",
sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccd;padding:3px 6px;vertical-align:top}
th{background:#dde5f0}td.n{text-align:right;white-space:nowrap}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ccd;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.note{color:#555;font-size:12px}
@media print{body{margin:0}}
"""
_COLOURS = ("#2f6db5", "#e08a2c", "#4a9a5b", "#a44")


def bar_chart_svg(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Proportion]]],
) -> str:
    """Horizontal grouped bars of shares with their intervals as whiskers, as an SVG element."""
    label_w, plot_w, bar_h, gap = 170, 520, 12, 10
    group_h = bar_h * len(series) + gap
    top = 48
    height = top + group_h * len(categories) + 30
    width = label_w + plot_w + 40
    esc = html.escape
    out = [
        f'<svg role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="12">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="14">{esc(title)}</text>',
    ]
    for i, (name, _) in enumerate(series):
        x = label_w + i * 150
        out.append(f'<rect x="{x}" y="26" width="12" height="12" fill="{_COLOURS[i % 4]}"/>')
        out.append(f'<text x="{x + 16}" y="36">{esc(name)}</text>')
    bottom = top + group_h * len(categories)
    for tick in range(0, 101, 25):
        tx = label_w + plot_w * tick / 100
        out.append(f'<line x1="{tx}" y1="{top}" x2="{tx}" y2="{bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{tx}" y="{bottom + 16}" text-anchor="middle">{tick}%</text>')
    for row, category in enumerate(categories):
        y0 = top + row * group_h
        out.append(
            f'<text x="{label_w - 6}" y="{y0 + group_h / 2 + 2}" text-anchor="end">'
            f"{esc(category)}</text>"
        )
        for i, (name, values) in enumerate(series):
            p = values[row]
            y = y0 + i * bar_h + gap / 2
            if p.estimate is None:
                out.append(f'<text x="{label_w + 4}" y="{y + bar_h - 2}" fill="#888">—</text>')
                continue
            w = plot_w * p.estimate
            tip = f"{category} {name}: {pct(p.estimate)} ({p.k}/{p.n}, 95% CI {interval(p)})"
            out.append(
                f'<rect x="{label_w}" y="{y + 1}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{_COLOURS[i % 4]}"><title>{esc(tip)}</title></rect>'
            )
            if p.low is not None and p.high is not None:
                x1, x2, mid = label_w + plot_w * p.low, label_w + plot_w * p.high, y + bar_h / 2
                out.append(
                    f'<path d="M{x1:.1f} {mid}H{x2:.1f}M{x1:.1f} {mid - 3}v6M{x2:.1f} {mid - 3}v6"'
                    ' stroke="#222" fill="none"/>'
                )
    out.append("</svg>")
    return "".join(out)


def _cell(value: Any, kind: Kind) -> str:
    if kind == "pct":
        return f'<td class="n">{pct(value)}</td>'
    if kind == "pp":
        return f'<td class="n">{points(value)}</td>'
    if kind in ("int", "num"):
        text = "—" if value is None else (f"{value:,}" if kind == "int" else f"{value:.3g}")
        return f'<td class="n">{text}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def html_table(columns: Sequence[tuple[str, Kind]], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    body = "".join(
        "<tr>" + "".join(_cell(v, k) for v, (_, k) in zip(row, columns, strict=True)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def weekly_html(report: WeeklyReport) -> str:
    """The weekly report as one self-contained HTML page."""
    esc, t = html.escape, report.total
    title = f"办事服务回访周报 {report.week.label}"
    cards = [
        ("本周拨打 attempted", f"{t.attempted:,}"), ("本周完成 completed", f"{t.completed:,}"),
        ("完成率 completion", pct(t.completion.estimate)),
        ("实现率 realisation", pct(t.realisation.estimate)),
        ("满意率 satisfaction", pct(t.satisfaction.estimate)),
        ("接通率 connection", pct(t.hotline.connection.estimate)),
        ("实时答复率 real-time", pct(t.hotline.real_time_answer.estimate)),
    ]  # fmt: skip
    units = [x for x in report.units if x.completed]
    calls = [x for x in report.units if x.hotline.calls]
    generated = local_minute(report.generated_at, report.timezone)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">Weekly callback report, {esc(report.week.label)} '
        f"({esc(report.timezone)}), generated {esc(generated)}; campaigns: "
        f"{esc(', '.join(report.campaigns) or '—')}</p>",
        '<div class="cards">'
        + "".join(f'<div class="card">{esc(k)}<b>{esc(v)}</b></div>' for k, v in cards)
        + "</div>",
        "<h2>单位排名 Units, ranked</h2>",
        html_table(UNIT_COLUMNS, [unit_row(x) for x in report.units]),
    ]
    if units:
        parts.append(
            bar_chart_svg(
                "实现率与满意率（本周，须线为95%置信区间）",
                [x.unit for x in units],
                [
                    ("实现率", [x.realisation for x in units]),
                    ("满意率", [x.satisfaction for x in units]),
                ],
            )  # fmt: skip
        )
    parts += ["<h2>咨询电话抽查 Hotline spot checks</h2>"]
    if calls:
        parts.append(html_table(HOTLINE_COLUMNS, [hotline_row(x) for x in calls]))
        parts.append(
            bar_chart_svg(
                "接通率与实时答复率（本周）",
                [x.unit for x in calls],
                [
                    ("接通率", [x.hotline.connection for x in calls]),
                    ("实时答复率", [x.hotline.real_time_answer for x in calls]),
                ],
            )  # fmt: skip
        )
    else:
        parts.append("<p>本周无抽查 No spot checks this week.</p>")
    parts += [
        "<h2>全区加权估计 District weighted estimate (to the end of the week)</h2>",
        html_table(DISTRICT_COLUMNS, district_rows(report.district)),
        "<h2>未整改问题 Open problems</h2>",
        html_table(PROBLEM_COLUMNS, problem_rows(report)) if report.problems else "<p>无 None.</p>",
        "<h2>说明 Notes</h2><ul>",
        *(f"<li>{esc(note)}</li>" for note in report.notes),
        "</ul></body></html>",
    ]
    return "\n".join(parts)


def write_weekly_html(report: WeeklyReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(weekly_html(report), encoding="utf-8")
    os.replace(partial, path)
