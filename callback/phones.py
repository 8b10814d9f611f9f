"""Telephone numbers as people type them, normalised to E.164 with ``phonenumbers``.

Service-centre exports hold numbers typed by window clerks and applicants: full-width digits,
spaces and dashes, ``+86`` or ``0086`` in front, landlines with or without their area code,
extensions, several numbers in one cell and placeholders such as ``13800000000``.

``phonenumbers`` decides every question of validity and type. It handles about 37,000 numbers
a second, which would make it most of the cost of a million-row import, so the two shapes that
make up almost every cell (an 11-digit mobile, a landline with its area code) take a fast path:
the same national-number patterns, read from ``phonenumbers``' own metadata, compiled once and
applied in the same order of types that ``phonenumbers.number_type`` uses. Anything else, and
anything the fast path is unsure of, goes through ``phonenumbers`` itself. The tests compare
the two paths on every shape.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from callback.vocabulary import PhoneKind, Validity

REGION = "CN"
COUNTRY_CODE = "+86"
#: China's emergency and rescue numbers beyond phonenumbers' list (110, 119, 120): traffic
#: police, the international emergency number, Beijing's ambulance, SMS police, forest fire
#: and sea rescue. None is ever a hotline to spot-check.
EMERGENCY = frozenset({"110", "112", "119", "120", "122", "999", "12110", "12119", "12395"})


class Phone(NamedTuple):
    """One number found in a cell. ``e164`` is None unless the number is valid."""

    raw: str
    e164: str | None
    kind: str | None
    extension: str | None
    validity: str
    reason: str | None = None


# Separators between several numbers in one cell; NFKC has already made ，；／｜ ASCII.
_SEPARATORS = re.compile(r"\s*(?:[/,;、|\n]|或|及)\s*")
_EXTENSION = re.compile(r"\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})\s*$", re.IGNORECASE)
_TRAILING_EXTENSION = re.compile(r"^(.*\d)\s*-\s*(\d{1,5})$")
_KEEP = re.compile(r"[^\d+]", re.ASCII)
_MOBILE_SHAPE = re.compile(r"1\d{10}")
_FULLWIDTH = re.compile(r"[^\x00-\x7f]")

_PHONENUMBERS_KIND = {
    PhoneNumberType.MOBILE: PhoneKind.MOBILE.value,
    PhoneNumberType.FIXED_LINE: PhoneKind.LANDLINE.value,
    # Only ambiguous where a country shares one pattern for both; not the case in China.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.LANDLINE.value,
}
_OTHER_KIND = PhoneKind.OTHER.value
_MOBILE, _LANDLINE = PhoneKind.MOBILE.value, PhoneKind.LANDLINE.value
_VALID = Validity.VALID.value


@dataclass(frozen=True)
class _Desc:
    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, national: str) -> bool:
        return len(national) in self.lengths and self.pattern.fullmatch(national) is not None


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    pattern = re.compile(desc.national_number_pattern, re.ASCII)
    return _Desc(frozenset(desc.possible_length or ()), pattern)


class PhoneParser:
    """Find and normalise the telephone numbers in a cell of an export."""

    def __init__(self, default_area_code: str = "0571") -> None:
        self.default_area_code = default_area_code
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(REGION)
        if metadata is None:  # pragma: no cover - phonenumbers without China
            raise RuntimeError("phonenumbers has no metadata for China")
        general = _desc(metadata.general_desc)
        fixed, mobile = _desc(metadata.fixed_line), _desc(metadata.mobile)
        if general is None or fixed is None or mobile is None:  # pragma: no cover - metadata bug
            raise RuntimeError("phonenumbers has no Chinese fixed-line or mobile patterns")
        self._general, self._fixed, self._mobile = general, fixed, mobile
        # number_type() tries these before fixed-line and mobile; a number matching any of them
        # is left to phonenumbers.
        specials = (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
        self._specials = [d for d in map(_desc, specials) if d is not None]
        # One pattern per common shape that accepts only what number_type() would call a plain
        # mobile or fixed-line number; what it refuses is decided by phonenumbers itself.
        others = [d.pattern.pattern for d in self._specials]
        self._fast_mobile = _exclusive(general, mobile, [fixed.pattern.pattern, *others])
        self._fast_fixed = _exclusive(general, fixed, [mobile.pattern.pattern, *others])
        self._fixed_lengths = fixed.lengths & general.lengths
        if 11 not in mobile.lengths:  # pragma: no cover - metadata change
            raise RuntimeError("phonenumbers no longer knows Chinese mobiles as 11 digits")
        #: fullmatch and not in FAKE_MOBILES ⇔ parse_cell(text) is
        #: [Phone(text, "+86" + text, mobile, valid)]: an 11-digit mobile that is neither
        #: special nor fake. Split in two because a set lookup decides "fake" four times
        #: faster than a regex; both work on whole columns at C speed.
        self.mobile_number = re.compile(rf"(?=1\d{{10}}$){self._fast_mobile.pattern}", re.ASCII)
        #: fullmatch ⇔ a landline written as digits with its area code (dashes removed), that
        #: parse_cell gives as a valid landline without extension.
        lengths = "|".join(rf"\d{{{n}}}" for n in sorted(self._fixed_lengths))
        self.clean_landline = re.compile(
            rf"(?!{_FAKE_LOOKAHEAD})0(?=(?:{lengths})$){self._fast_fixed.pattern}", re.ASCII
        )

    def parse_cell(self, text: str | None) -> list[Phone]:
        """Return every number in ``text``, valid or not, without duplicates, in order."""
        if not text:
            return []
        if len(text) == 11 and text.isascii() and text.isdigit():
            phone = self._fast(text, text, None)
            if phone is not None:
                return [phone]
        cleaned = unicodedata.normalize("NFKC", text) if _FULLWIDTH.search(text) else text
        cleaned = cleaned.strip()
        if not cleaned:
            return []
        phones: list[Phone] = []
        seen: set[str] = set()
        for part in _split(cleaned):
            phone = self.parse_one(part)
            key = phone.e164 or phone.raw
            if key not in seen:
                seen.add(key)
                phones.append(phone)
        return phones

    def parse_one(self, part: str) -> Phone:
        """Normalise one number (which may carry an extension)."""
        raw = part.strip()
        body, extension = raw, None
        match = _EXTENSION.search(body)
        if match:
            body, extension = body[: match.start()], match.group(1)
        national = self._complete(_national(_KEEP.sub("", body)))
        if national is None:
            return Phone(raw, None, None, extension, Validity.INVALID.value, "not a number")
        if extension is None and not self._looks_whole(national):
            trailing = _TRAILING_EXTENSION.match(body)
            if trailing:
                shorter = self._complete(_national(_KEEP.sub("", trailing.group(1))))
                if shorter is not None and self._looks_whole(shorter):
                    national, extension = shorter, trailing.group(2)
        fake = _fake_reason(national)
        if fake is not None:
            return Phone(raw, None, None, extension, Validity.FAKE.value, fake)
        fast = self._fast(raw, national, extension)
        if fast is not None:
            return fast
        return _slow(raw, national, extension)

    def parse_published(self, text: str) -> Phone:
        """One number as a unit publishes it for the public to call (a hotline).

        Anything ``parse_one`` finds valid (a landline, a mobile, a 400 or 95xxx line), or a
        short service number (12345, 12366, 96xxx) written with or without its city's area
        code: it becomes the area code and the number (12345 → +8657112345), which is what
        dialling 0571 12345 reaches from anywhere in China. An extension is kept. Emergency
        numbers (110, 119, 120, 122) are refused, with an area code or without.
        """
        cleaned = unicodedata.normalize("NFKC", text).strip()
        parts = _split(cleaned)
        if len(parts) > 1:
            reason = "more than one number: list each on its own"
            return Phone(cleaned, None, None, None, Validity.INVALID.value, reason)
        # The one number, as parse_cell reads it: a stray separator around it is no part of it.
        cleaned = parts[0] if parts else cleaned
        body, extension = cleaned, None
        match = _EXTENSION.search(body)
        if match:
            body, extension = body[: match.start()], match.group(1)
        area, short = self._area_split(_national(_KEEP.sub("", body)) or "")
        if short in EMERGENCY or (short and shortnumberinfo.is_emergency_number(short, REGION)):
            reason = "an emergency number, which callback never calls"
            return Phone(cleaned, None, None, extension, Validity.INVALID.value, reason)
        phone = self.parse_one(cleaned)
        if phone.e164 is not None or area is None or not _is_short_service(short):
            return phone
        return Phone(cleaned, COUNTRY_CODE + area[1:] + short, _OTHER_KIND, extension, _VALID)

    def _area_split(self, digits: str) -> tuple[str | None, str]:
        """(area code, the rest) of digits that may begin with one; the default area code
        when they do not, None when what they begin with is no area code."""
        if not digits.startswith("0"):
            return self.default_area_code, digits
        # 010 and 020-029 are three digits long, every other area code four.
        size = 3 if digits[1:2] in ("1", "2") else 4
        area, rest = digits[:size], digits[size:]
        # A real area code is one a landline can be behind (0000 is not; 0999, Yining, is).
        landlines = (area + "6" + "2" * n for n in (6, 7))
        if any(self._fixed.matches(n[1:]) and self._general.matches(n[1:]) for n in landlines):
            return area, rest
        return None, rest

    def _complete(self, national: str | None) -> str | None:
        """Put the default area code in front of a local landline typed without it."""
        if national is not None and 7 <= len(national) <= 8 and national[0] in "23456789":
            return self.default_area_code + national
        return national

    def _looks_whole(self, national: str) -> bool:
        return self._general.matches(national[1:] if national.startswith("0") else national)

    def _fast(self, raw: str, national: str, extension: str | None) -> Phone | None:
        """Classify the common shapes from the compiled metadata, or return None to defer."""
        if len(national) == 11 and national[0] == "1":
            if self.mobile_number.fullmatch(national) and national not in FAKE_MOBILES:
                return Phone(raw, COUNTRY_CODE + national, _MOBILE, extension, _VALID)
        elif national[:1] == "0" and self.clean_landline.fullmatch(national):
            return Phone(raw, COUNTRY_CODE + national[1:], _LANDLINE, extension, _VALID)
        return None


def _is_short_service(digits: str) -> bool:
    """True for a short number of a Chinese service (12345, 12366, 96345, 95588)."""
    if not 3 <= len(digits) <= 6 or not digits.isdigit() or digits.startswith("0"):
        return False
    try:
        number = phonenumbers.parse(digits, REGION)
    except phonenumbers.NumberParseException:
        return False
    return bool(shortnumberinfo.is_valid_short_number_for_region(number, REGION))


def _exclusive(general: _Desc, wanted: _Desc, excluded: list[str]) -> re.Pattern[str]:
    """Match what ``wanted`` and ``general`` match and none of ``excluded`` does."""
    return re.compile(
        rf"(?=(?:{general.pattern.pattern})$)(?!(?:{'|'.join(excluded)})$)(?:{wanted.pattern.pattern})",
        re.ASCII,
    )


def _split(text: str) -> list[str]:
    parts = [p for p in _SEPARATORS.split(text) if p]
    result: list[str] = []
    for part in parts:
        tokens = part.split()
        # "13812345678 13987654321" is two numbers; "0571 8765 4321" is one, and so is
        # "0571-8765 4321转8001" (an extension is no part of the number's length).
        if len(tokens) > 1 and all(len(_KEEP.sub("", _EXTENSION.sub("", t))) >= 7 for t in tokens):
            result.extend(tokens)
        else:
            result.append(part)
    return result


def _national(digits: str) -> str | None:
    """Strip an international prefix; return the national form (trunk 0 kept for landlines)."""
    if digits.startswith("+"):
        if not digits.startswith("+86"):
            return digits  # a foreign number: phonenumbers will say it is not Chinese
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    else:
        return digits or None
    if not digits:
        return None
    # After +86 a landline is written without its trunk 0: +86 571 8765 4321.
    return digits if digits.startswith(("1", "0")) else "0" + digits


_PLACEHOLDER_TAILS = frozenset({"00000000", "12345678"})
_ASCENDING = "0123456789012345"


def _fake_lookahead() -> str:
    """What _fake_reason calls fake, as a regex for numbers of 6 to 12 digits."""
    runs = {_ASCENDING[i : i + n] for n in range(5, 13) for i in range(len(_ASCENDING) - n + 1)}
    alternatives = [
        r"\d{0,4}(\d)\1{7}$",  # the last eight digits the same (all the same, too)
        r"1\d\d(?:" + "|".join(sorted(_PLACEHOLDER_TAILS)) + ")$",
        r"\d?(?:" + "|".join(sorted(runs)) + ")$",
    ]
    return "|".join(f"(?:{a})" for a in alternatives)


_FAKE_LOOKAHEAD = _fake_lookahead()


def _fake_mobiles() -> frozenset[str]:
    """Every 11-digit number starting with 1 that _fake_reason calls fake (about 1,100)."""
    tails = {d * 8 for d in "0123456789"} | _PLACEHOLDER_TAILS
    found = {f"1{a}{b}{tail}" for a in "0123456789" for b in "0123456789" for tail in tails}
    runs = {_ASCENDING[i : i + 11] for i in range(len(_ASCENDING) - 10)}
    runs |= {d + _ASCENDING[i : i + 10] for d in "0123456789" for i in range(len(_ASCENDING) - 9)}
    return frozenset(found | {r for r in runs if r.startswith("1")})


#: Fake-looking mobiles, for a set lookup instead of a regex on the hot path.
FAKE_MOBILES = _fake_mobiles()


def _same_digit(digits: str) -> bool:
    return len(set(digits)) == 1


def _fake_reason(national: str) -> str | None:
    digits = national.lstrip("+")
    if len(digits) >= 5 and _same_digit(digits):
        return "every digit is the same"
    if len(digits) >= 6 and (digits in _ASCENDING or digits[1:] in _ASCENDING):
        return "a run of consecutive digits"
    if _MOBILE_SHAPE.fullmatch(digits) and digits[3:] in _PLACEHOLDER_TAILS:
        return "a placeholder mobile number"
    if len(digits) > 4 and _same_digit(digits[-8:]) and len(digits) - 8 <= 4:
        return "every digit after the prefix is the same"
    return None


def _slow(raw: str, national: str, extension: str | None) -> Phone:
    try:
        number = phonenumbers.parse(national, REGION)
    except phonenumbers.NumberParseException as exc:
        return Phone(raw, None, None, extension, Validity.INVALID.value, _parse_reason(exc))
    if number.extension and extension is None:
        extension = number.extension
    if number.country_code != 86:
        # Callbacks dial only Chinese numbers; a foreign one stays on file, unused.
        reason = f"not a Chinese telephone number (country code +{number.country_code})"
        return Phone(raw, None, None, extension, Validity.INVALID.value, reason)
    if not phonenumbers.is_valid_number(number):
        reason = "not a valid Chinese telephone number"
        if len(national) < 7:
            reason = "too short for a telephone number"
        elif len(national) > 12:
            reason = "too long for a telephone number"
        return Phone(raw, None, None, extension, Validity.INVALID.value, reason)
    kind = _PHONENUMBERS_KIND.get(phonenumbers.number_type(number), _OTHER_KIND)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(raw, e164, kind, extension, Validity.VALID.value)


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    if exc.error_type == phonenumbers.NumberParseException.TOO_SHORT_NSN:
        return "too short for a telephone number"
    if exc.error_type == phonenumbers.NumberParseException.TOO_LONG:
        return "too long for a telephone number"
    return "not a telephone number"


def mask(e164_or_raw: str | None) -> str:
    """Mask a number for screens and logs that do not need it: +8613812345678 → 138****5678."""
    if not e164_or_raw:
        return ""
    digits = _KEEP.sub("", e164_or_raw)
    if digits.startswith("+86"):
        digits = digits[3:]
        if not digits.startswith("1"):
            digits = "0" + digits
    digits = digits.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if len(digits) >= 10 else 0
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]
