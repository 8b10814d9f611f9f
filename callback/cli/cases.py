"""``callback cases``: import service cases exported by service centres; show one case's file."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from callback.audit_log import record_disclosure
from callback.case_file import CaseFile, case_file
from callback.cli.audit import print_audit
from callback.cli.context import AppContext, pass_app
from callback.cli.output import echo_json, table
from callback.importing import ImportOptions, ImportResult, import_file
from callback.sources import Layout, Source, load_mapping


@click.group()
def cases() -> None:
    """Service cases (办件): import them from service-centre exports; show one."""


@cases.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML file naming the columns (and channel or applicant-type values) of an unusual "
    "layout; see docs/importing.md.",
)
@click.option(
    "--encoding",
    help="Encoding of CSV files, when detection (UTF-8, UTF-8 with BOM, UTF-16, GB18030) "
    "is not enough.",
)
@click.option(
    "--sheet", help="Sheet of an XLSX workbook to read (default: the first with a header)."
)
@click.option(
    "--rejects-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for FILE.rejects.csv (default: beside each file).",
)
@click.option(
    "--default-area-code",
    help="Area code for landlines typed without one (default 0571, or the setting).",
)
@click.option("--dry-run", is_flag=True, help="Check everything and report, but store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_app
def import_(
    app: AppContext,
    files: tuple[str, ...],
    mapping: str | None,
    encoding: str | None,
    sheet: str | None,
    rejects_dir: Path | None,
    default_area_code: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Import cases from CSV or XLSX exports, each file in one transaction.

    Re-importing a file changes nothing; a case whose facts changed is updated and the
    change is written to the audit log. Rows that cannot be imported, and values that were
    kept but flagged (a fake phone number, say), are listed with their row, field and reason
    in FILE.rejects.csv.

    \b
    Examples:
      callback cases import 2018-06.csv 2018-07.xlsx
      callback cases import --mapping layout.toml export.csv
      callback cases import --dry-run export.csv
    """
    app.override(default_area_code=default_area_code)
    settings = app.settings
    engine = app.database()
    options = ImportOptions(
        mapping=load_mapping(mapping),
        encoding=encoding,
        sheet=sheet,
        rejects_dir=rejects_dir,
        dry_run=dry_run,
    )
    if rejects_dir is not None:
        rejects_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in files:
        with _Progress(Path(path).name) as progress:
            result = import_file(
                engine, path, settings, options, progress=progress.update, on_start=progress.start
            )
        results.append(result)
        if not as_json:
            _report(result)
    if as_json:
        echo_json([asdict(r) | {"rows_per_second": round(r.rows_per_second)} for r in results])


def _report(result: ImportResult) -> None:
    name = Path(result.path).name
    verb = "would be" if result.dry_run else ""
    click.echo(
        f"{name}: read {result.rows_read:,} rows: {result.inserted:,} inserted, "
        f"{result.updated:,} updated, {result.unchanged:,} unchanged, "
        f"{result.rejected:,} rejected {verb}".rstrip()
    )
    if result.without_valid_phone:
        click.echo(f"  {result.without_valid_phone:,} cases have no valid phone number")
    if result.rejects_path:
        click.echo(
            f"  {result.rejected:,} rejected rows and {result.warnings:,} warnings "
            f"are listed in {result.rejects_path}"
        )
    if result.earlier:
        batch, when, who = result.earlier[-1]
        click.echo(
            f"  this file was imported before (batch {batch}, {when:%Y-%m-%d %H:%M} UTC, by {who})",
            err=True,
        )
    if result.dry_run:
        click.echo("  dry run: nothing was stored", err=True)
    click.echo(
        f"  {result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s "
        f"({result.encoding or result.sheet})",
        err=True,
    )


@cases.command("show")
@click.argument("case_no")
@click.option("--full", is_flag=True, help="Show names and numbers whole instead of masked.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: AppContext, case_no: str, full: bool, as_json: bool) -> None:
    """Show case CASE_NO's file: facts, numbers, queues, calls, answers, corrections, problems
    and every change to it (who, when, before, after, why, from which call)."""
    engine = app.database()
    found = case_file(engine, case_no, full)
    if full:
        record_disclosure(engine, app.settings.actor, "disclose.case", app.now(),
                          {"case_no": found.case_no}, "callback cases show --full",
                          case_id=found.case_id)  # fmt: skip
    if as_json:
        echo_json(asdict(found))
        return
    _print_file(found, app)


def _print_file(f: CaseFile, app: AppContext) -> None:
    tz = app.settings.tz

    def at(value: Any) -> str:
        return "" if value is None else f"{value.astimezone(tz):%Y-%m-%d %H:%M}"

    def section(title: str, headers: list[str], rows: list[tuple[Any, ...]]) -> None:
        click.echo(f"\n{title}")
        click.echo(table(headers, rows) if rows else "  (none)")

    click.echo(f"{f.case_no}  {f.unit}{' / ' + f.town if f.town else ''}")
    click.echo(f"  item       {f.item_name}{f' ({f.item_code})' if f.item_code else ''}")
    contact = f", contact {f.contact_name}" if f.contact_name else ""
    click.echo(f"  applicant  {f.applicant_name or '—'} ({f.applicant_type}){contact}")
    click.echo(f"  handled    {at(f.handled_at)}{f', {f.channel}' if f.channel else ''}")
    if f.source:
        click.echo(f"  from       {f.source}")
    section(
        "numbers",
        [
            "#",
            "number",
            "ext",
            "kind",
            "validity",
            "verification",
            "source",
            "checked",
            "superseded",
        ],
        [
            (
                c.position,
                c.number,
                c.extension or "",
                c.kind or "",
                c.validity,
                c.verification,
                c.source,
                at(c.checked_at),
                at(c.superseded_at),
            )
            for c in f.contacts
        ],
    )
    section(
        "queues",
        ["campaign", "state", "attempts", "due", "waiting for", "appointment", "final", "weight"],
        [
            (
                q.campaign,
                q.state,
                q.attempts,
                at(q.due_at),
                q.wait_reason or "",
                at(q.appointment_at),
                q.final_disposition or "",
                round(q.weight, 2),
            )
            for q in f.queues
        ],
    )
    section(
        "calls",
        ["call", "campaign", "at", "number", "dialer", "by", "outcome", "code"],
        [
            (
                c.id,
                c.campaign,
                at(c.at),
                c.number,
                c.dialer,
                c.worker,
                c.outcome or "",
                c.disposition or "",
            )
            for c in f.calls
        ],
    )
    section(
        "answers",
        ["campaign", "call", "complete", "实现", "满意", "recorded"],
        [
            (
                a.campaign,
                a.attempt_id,
                _yes(a.complete),
                _yes(a.realised),
                _yes(a.satisfied),
                at(a.recorded_at),
            )
            for a in f.answers
        ],
    )
    section(
        "corrections",
        ["id", "kind", "proposed", "status", "by", "at", "call"],
        [
            (
                c.id,
                c.kind,
                c.proposed,
                c.status,
                c.proposed_by,
                at(c.proposed_at),
                c.attempt_id or "",
            )
            for c in f.corrections
        ],
    )
    section(
        "problems",
        ["id", "category", "status", "owner", "text"],
        [(p.id, p.category, p.status, p.owner or "", p.text) for p in f.problems],
    )
    click.echo("\nchanges (audit log)")
    print_audit(f.audit, tz, with_case=False)


def _yes(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


class _Progress:
    """A progress bar on stderr, shown once a file takes more than a moment."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0
        self.started = time.monotonic()

    def __enter__(self) -> _Progress:
        return self

    def start(self, source: Source, layout: Layout) -> None:
        click.echo(f"{source.name}: columns {layout.describe()}", err=True)
        if not sys.stderr.isatty():
            return  # a log file wants the summary, not a bar redrawn a hundred times
        self.bar = click.progressbar(
            length=max(source.size, 1),
            label=self.label,
            file=sys.stderr,
            show_eta=True,
            item_show_func=lambda rows: f"{rows:,} rows" if rows else None,
        )
        self.bar.__enter__()

    def update(self, position: int, rows: int) -> None:
        if self.bar is None:
            return
        rate = rows / max(time.monotonic() - self.started, 1e-6)
        self.bar.update(max(position - self.done, 0), current_item=rows)
        self.bar.label = f"{self.label} {rate:,.0f} rows/s"
        # A file read again in one piece (a misleading quote) starts over: the bar waits.
        self.done = max(self.done, position)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
