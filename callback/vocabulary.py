"""The frame's words: unit kinds, applicant types, channels, phone kinds and validity, contact
sources and verification, as the database stores them.

Plain enums, apart from the models that use them (callback.models re-exports them): the
import's reader processes need these words and nothing of SQLAlchemy, whose import would cost
each of them a quarter of a second.
"""

from __future__ import annotations

import enum


class UnitKind(enum.StrEnum):
    DEPARTMENT = "department"  # 部门
    TOWN = "town"  # 镇街 (a town or a street office)


class ApplicantType(enum.StrEnum):
    PERSON = "person"  # 个人
    COMPANY = "company"  # 法人 / 企业


class Channel(enum.StrEnum):
    WINDOW = "window"  # 窗口
    ONLINE = "online"  # 网上 (浙江政务服务网)
    MOBILE = "mobile"  # 掌上 (浙里办)
    NEARBY = "nearby"  # 就近 (村社代办点, 自助终端)
    MAIL = "mail"  # 邮寄 / 快递


class PhoneKind(enum.StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    OTHER = "other"  # valid but neither, e.g. a 400 or 95xxx service number


class Validity(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # not a Chinese telephone number
    FAKE = "fake"  # shaped like one but obviously made up (13800000000, 11111111)


class ContactSource(enum.StrEnum):
    IMPORT = "import"  # from a service centre's export
    CALLBACK = "callback"  # learnt in a callback
    AGENT = "agent"  # typed in by an agent or the office


class Verification(enum.StrEnum):
    """What calls learnt about a contact, for the corrected frame export."""

    NOT_CALLED = "not_called"
    VERIFIED = "verified"  # the applicant (or the case's contact) answered on it
    CORRECTED = "corrected"  # a number learnt in a callback replaced a wrong one
    UNREACHABLE = "unreachable"  # every attempt failed to reach anyone
    WRONG_NUMBER = "wrong_number"  # someone answered who is not the applicant, or it is dead
