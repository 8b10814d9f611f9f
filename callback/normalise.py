"""Turn the values of a service-centre export into the frame's facts, or say why not."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, tzinfo

from callback.vocabulary import ApplicantType, Channel


class ValueProblem(ValueError):
    """A value that cannot be used; the message is the reason shown in the rejects file."""


_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:\s*T?\s*(\d{1,2})\s*[:：时点]\s*(\d{1,2})\s*分?(?:\s*[:：]?\s*(\d{1,2})(?:\.\d+)?\s*秒?)?)?\s*"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Excel's day numbers for 1954 and 2119: a plain number outside them is not a date.
_EXCEL_SERIAL_RANGE = (20_000, 80_000)
_EXCEL_DAY_ZERO = datetime(1899, 12, 30)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def parse_datetime(value: object, zone: tzinfo, now: datetime) -> datetime:
    """Read a local date and time as exports write them and return it in UTC.

    Accepted: datetime cells of a workbook, Excel day numbers (43254.58), ``2018-06-03``,
    ``2018/6/3 14:05``, ``2018.06.03``, ``2018年6月3日`` and ``2018年6月3日 14时05分``.
    A date only means midnight. Times in the future (beyond a day's grace) are refused.
    """
    if isinstance(value, datetime):
        local = value
    elif isinstance(value, date):
        local = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        local = _from_serial(float(value))
    else:
        text = str(value).strip() if value is not None else ""
        if not text:
            raise ValueProblem("missing")
        local = _from_text(text)
    result = local.replace(tzinfo=zone) if local.tzinfo is None else local
    result = result.astimezone(UTC)
    if result < EARLIEST:
        raise ValueProblem(f"{_show(value)} is before 1990")
    if result > now + timedelta(days=1):
        raise ValueProblem(f"{_show(value)} is in the future")
    return result


def _from_text(text: str) -> datetime:
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # 2018-6-3 and friends go through the pattern below
    match = _DATE.fullmatch(text)
    if match:
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise ValueProblem(f"{text!r} is not a real date and time ({exc})") from None
    if _NUMBER.fullmatch(text):
        return _from_serial(float(text))
    raise ValueProblem(f"{text!r} is not a date")


def _from_serial(serial: float) -> datetime:
    """The local time an Excel day number stands for, to the second Excel displays.

    Day 0 is 1899-12-30 in Excel's 1900 date system (the one Chinese exports use); in the
    range accepted here Excel's 1900 leap-day bug no longer counts. The tests compare this with
    openpyxl's from_excel, which this was; importing openpyxl cost each of the import's reader
    processes a tenth of a second the first time a CSV file held a day number.
    """
    low, high = _EXCEL_SERIAL_RANGE
    if not low <= serial <= high:
        raise ValueProblem(f"{serial:g} is not an Excel date number")
    day, fraction = divmod(serial, 1)
    milliseconds = round(fraction * 86_400_000)
    # Excel stores fractions of a day; round to the second it displayed.
    return _EXCEL_DAY_ZERO + timedelta(days=day, seconds=(milliseconds + 500) // 1000)


def _show(value: object) -> str:
    return repr(value.isoformat(" ")) if isinstance(value, datetime) else repr(str(value))


_CHANNEL_WORDS: dict[Channel, tuple[str, ...]] = {
    Channel.WINDOW: (
        "窗口",
        "窗口办理",
        "窗口受理",
        "现场",
        "现场办理",
        "大厅",
        "线下",
        "window",
        "counter",
        "offline",
    ),
    Channel.ONLINE: (
        "网上",
        "网上办理",
        "网上申报",
        "网办",
        "网厅",
        "浙江政务服务网",
        "政务服务网",
        "pc",
        "pc端",
        "电脑端",
        "online",
        "web",
        "internet",
    ),
    Channel.MOBILE: (
        "掌上",
        "掌上办",
        "掌上办理",
        "浙里办",
        "app",
        "手机",
        "手机端",
        "移动端",
        "移动",
        "微信",
        "支付宝",
        "小程序",
        "mobile",
    ),
    Channel.NEARBY: (
        "就近",
        "就近办",
        "就近办理",
        "代办",
        "村社代办",
        "代办点",
        "自助",
        "自助终端",
        "自助机",
        "nearby",
        "self-service",
    ),
    Channel.MAIL: ("邮寄", "快递", "寄递", "邮政", "mail", "post"),
}
CHANNEL_SYNONYMS: dict[str, str] = {
    word: channel.value for channel, words in _CHANNEL_WORDS.items() for word in words
}
CHANNEL_SYNONYMS.update({channel.value: channel.value for channel in Channel})

_APPLICANT_TYPE_WORDS: dict[ApplicantType, tuple[str, ...]] = {
    ApplicantType.PERSON: ("个人", "自然人", "居民", "群众", "person", "individual", "citizen"),
    ApplicantType.COMPANY: (
        "法人",
        "企业",
        "单位",
        "公司",
        "组织",
        "社会组织",
        "个体工商户",
        "个体户",
        "company",
        "legal person",
        "organisation",
        "organization",
        "business",
    ),
}
APPLICANT_TYPE_SYNONYMS: dict[str, str] = {
    word: kind.value for kind, words in _APPLICANT_TYPE_WORDS.items() for word in words
}

# A name with any of these words is an organisation. Person names (个人) are two to four
# characters, so the one-character endings (…局, …店) count only on longer names: 王建社 is a man.
_ORGANISATION = re.compile(
    "公司|合作社|事务所|集团|协会|学会|商会|学校|小学|中学|大学|幼儿园|医院|诊所|银行|工作室|"
    "研究院|研究所|基金会|经营部|门市部|商行|超市|酒店|宾馆|餐厅|饭店|委员会|村委|居委|社区|中心"
)
_ORGANISATION_ENDING = re.compile(".{4,}[厂店局馆站部所院社行场]$")


def channel_code(text: str | None, synonyms: dict[str, str] = CHANNEL_SYNONYMS) -> str | None:
    """Map 窗口/网上/掌上/就近/邮寄 (and the words around them) to a channel code."""
    if text is None:
        return None
    key = clean_text(text)
    if key is None:
        return None
    code = synonyms.get(key.lower()) or synonyms.get(key.lower().removesuffix("办理"))
    if code is None:
        known = "、".join(w for words in _CHANNEL_WORDS.values() for w in words[:1])
        raise ValueProblem(
            f"unknown channel {key!r} (known: {known}; map others under [channels] "
            "in a --mapping file)"
        )
    return code


def applicant_type(
    given: str | None, name: str | None, synonyms: dict[str, str] = APPLICANT_TYPE_SYNONYMS
) -> str:
    """Return person or company: from the export's own column, else from the name."""
    if given is not None and (key := clean_text(given)) is not None:
        code = synonyms.get(key.lower())
        if code is None:
            raise ValueProblem(f"unknown applicant type {key!r} (known: 个人, 法人, 企业)")
        return code
    if name and (_ORGANISATION.search(name) or _ORGANISATION_ENDING.match(name)):
        return ApplicantType.COMPANY.value
    return ApplicantType.PERSON.value


_SPACES = re.compile(r"\s+")
_SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e\+\d+", re.IGNORECASE)


def clean_text(value: object) -> str | None:
    """Trim a cell; collapse inner runs of spaces; empty becomes None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _cell_text(value)
    text = text.strip()
    if not text:
        return None
    if "  " in text or "\t" in text or "\n" in text or "\u3000" in text:
        text = _SPACES.sub(" ", text.replace("\u3000", " ")).strip()
    return text or None


def case_number(value: object) -> str:
    """Normalise a case number (办件编号); refuse one that Excel has already mangled."""
    text = clean_text(value)
    if text is None:
        raise ValueProblem("missing")
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if _SCIENTIFIC.fullmatch(text):
        raise ValueProblem(
            f"{text!r} was turned into a rounded number by Excel; export the column as text"
        )
    text = text.replace(" ", "")
    if len(text) > 64:
        raise ValueProblem("longer than 64 characters")
    return text


def _cell_text(value: object) -> str:
    # Workbooks give numbers for numeric-looking cells: 13812345678.0 is the phone 13812345678.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class LocalTimes:
    """Read handled-at times into canonical UTC text, ``YYYY-MM-DD HH:MM:SS``, fast.

    Nearly every cell of a million-row export has the shape ``2018-06-03 14:05:06``. Its
    local hour is converted once (``2018-06-03 14`` → ``2018-06-03 06``) and remembered;
    minutes and seconds carry over unchanged whenever the zone's offset is whole hours, as
    Asia/Shanghai's +08:00 has been since 1991. Any other shape goes through
    :func:`parse_datetime`, whose answer is the same.
    """

    def __init__(self, zone: tzinfo, now: datetime) -> None:
        self.zone = zone
        self.now = now
        self.latest = utc_text(now + timedelta(days=1))
        self.earliest = utc_text(EARLIEST)
        self.hours: dict[str, str | None] = {}

    def utc_text(self, value: object) -> str:
        """Return the value as UTC text; raise ValueProblem as parse_datetime does."""
        if type(value) is str and (len(value) == 19 or len(value) == 16):
            head = value[:13]
            utc_head = self.hours.get(head, "")
            if utc_head == "":
                utc_head = self.utc_hour(head)
            tail = value[13:]
            if (
                utc_head is not None
                and tail[0] == ":"
                and tail.isascii()
                and tail[1:3].isdigit()
                and tail[1:3] <= "59"
                and (len(tail) == 3 or (tail[3] == ":" and tail[4:].isdigit() and tail[4:] <= "59"))
            ):
                text = utc_head + tail if len(tail) == 6 else utc_head + tail + ":00"
                if self.earliest <= text <= self.latest:
                    return text
        return utc_text(parse_datetime(value, self.zone, self.now))

    def utc_hour(self, head: str) -> str | None:
        """``YYYY-MM-DD HH`` local to UTC, or None if it is not that or not a whole-hour shift.

        Answers are remembered in ``hours``.
        """
        if not head.isascii() or head[4:5] != "-" or head[7:8] != "-" or head[10:11] != " ":
            return None
        try:
            local = datetime.fromisoformat(head + ":00").replace(tzinfo=self.zone)
        except ValueError:
            self.hours[head] = None
            return None
        offset = local.utcoffset()
        # A shift inside this hour (summer time) or a zone off by minutes takes the slow path.
        later = (local + timedelta(minutes=59, seconds=59)).utcoffset()
        result = None
        if offset is not None and offset == later and not offset.total_seconds() % 3600:
            result = local.astimezone(UTC).strftime("%Y-%m-%d %H")
        if len(self.hours) < 200_000:
            self.hours[head] = result
        return result


def utc_text(value: datetime) -> str:
    """Canonical UTC text of an aware datetime, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
