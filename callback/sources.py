"""Read service-centre exports (CSV in any of their encodings, XLSX) row by row, and find
which column holds which fact."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from callback.errors import ImportFileError, MappingError
from callback.normalise import APPLICANT_TYPE_SYNONYMS, CHANNEL_SYNONYMS
from callback.vocabulary import ApplicantType, Channel

HEADER_SEARCH_ROWS = 20
ENCODING_SAMPLE = 1 << 20

# Each fact and the headers that name it, best first: when two columns name the same fact the
# earlier synonym wins (办结时间, the completion time, before 办理时间).
FIELDS: dict[str, tuple[str, ...]] = {
    "case_no": (
        "办件编号",
        "申报号",
        "办件号",
        "申报编号",
        "受理编号",
        "业务编号",
        "件号",
        "办件流水号",
        "流水号",
        "case number",
        "case no",
        "case id",
        "case",
    ),
    "item_name": ("事项名称", "办理事项", "事项", "服务事项", "item name", "item"),
    "item_code": ("事项编码", "事项代码", "基本编码", "实施编码", "item code"),
    "unit": (
        "实施部门",
        "办理部门",
        "受理部门",
        "实施主体",
        "办理单位",
        "部门",
        "单位",
        "unit",
        "department",
    ),
    "town": ("所属镇街", "镇街", "所属街道", "乡镇街道", "所属乡镇", "镇街名称", "town", "street"),
    "applicant_name": (
        "申请人",
        "申请人名称",
        "申请人姓名",
        "申请单位",
        "申报人",
        "applicant",
        "applicant name",
    ),
    "applicant_type": ("申请人类型", "申请人类别", "申请主体类型", "applicant type"),
    "contact_name": ("联系人", "联系人姓名", "contact", "contact name", "contact person"),
    "phone": (
        "联系电话",
        "手机号码",
        "手机",
        "手机号",
        "电话",
        "联系方式",
        "申请人电话",
        "申请人手机",
        "联系人电话",
        "联系人手机",
        "固定电话",
        "phone",
        "telephone",
        "mobile",
        "phone number",
    ),
    "handled_at": (
        "办结时间",
        "办理时间",
        "办结日期",
        "办理日期",
        "完成时间",
        "handled at",
        "handled",
        "completed at",
        "date",
    ),
    "channel": ("办理渠道", "申报渠道", "渠道", "申报方式", "办理方式", "channel"),
}
REQUIRED = ("case_no", "item_name", "unit", "handled_at")
MULTIPLE = frozenset({"phone"})
LABELS = {
    "case_no": "case number (办件编号)",
    "item_name": "item (事项名称)",
    "item_code": "item code (事项编码)",
    "unit": "unit (实施部门)",
    "town": "town (所属镇街)",
    "applicant_name": "applicant (申请人)",
    "applicant_type": "applicant type (申请人类型)",
    "contact_name": "contact person (联系人)",
    "phone": "phone (联系电话)",
    "handled_at": "handled at (办结时间)",
    "channel": "channel (办理渠道)",
}

_BRACKETS = re.compile(r"[(（\[【].*?[)）\]】]")
_NOISE = re.compile(r"[\s_\-*:：]+")


def header_key(text: object) -> str:
    """Normalise a header so that ``Case_No``, ``case no`` and ``办件编号（必填）*`` compare."""
    if text is None:
        return ""
    key = str(text).replace("\ufeff", "")
    key = _BRACKETS.sub("", key)
    return _NOISE.sub("", key).lower()


@dataclass
class Mapping:
    """What a ``--mapping`` file adds to the built-in synonyms."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=lambda: dict(CHANNEL_SYNONYMS))
    applicant_types: dict[str, str] = field(default_factory=lambda: dict(APPLICANT_TYPE_SYNONYMS))
    path: str | None = None


def load_mapping(path: str | Path | None) -> Mapping:
    """Read a TOML mapping file::

    [columns]          # fact = header, or a list of headers
    case_no = "流水号"
    phone = ["手机", "座机"]
    [channels]         # value in the file = window | online | mobile | nearby | mail
    "自助机" = "nearby"
    [applicant_types]  # value in the file = person | company
    "个体" = "company"
    """
    mapping = Mapping()
    if path is None:
        return mapping
    mapping.path = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    for key in data:
        if key not in ("columns", "channels", "applicant_types"):
            raise MappingError(
                f"{path}: unknown table [{key}] (use [columns], [channels], [applicant_types])"
            )
    for name, headers in data.get("columns", {}).items():
        if name not in FIELDS:
            raise MappingError(
                f"{path}: [columns] {name!r} is not a fact callback imports "
                f"(known: {', '.join(FIELDS)})"
            )
        if isinstance(headers, str):
            headers = [headers]
        if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
            raise MappingError(f"{path}: [columns] {name} must be a header or a list of headers")
        mapping.columns[name] = tuple(headers)
    for table, target, allowed in (
        ("channels", mapping.channels, {c.value for c in Channel}),
        ("applicant_types", mapping.applicant_types, {a.value for a in ApplicantType}),
    ):
        for word, code in data.get(table, {}).items():
            if code not in allowed:
                choices = ", ".join(sorted(allowed))
                raise MappingError(
                    f"{path}: [{table}] {word!r} = {code!r}: must be one of {choices}"
                )
            target[word.strip().lower()] = code
    return mapping


@dataclass
class Layout:
    """Where each fact is: column indexes in the row, and the header row's number."""

    header_row: int
    headers: list[str]
    columns: dict[str, list[int]]

    def describe(self) -> str:
        parts = []
        for name, indexes in self.columns.items():
            shown = ", ".join(self.headers[i] for i in indexes)
            parts.append(f"{shown} → {name}")
        return "; ".join(parts)


def find_layout(rows: list[tuple[int, list[Any]]], mapping: Mapping, path: str) -> Layout:
    """Find the header among the first rows (titles often sit above it) and map its columns."""
    synonyms: dict[str, tuple[int, str]] = {}
    for name, words in FIELDS.items():
        for rank, word in enumerate(mapping.columns.get(name, ()) + words):
            synonyms.setdefault(header_key(word), (rank, name))
    for number, cells in rows:
        found: dict[str, list[tuple[int, int]]] = {}
        for index, cell in enumerate(cells):
            hit = synonyms.get(header_key(cell))
            if hit is not None:
                found.setdefault(hit[1], []).append((hit[0], index))
        if len(found) < 3:
            continue
        missing = [name for name in REQUIRED if name not in found]
        headers = ["" if c is None else str(c).strip() for c in cells]
        if missing:
            names = "; ".join(f"{LABELS[m]}: one of {'、'.join(FIELDS[m][:4])}" for m in missing)
            present = "、".join(filter(None, headers))
            raise ImportFileError(
                path,
                f"the header has no column for {names} (columns found: {present}); "
                "name it in a --mapping file",
                row=number,
            )
        columns: dict[str, list[int]] = {}
        for name, hits in found.items():
            if name in MULTIPLE:
                columns[name] = [index for _rank, index in hits]
            else:
                columns[name] = [min(hits)[1]]
        return Layout(number, headers, columns)
    raise ImportFileError(
        path,
        f"no header row in the first {HEADER_SEARCH_ROWS} rows: expected columns such as "
        "办件编号, 事项名称, 实施部门, 联系电话, 办结时间 (or name yours in a --mapping file)",
    )


class Source:
    """An export opened for reading: its identity, its rows, and how far reading has got."""

    format: str
    encoding: str | None = None
    sheet: str | None = None

    def __init__(self, path: Path, checksum: bool = True) -> None:
        self.path = path
        self.name = str(path)
        self.size = path.stat().st_size
        self.sha256 = _sha256(path) if checksum else ""
        self._number = 0  # rows read so far, empty ones included

    def read(self, size: int) -> list[tuple[int, list[Any]]]:
        """Read up to ``size`` rows as ``(row number as a spreadsheet shows it, cells)``.

        Empty rows are skipped but counted; an empty list means the end.
        """
        while True:
            block = self._read_block(size)
            if not block:
                return []
            numbered = self._numbered(block)
            if numbered:
                return numbered

    def _read_block(self, size: int) -> list[list[Any]]:
        """The next ``size`` raw rows, empty ones included; fewer only at the end."""
        raise NotImplementedError

    def _filled(self, block: list[list[Any]]) -> list[bool]:
        return list(map(any, block))

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """Yield the rows one by one (for finding the header)."""
        while batch := self.read(1):
            yield batch[0]

    def batches(self, size: int) -> Iterator[list[tuple[int, list[Any]]]]:
        """Yield the remaining rows in lists of ``size``."""
        while batch := self.read(size):
            yield batch

    def _numbered(self, block: list[list[Any]]) -> list[tuple[int, list[Any]]]:
        filled = self._filled(block)
        start = self._number + 1
        self._number += len(block)
        numbered = list(zip(range(start, start + len(block)), block, strict=True))
        if False in filled:
            numbered = [pair for pair, full in zip(numbered, filled, strict=True) if full]
        return numbered

    @property
    def position(self) -> int:
        """How much of ``size`` has been read, for progress bars."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def is_workbook(path: Path) -> bool:
    """Whether open_source reads ``path`` as an XLSX workbook (by its name)."""
    return path.suffix.lower() in (".xlsx", ".xlsm")


def open_source(
    path: str | Path, encoding: str | None = None, sheet: str | None = None, checksum: bool = True
) -> Source:
    """Open a CSV or XLSX export; ``checksum`` computes its SHA-256 (a pass over the file)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(str(path), "file not found")
    suffix = path.suffix.lower()
    if is_workbook(path):
        return XlsxSource(path, sheet, checksum)
    if suffix == ".xls":
        raise ImportFileError(
            str(path), "old Excel .xls files are not read: save the sheet as .xlsx or CSV"
        )
    if sheet is not None:
        raise ImportFileError(str(path), "--sheet applies to workbooks, and this is a CSV file")
    return CsvSource(path, encoding, checksum)


class CsvSource(Source):
    format = "csv"

    def __init__(self, path: Path, encoding: str | None, checksum: bool = True) -> None:
        super().__init__(path, checksum)
        with path.open("rb") as raw:
            sample = raw.read(ENCODING_SAMPLE)
        if encoding is None:
            encoding = detect_encoding(sample, str(path))
        else:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ImportFileError(str(path), f"unknown encoding {encoding!r}") from None
        self.encoding = encoding
        self.delimiter = _delimiter(sample.decode(encoding, errors="ignore"))
        self._raw = path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding=encoding, newline="")
        self._reader = csv.reader(self._text, delimiter=self.delimiter)

    def _read_block(self, size: int) -> list[list[Any]]:
        # islice, map and zip keep the loop over rows in C: this runs a million times.
        try:
            return list(islice(self._reader, size))
        except UnicodeDecodeError as exc:
            raise _undecodable(self.path, self.encoding or "utf-8", exc) from None
        except csv.Error as exc:
            raise _broken(self.name, self._reader.line_num, exc) from None

    @property
    def position(self) -> int:
        return self.size if self._raw.closed else self._raw.tell()

    def close(self) -> None:
        self._raw.close()


class SegmentMisaligned(Exception):
    """A piece of a CSV file did not end where a record ends (see CsvSegment)."""

    def __init__(self, path: str, start: int, end: int) -> None:
        super().__init__(path, start, end)
        self.path, self.start, self.end = path, start, end

    def __str__(self) -> str:
        return f"{self.path}: bytes {self.start}-{self.end} do not end where a record ends"


class CsvSegment(Source):
    """The rows in bytes ``[start, end)`` of a CSV file, numbered as if the file began there.

    ``start`` must be where a record begins (0, or the ``end`` of a segment read before).
    Whether ``end`` is where one ends shows only in reading: the text is read with a line of a
    sentinel after it, and if that line does not come out as a record of its own, the segment
    ended inside a quoted field and SegmentMisaligned is raised once the rows are read. A
    segment is read whole into memory, so segments are kept to about a megabyte.
    """

    format = "csv"

    def __init__(self, path: Path, encoding: str, delimiter: str, start: int, end: int) -> None:
        super().__init__(path, checksum=False)
        self.encoding = encoding
        self.start, self.end = start, end
        with path.open("rb") as raw:
            raw.seek(start)
            data = raw.read(end - start)
        if start and codecs.lookup(encoding).name == "utf-8-sig":
            encoding = "utf-8"  # the byte order mark is only at the file's start
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise _undecodable(path, self.encoding, exc) from None
        if not text.endswith(("\n", "\r")):  # the file's last line may lack its line end
            text += "\n"
        self._reader = csv.reader(
            io.StringIO(text + _SENTINEL + "\n", newline=""), delimiter=delimiter
        )
        self._ended = False

    def _read_block(self, size: int) -> list[list[Any]]:
        if self._ended:
            return []
        try:
            block = list(islice(self._reader, size))
        except csv.Error as exc:
            line = _lines_before(self.path, self.start) + self._reader.line_num
            raise _broken(self.name, line, exc) from None
        if block and block[-1] == [_SENTINEL]:
            block.pop()
            self._ended = True
        elif len(block) < size:
            raise SegmentMisaligned(self.name, self.start, self.end)
        return block

    @property
    def records(self) -> int:
        """How many records (blank ones included) have been read."""
        return self._number

    @property
    def position(self) -> int:
        return self.end if self._ended else self.start


#: The last line of every segment's text; a record of anything else means a quoted field ran
#: on past the segment's end. Private-use characters: no export holds this.
_SENTINEL = "\ue000callback: end of segment\ue000"


def record_boundaries(path: Path, step: int, longest: int) -> list[int] | None:
    """Offsets about ``step`` bytes apart where a CSV file can be cut into CsvSegments.

    A cut goes just after a line feed with an even number of quote characters before it: there
    no quoted field is open, unless a quote stood inside an unquoted field (which CsvSegment
    notices). Returns None when no such place is found within ``longest`` bytes of the last cut.
    The last offset is the file's size. Only for encodings in which the bytes of a line feed and
    a quote are never part of another character (UTF-8, GB18030 and GBK, not UTF-16).
    """
    cuts: list[int] = []
    odd = 0  # the parity of the quotes before ``offset + at``
    offset = 0
    target = step
    with path.open("rb") as raw:
        while block := raw.read(1 << 20):
            end = offset + len(block)
            at = 0
            while target < end:
                newline = block.find(b"\n", max(target - offset, at))
                if newline < 0:
                    break
                odd ^= block.count(b'"', at, newline) & 1
                at = newline
                cut = offset + newline + 1
                if odd:
                    target = cut
                    if cut - (cuts[-1] if cuts else 0) > longest:
                        return None
                else:
                    cuts.append(cut)
                    target = cut + step
            odd ^= block.count(b'"', at) & 1
            offset = end
            if offset - (cuts[-1] if cuts else 0) > longest + step:
                return None
    if cuts and cuts[-1] == offset:
        cuts.pop()
    cuts.append(offset)
    return cuts


def _lines_before(path: Path, offset: int) -> int:
    """The line ends (CR, LF or CRLF) in the file before ``offset``: error messages only."""
    lines = 0
    last = b""
    with path.open("rb") as raw:
        while offset > 0 and (block := raw.read(min(1 << 20, offset))):
            offset -= len(block)
            lines += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if last == b"\r" and block.startswith(b"\n"):
                lines -= 1
            last = block[-1:]
    return lines


def detect_encoding(sample: bytes, path: str) -> str:
    """Tell UTF-8 (with or without BOM), UTF-16 and GB18030 apart by strict decoding.

    A statistical detector guesses among dozens of encodings and often calls short Chinese text
    Big5 or Shift-JIS; exports here come in exactly these, and strict decoding never guesses.
    GB18030 is a superset of GBK and GB2312, which Excel in China writes.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text" export
    for candidate in ("utf-8", "gb18030"):
        try:
            sample.decode(candidate)
            return candidate
        except UnicodeDecodeError as exc:
            # The sample may end inside a character; only what comes before counts.
            if exc.start >= len(sample) - 4 and len(sample) == ENCODING_SAMPLE:
                return candidate
    raise ImportFileError(path, "cannot tell the encoding (not UTF-8 or GB18030): pass --encoding")


def read_text(path: Path) -> str:
    """The text of a small CSV file as Excel or an editor saved it: UTF-8 (BOM or not), UTF-16
    or GBK/GB18030 (Excel in China), told apart as the case importer does; else a clear error."""
    if not path.is_file():
        raise ImportFileError(str(path), "file not found")
    data = path.read_bytes()
    try:
        encoding = detect_encoding(data, str(path))
    except ImportFileError:
        # detect_encoding's advice names the case importer's --encoding, which callers lack.
        raise ImportFileError(
            str(path), "cannot tell the encoding (not UTF-8 or GBK/GB18030): save it as CSV UTF-8"
        ) from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:  # a UTF-16 byte order mark, then no UTF-16
        raise ImportFileError(str(path), f"not readable as {encoding}: {exc.reason}") from None


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class XlsxSource(Source):
    format = "xlsx"

    def __init__(self, path: Path, sheet: str | None, checksum: bool = True) -> None:
        super().__init__(path, checksum)
        from openpyxl import load_workbook  # imported here: it costs 0.2 s and CSV needs none of it

        try:
            self._book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile, KeyError or its own errors
            raise ImportFileError(str(path), f"not a readable XLSX workbook ({exc})") from None
        if sheet is not None and sheet not in self._book.sheetnames:
            self.close()
            names = ", ".join(self._book.sheetnames)
            raise ImportFileError(str(path), f"no sheet named {sheet!r} (sheets: {names})")
        self.sheets = [sheet] if sheet is not None else list(self._book.sheetnames)
        self.use_sheet(self.sheets[0])

    def use_sheet(self, name: str) -> None:
        """Start reading ``name`` from its first row."""
        self.sheet = name
        worksheet = self._book[name]
        self._total = max(int(worksheet.max_row or 0), 1)
        self._rows = worksheet.iter_rows(values_only=True)
        self._number = 0

    def _read_block(self, size: int) -> list[list[Any]]:
        return [list(cells) for cells in islice(self._rows, size)]

    def _filled(self, block: list[list[Any]]) -> list[bool]:
        return [any(c is not None and c != "" for c in cells) for cells in block]

    @property
    def position(self) -> int:
        return int(self.size * min(self._number / self._total, 1.0))

    def close(self) -> None:
        self._book.close()


def _undecodable(path: Path, encoding: str, exc: UnicodeDecodeError) -> ImportFileError:
    """The error for bytes that are not in the file's encoding, naming their line."""
    return ImportFileError(
        str(path),
        f"line {_first_undecodable_line(path, encoding)}: bytes that are not {encoding} "
        f"({exc.reason}); the file mixes encodings or is in another one: pass --encoding",
    )


def _broken(name: str, line: int, exc: csv.Error) -> ImportFileError:
    return ImportFileError(name, f"near line {line}: broken CSV: {exc}")


def _first_undecodable_line(path: Path, encoding: str) -> int:
    """The line where decoding fails: the reader decodes ahead in blocks, so its own count
    would be off by a block. Only runs when the import has already failed."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 1
    with path.open("rb") as raw:
        for block in raw:
            try:
                lines += decoder.decode(block).count("\n")
            except UnicodeDecodeError:
                return lines
    return lines


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
