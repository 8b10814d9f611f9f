"""Read what a caller keyed or said (or an agent typed) as the answer to a survey question."""

from __future__ import annotations

import enum
import unicodedata
from functools import lru_cache

from callback.phones import PhoneParser
from callback.survey_format import Kind, Question, Value

__all__ = ["InputError", "read_answer"]


class InputError(enum.StrEnum):
    """Why an input was refused: the question is asked again, or its fallback applied."""

    NO_INPUT = "no-input"
    NOT_AN_OPTION = "not-an-option"
    NOT_A_NUMBER = "not-a-number"
    OUT_OF_RANGE = "out-of-range"
    NOT_A_PHONE = "not-a-phone"


_YES_WORDS = frozenset({"y", "yes", "true", "是", "是的", "对", "有"})
_NO_WORDS = frozenset({"n", "no", "false", "否", "不是", "不", "没有"})


def read_answer(question: Question, text: str, area_code: str) -> Value | InputError | None:
    """Turn raw input into an answer value, or say why it is refused."""
    # Full-width digits and letters (１２３, ＃) come from Chinese input methods.
    typed = unicodedata.normalize("NFKC", text or "").strip()
    if not typed:
        return None if question.optional else InputError.NO_INPUT
    if question.kind is Kind.TEXT:
        return (text or "").strip()
    if question.options:
        option = question.option(typed)
        if option is None and question.kind is Kind.YESNO:
            word = typed.lower()
            key = "1" if word in _YES_WORDS else "2" if word in _NO_WORDS else ""
            option = question.option(key)
        return InputError.NOT_AN_OPTION if option is None else option.value
    digits = typed.removesuffix("#").strip()
    if question.kind is Kind.PHONE:
        phone = _phone_parser(area_code).parse_one(digits)
        return InputError.NOT_A_PHONE if phone.e164 is None else phone.e164
    if not digits.isascii() or not digits.isdigit() or len(digits) > 15:
        return InputError.NOT_A_NUMBER
    number = int(digits)
    low, high = question.min, question.max
    if (low is not None and number < low) or (high is not None and number > high):
        return InputError.OUT_OF_RANGE
    return number


@lru_cache(maxsize=8)
def _phone_parser(area_code: str) -> PhoneParser:
    return PhoneParser(area_code)  # compiles its patterns once per area code
