"""Read one row of an export into a CaseRecord, noting each problem with its row and field.

This is the importer's hot loop: a million rows should take seconds. Units, items, towns,
channels and applicant types repeat thousands of times in a file, so each distinct cell value
is normalised once and remembered for the rest of the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from callback.config import Settings
from callback.normalise import (
    LocalTimes,
    ValueProblem,
    applicant_type,
    case_number,
    channel_code,
    clean_text,
)
from callback.phones import Phone, PhoneParser
from callback.records import KEPT, REJECTED, CaseRecord, Problem
from callback.sources import LABELS, Layout, Mapping
from callback.vocabulary import Validity

_VALID = Validity.VALID.value
_PLAIN_CASE_NO = re.compile(r"[0-9A-Za-z_\-/.]{1,64}")
_MEMO_LIMIT = 50_000


# What normalising a low-cardinality cell gave: its value and, if it was refused, why.
Outcome = tuple[Any, str | None]


class RowReader:
    """Turn the cells of one row into a CaseRecord, noting every problem on the way."""

    def __init__(self, layout: Layout, mapping: Mapping, settings: Settings, now: datetime):
        cols = layout.columns
        self.width = len(layout.headers)
        self.headers = layout.headers
        self.mapping = mapping
        self.times = LocalTimes(settings.tz, now)
        self.phones = PhoneParser(settings.default_area_code)
        self.phone_columns = cols.get("phone", [])
        self.index = {name: indexes[0] for name, indexes in cols.items()}
        # A column the file lacks reads as this index, which always holds None.
        self._none = self.width
        self.i_case, self.i_item, self.i_code, self.i_unit, self.i_town = (
            self.index.get(name, self._none)
            for name in ("case_no", "item_name", "item_code", "unit", "town")
        )
        self.i_applicant, self.i_type, self.i_contact, self.i_handled, self.i_channel = (
            self.index.get(name, self._none)
            for name in (
                "applicant_name",
                "applicant_type",
                "contact_name",
                "handled_at",
                "channel",
            )
        )
        self._memos: dict[str, dict[Any, Outcome]] = {
            name: {} for name in ("item", "code", "unit", "town", "type", "channel")
        }
        self.problems: list[Problem] = []
        self.rejected = 0
        self.without_valid_phone = 0

    def header(self, name: str, index: int | None = None) -> str:
        """The column's header as the file spells it, to name the field in the rejects file."""
        index = self.index.get(name) if index is None else index
        if index is not None and index < self.width and self.headers[index]:
            return self.headers[index]
        return LABELS[name]

    def _memo(self, name: str, raw: Any, compute: Callable[[Any], Outcome]) -> Outcome:
        memo = self._memos[name]
        try:
            return memo[raw]
        except KeyError:
            outcome = compute(raw)
            if len(memo) < _MEMO_LIMIT:
                memo[raw] = outcome
            return outcome
        except TypeError:  # an unhashable cell cannot happen with csv or openpyxl, but be safe
            return compute(raw)

    def read(self, number: int, cells: list[Any]) -> CaseRecord | None:
        """Return the row's record, or None when the row is rejected (problems are noted)."""
        missing = self.width + 1 - len(cells)
        if missing > 0:
            cells.extend([None] * missing)
        refused: list[tuple[str, str]] = []

        raw = cells[self.i_case]
        case_no: str | None
        if type(raw) is str and _PLAIN_CASE_NO.fullmatch(raw):
            case_no = raw
        else:
            try:
                case_no = case_number(raw)
            except ValueProblem as exc:
                case_no = None
                refused.append(("case_no", f"case number {exc}"))
        item, why = self._memo("item", cells[self.i_item], _item)
        if why:
            refused.append(("item_name", why))
        unit, why = self._memo("unit", cells[self.i_unit], normalise_unit)
        if why:
            refused.append(("unit", why))
        handled: str | None = None
        try:
            handled = self.times.utc_text(cells[self.i_handled])
        except ValueProblem as exc:
            refused.append(("handled_at", f"handled-at date {exc}"))
        if refused:
            for name, reason in refused:
                value = cells[self.index[name]] if name in self.index else None
                self._note(number, case_no, name, value, reason, REJECTED)
            self.rejected += 1
            return None

        applicant = clean_text(cells[self.i_applicant])
        kind, why = self._memo("type", cells[self.i_type], self.given_applicant_type)
        if kind is None:
            kind = applicant_type(None, applicant)
            if why:
                why = f"{why}; guessed {kind} from the name"
                self._note(number, case_no, "applicant_type", cells[self.i_type], why, KEPT)
        channel, why = self._memo("channel", cells[self.i_channel], self.channel)
        if why:
            self._note(
                number, case_no, "channel", cells[self.i_channel], why + "; left blank", KEPT
            )

        phones = self._phones(number, case_no, cells)
        assert case_no is not None and handled is not None
        return CaseRecord(
            number,
            case_no,
            item,
            self._memo("code", cells[self.i_code], _plain)[0],
            unit,
            self._memo("town", cells[self.i_town], _plain)[0],
            applicant,
            kind,
            clean_text(cells[self.i_contact]),
            handled,
            channel,
            phones,
        )

    def _phones(self, number: int, case_no: str | None, cells: list[Any]) -> tuple[Phone, ...]:
        found: list[Phone] = []
        for index in self.phone_columns:
            raw = cells[index]
            if raw is None or raw == "":
                continue
            cell = raw if type(raw) is str else clean_text(raw)
            for phone in self.phones.parse_cell(cell):
                if found and phone.e164 is not None and any(p.e164 == phone.e164 for p in found):
                    continue
                found.append(phone)
                if phone.validity != _VALID:
                    reason = f"{phone.validity} number: {phone.reason}; kept on file, never dialled"
                    self._note(number, case_no, "phone", phone.raw, reason, KEPT, index)
        if not any(p.validity == _VALID for p in found):
            self.without_valid_phone += 1
            if not found:
                reason = "no telephone number; the case cannot be called back"
                self._note(number, case_no, "phone", "", reason, KEPT)
        return tuple(found)

    def _note(
        self,
        number: int,
        case_no: str | None,
        name: str,
        value: Any,
        reason: str,
        action: str,
        index: int | None = None,
    ) -> None:
        shown = "" if value is None else str(value)
        self.problems.append(
            Problem(number, case_no, self.header(name, index), shown, reason, action)
        )

    def given_applicant_type(self, raw: Any) -> Outcome:
        """The applicant type a cell gives (None when blank: judge by the name)."""
        if clean_text(raw) is None:
            return None, None
        try:
            return applicant_type(raw, None, self.mapping.applicant_types), None
        except ValueProblem as exc:
            return None, str(exc)

    def channel(self, raw: Any) -> Outcome:
        try:
            return channel_code(raw, self.mapping.channels), None
        except ValueProblem as exc:
            return None, str(exc)


def _plain(raw: Any) -> Outcome:
    return clean_text(raw), None


def _item(raw: Any) -> Outcome:
    item = clean_text(raw)
    if item is None:
        return None, "item name missing"
    if len(item) > 300:
        return None, "item name longer than 300 characters"
    return item, None


def normalise_unit(raw: Any) -> Outcome:
    """A unit's name as the frame keeps it, or why the cell cannot name one."""
    unit = clean_text(raw)
    if unit is None:
        return None, "unit missing"
    if len(unit) > 200:
        return None, "unit name longer than 200 characters"
    # A stray space inside a Chinese name would otherwise make a second unit of the same name.
    if " " in unit and not unit.isascii():
        unit = re.sub(r"(?<=[^\x00-\x7f]) (?=[^\x00-\x7f])", "", unit)
    return unit, None
