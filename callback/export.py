"""The corrected frame (样本框) for the evaluator: every case, its current facts and each
current number's verification, streamed in case-number order to an exporter plugin.

Nothing here reads survey answers: what citizens said about realisation or satisfaction can
neither drop, hide, reorder nor re-weight a case. A number's verification comes from who
answered on it (callback.sessions), from corrections, and from attempts (``unreachable``).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import IO, Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from callback import plugins
from callback.dispositions import CODES, Category, Disposition
from callback.errors import CallbackError
from callback.models import (
    CallAttempt,
    Case,
    Contact,
    QueueItem,
    QueueState,
    Unit,
    Validity,
    Verification,
    table,
)

cases_t, contacts_t, units_t = table(Case), table(Contact), table(Unit)
attempts_t, items_t = table(CallAttempt), table(QueueItem)

#: Attempt codes that say nobody (no person) answered: no contact, a machine, a dead line.
NOBODY_ANSWERED = frozenset(
    str(code) for code, info in CODES.items() if info.category in (Category.UH, Category.UO)
) | {str(Disposition.MACHINE_MESSAGE), str(Disposition.MACHINE_NO_MESSAGE),
     str(Disposition.DEAD_NUMBER)}  # fmt: skip
#: Rows fetched from the database at a time: memory stays flat however large the frame.
BATCH_ROWS = 2_000

CHANNELS = {"window": "窗口", "online": "网上", "mobile": "掌上", "nearby": "就近", "mail": "邮寄"}
APPLICANT_TYPES = {"person": "个人", "company": "法人"}
VERIFICATIONS = {
    Verification.VERIFIED.value: "已核实",
    Verification.CORRECTED.value: "已更正",
    Verification.UNREACHABLE.value: "无法接通",
    Verification.WRONG_NUMBER.value: "号码错误",
    Verification.NOT_CALLED.value: "未回访",
}
INVALID_NUMBER = "号码无效"
#: The case columns, named as the importer knows them, so that the export reads back in.
CASE_HEADER = (
    "办件编号", "事项名称", "事项编码", "实施部门", "所属镇街", "申请人", "申请人类型", "联系人",
    "办结时间", "办理渠道",
)  # fmt: skip
# Usable numbers first: the evaluator dials 联系电话（1） first.
_RANK = {"verified": 0, "corrected": 0, "not_called": 1, "unreachable": 1, "wrong_number": 2}


class ExportError(CallbackError):
    """The frame could not be exported (an unknown format, an exporter that failed)."""


def national(e164: str, kind: str | None = None) -> str:
    """A Chinese number as dialled at home: a mobile's 11 digits, a landline's area code, a
    dash and the local number (0571-87654321), anything else as ``phonenumbers`` writes it.

    Mobiles and landlines, nearly every number, skip ``phonenumbers`` (2/3 of an export's
    time): area codes after the trunk 0 are 10 and 20-29, else three digits (GB/T 13736),
    and the tests compare both ways on every area code ``phonenumbers`` knows.
    """
    digits = e164[3:]
    if e164.startswith("+86") and digits.isdigit():
        if kind == "mobile" and len(digits) == 11 and digits[0] == "1":
            return digits
        if kind == "landline":
            cut = 2 if digits[0] == "2" or digits.startswith("10") else 3
            return f"0{digits[:cut]}-{digits[cut:]}"
    text = phonenumbers.format_number(
        phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    area, _, rest = text.partition(" ")
    if area.startswith("0") and rest:
        return f"{area}-{rest.replace(' ', '')}"
    return text.replace(" ", "")


@dataclass(frozen=True)
class FrameContact:
    """One current number of a case and what callbacks learnt of it."""

    e164: str | None
    raw: str
    extension: str | None
    kind: str | None
    validity: str
    #: import, callback or agent (callback.models.ContactSource).
    source: str
    #: not_called, verified, corrected, unreachable or wrong_number (callback.models.Verification).
    verification: str
    #: When it was last checked, in the export's time zone.
    checked_at: datetime | None

    @property
    def number(self) -> str:
        """The number as dialled in China: 13912345671, 0571-87654321转8001; as typed if
        it is not a valid number."""
        if self.e164 is None:
            return self.raw
        text = national(self.e164, self.kind)
        return f"{text}转{self.extension}" if self.extension else text

    @property
    def status(self) -> str:
        """The verification in Chinese, for people; a number never dialled because it is
        fake or invalid says so."""
        if self.verification == Verification.NOT_CALLED and self.validity != Validity.VALID:
            return INVALID_NUMBER
        return VERIFICATIONS.get(self.verification, self.verification)


@dataclass(frozen=True)
class FrameRow:
    """One case of the frame with its current facts and numbers."""

    case_no: str
    item_name: str
    item_code: str | None
    unit: str
    town: str | None
    applicant_name: str | None
    applicant_type: str
    contact_name: str | None
    #: In the export's time zone (Asia/Shanghai unless configured otherwise).
    handled_at: datetime
    channel: str | None
    contacts: tuple[FrameContact, ...]


class FrameRows:
    """The frame's rows, read once, in case-number order, a batch at a time.

    Besides being an iterable of ``FrameRow`` it says how many ``cases`` there are and the
    most numbers one case has (``max_contacts``), so that a writer can lay out its columns
    before the first row; both come from the same snapshot as the rows.
    """

    def __init__(
        self,
        rows: Iterator[FrameRow],
        cases: int,
        max_contacts: int,
        timezone: tzinfo,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._rows = rows
        self.cases = cases
        self.max_contacts = max_contacts
        self.timezone = timezone
        self.yielded = 0
        self.contacts = 0
        self._progress = progress
        self._started = False

    def __iter__(self) -> Iterator[FrameRow]:
        if self._started:
            raise ExportError("the frame's rows can be read only once")
        self._started = True
        for row in self._rows:
            self.yielded += 1
            self.contacts += len(row.contacts)
            yield row
            if self._progress is not None and self.yielded % BATCH_ROWS == 0:
                self._progress(self.yielded, self.cases)
        if self._progress is not None:
            self._progress(self.yielded, self.cases)


def frame_rows(
    conn: Connection, timezone: tzinfo, progress: Callable[[int, int], None] | None = None
) -> FrameRows:
    """Every case of the frame on ``conn`` (inside its transaction, which holds the
    snapshot) as ``FrameRows``; rows are fetched while they are read."""
    cases = conn.execute(sa.select(sa.func.count()).select_from(cases_t)).scalar_one()
    per_case = (
        sa.select(sa.func.count().label("n"))
        .where(contacts_t.c.superseded_at.is_(None))
        .group_by(contacts_t.c.case_id)
        .subquery()
    )
    widest = conn.execute(sa.select(sa.func.max(per_case.c.n))).scalar() or 0
    return FrameRows(_rows(conn, timezone), cases, int(widest), timezone, progress)


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """1 when ``condition`` held for any of the group's rows, else 0."""
    return sa.func.max(sa.case((condition, 1), else_=0))


def _attempts_by_contact() -> sa.Subquery:
    """Per contact: was a person ever reached, was it a dead line, did a case it was tried
    for finish, and when was it last tried. Only ended attempts say anything."""
    reached = sa.and_(
        attempts_t.c.disposition.is_not(None),
        attempts_t.c.disposition.not_in(sorted(NOBODY_ANSWERED)),
    )
    return (
        sa.select(
            attempts_t.c.contact_id,
            _flag(reached).label("reached"),
            _flag(attempts_t.c.disposition == str(Disposition.DEAD_NUMBER)).label("dead"),
            _flag(items_t.c.state == QueueState.FINISHED.value).label("finished"),
            sa.func.max(attempts_t.c.ended_at).label("last_ended"),
        )
        .join(items_t, items_t.c.id == attempts_t.c.queue_item_id)
        .where(attempts_t.c.state == "ended", attempts_t.c.contact_id.is_not(None))
        .group_by(attempts_t.c.contact_id)
        .subquery("tried")
    )


def _rows(conn: Connection, timezone: tzinfo) -> Iterator[FrameRow]:
    town_t = units_t.alias("town")
    tried = _attempts_by_contact()
    case_no: sa.ColumnElement[str] = cases_t.c.case_no
    if conn.dialect.name == "postgresql":
        # Byte order, as SQLite sorts: the same file whatever the database's locale.
        case_no = case_no.collate("C")
    query = (
        sa.select(
            cases_t.c.id, cases_t.c.case_no, cases_t.c.item_name, cases_t.c.item_code,
            units_t.c.name.label("unit"), town_t.c.name.label("town"), cases_t.c.applicant_name,
            cases_t.c.applicant_type, cases_t.c.contact_name, cases_t.c.handled_at,
            cases_t.c.channel, contacts_t.c.id.label("contact_id"), contacts_t.c.position,
            contacts_t.c.raw, contacts_t.c.e164, contacts_t.c.extension, contacts_t.c.kind,
            contacts_t.c.validity, contacts_t.c.source, contacts_t.c.verification,
            contacts_t.c.checked_at, tried.c.reached, tried.c.dead, tried.c.finished,
            tried.c.last_ended,
        )
        .select_from(cases_t)
        # Outer joins only: no join may drop a case.
        .outerjoin(units_t, units_t.c.id == cases_t.c.unit_id)
        .outerjoin(town_t, town_t.c.id == cases_t.c.town_id)
        .outerjoin(
            contacts_t,
            sa.and_(contacts_t.c.case_id == cases_t.c.id, contacts_t.c.superseded_at.is_(None)),
        )
        .outerjoin(tried, tried.c.contact_id == contacts_t.c.id)
        .order_by(case_no, cases_t.c.id, contacts_t.c.position, contacts_t.c.id)
    )  # fmt: skip
    result = conn.execution_options(yield_per=BATCH_ROWS).execute(query)
    case: Any = None
    contacts: list[FrameContact] = []
    for row in result:
        if case is not None and row.id != case.id:
            yield _frame_row(case, contacts, timezone)
            contacts = []
        case = row
        if row.contact_id is not None:
            contacts.append(_contact(row, timezone))
    if case is not None:
        yield _frame_row(case, contacts, timezone)


def _contact(row: Any, timezone: tzinfo) -> FrameContact:
    verification, checked = verification_of(row)
    return FrameContact(
        e164=row.e164, raw=row.raw, extension=row.extension, kind=row.kind,
        validity=row.validity, source=row.source, verification=verification,
        checked_at=checked.astimezone(timezone) if checked else None,
    )  # fmt: skip


def verification_of(row: Any) -> tuple[str, datetime | None]:
    """A number's verification and when it was checked.

    What a call or a correction recorded stands. A number never verified either way is
    ``wrong_number`` when the network said it does not exist (空号) and nobody ever answered
    on it, and ``unreachable`` when a case it was tried for has finished and no person ever
    answered on it (no answer, busy, switched off, a machine): derived from the attempts
    each time, so it is never stale.
    """
    if row.verification != Verification.NOT_CALLED:
        return row.verification, row.checked_at
    if row.reached is None or row.reached:
        return row.verification, row.checked_at
    if row.dead:
        return Verification.WRONG_NUMBER.value, row.last_ended
    if row.finished:
        return Verification.UNREACHABLE.value, row.last_ended
    return row.verification, row.checked_at


def _frame_row(case: Any, contacts: list[FrameContact], timezone: tzinfo) -> FrameRow:
    def rank(contact: FrameContact) -> int:
        return 3 if contact.status == INVALID_NUMBER else _RANK.get(contact.verification, 1)

    return FrameRow(
        case_no=case.case_no, item_name=case.item_name, item_code=case.item_code,
        unit=case.unit, town=case.town, applicant_name=case.applicant_name,
        applicant_type=case.applicant_type, contact_name=case.contact_name,
        handled_at=case.handled_at.astimezone(timezone), channel=case.channel,
        # sorted() is stable: within a rank, the source's order (position) stays.
        contacts=tuple(sorted(contacts, key=rank)),
    )  # fmt: skip


# -- exporting --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    format: str
    cases: int
    contacts: int
    seconds: float


def exporter(name: str) -> Callable[[Iterable[FrameRow], IO[bytes]], None]:
    """The export function registered as ``name``, or a clear error naming those there are."""
    found = plugins.frame_exporters()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ExportError(f"no frame export format {name!r} is installed (installed: {known})")
    export: Callable[[Iterable[FrameRow], IO[bytes]], None] = found[name].value
    return export


def export_frame(
    engine: Engine,
    format_name: str,
    out: IO[bytes],
    timezone: tzinfo,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the whole frame to ``out`` with the exporter registered as ``format_name``.

    The rows come from one snapshot of the database. An exporter that does not take every
    row is an error: a frame missing cases must never look finished.
    """
    export = exporter(format_name)
    started = time.perf_counter()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            rows = frame_rows(conn, timezone, progress)
            export(rows, out)
    if rows.yielded != rows.cases:
        raise ExportError(
            f"the {format_name} exporter wrote {rows.yielded:,} of the frame's {rows.cases:,} "
            "cases; the file is incomplete"
        )
    return ExportResult(format_name, rows.cases, rows.contacts, time.perf_counter() - started)


# -- the built-in formats ----------------------------------------------------------------


def header(max_contacts: int) -> list[str]:
    """The built-in formats' columns: the case, then number, status and date per number."""
    columns = list(CASE_HEADER)
    for n in range(1, max_contacts + 1):
        columns += [f"联系电话（{n}）", f"核实状态（{n}）", f"核实日期（{n}）"]
    return columns


def cells(row: FrameRow, max_contacts: int) -> list[Any]:
    """A row's cells under ``header(max_contacts)``; dates and times as Python values."""
    values: list[Any] = [
        row.case_no, row.item_name, row.item_code, row.unit, row.town, row.applicant_name,
        APPLICANT_TYPES.get(row.applicant_type, row.applicant_type), row.contact_name,
        row.handled_at.replace(tzinfo=None),
        CHANNELS.get(row.channel, row.channel) if row.channel else None,
    ]  # fmt: skip
    for contact in row.contacts:
        checked = contact.checked_at.date() if contact.checked_at else None
        values += [contact.number, contact.status, checked]
    values += [None] * (3 * (max_contacts - len(row.contacts)))
    return values


def _laid_out(rows: Iterable[FrameRow]) -> tuple[Iterable[FrameRow], int]:
    """The rows and the widest case; an exporter called with a plain list works too."""
    if isinstance(rows, FrameRows):
        return rows, rows.max_contacts
    listed = list(rows)
    return listed, max((len(r.contacts) for r in listed), default=0)


def write_csv(rows: Iterable[FrameRow], out: IO[bytes]) -> None:
    """CSV in UTF-8 with a BOM, which Excel needs to read Chinese correctly."""
    rows, width = _laid_out(rows)
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(header(width))
        for row in rows:
            writer.writerow(["" if v is None else _csv_text(v) for v in cells(row, width)])
        text.flush()
    finally:
        text.detach()  # the caller owns ``out``


def _csv_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


#: Rows of one XLSX sheet, the header included (Excel's limit).
XLSX_SHEET_ROWS = 1_048_576


def write_xlsx(rows: Iterable[FrameRow], out: IO[bytes]) -> None:
    """An XLSX workbook written row by row (openpyxl's write-only mode), every cell a typed
    value: numbers and case numbers stay text, times and dates stay dates. A frame longer
    than a sheet continues on 样本框2, 样本框3 …, each with the header."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    rows, width = _laid_out(rows)
    book = Workbook(write_only=True)
    columns = header(width)
    sheets = 0
    sheet: Any = None
    used = XLSX_SHEET_ROWS

    def cell(value: Any) -> Any:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
            if value.startswith("="):
                # openpyxl would store it as a formula; a fact is text.
                text = WriteOnlyCell(sheet, value)
                text.data_type = "s"
                return text
            return value
        if isinstance(value, datetime):
            moment = WriteOnlyCell(sheet, value)
            moment.number_format = "yyyy-mm-dd hh:mm:ss"
            return moment
        if isinstance(value, date):
            day = WriteOnlyCell(sheet, value)
            day.number_format = "yyyy-mm-dd"
            return day
        return value

    for row in rows:
        if used >= XLSX_SHEET_ROWS:
            sheets += 1
            sheet = book.create_sheet("样本框" if sheets == 1 else f"样本框{sheets}")
            sheet.append(columns)
            used = 1
        sheet.append([cell(v) for v in cells(row, width)])
        used += 1
    if sheet is None:
        book.create_sheet("样本框").append(columns)
    book.save(out)
