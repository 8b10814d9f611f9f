"""Appointments: a time or a case the calling rules cannot keep is refused."""

from __future__ import annotations

from datetime import datetime

import pytest
from test_rules import RULES, A, B, att, sh

from callback import calendar
from callback.appointments import AppointmentError, validate_appointment
from callback.errors import CallbackError
from callback.rules import Appointment, CallingRules, CaseHistory, Outcome


def test_valid_appointment_passes() -> None:
    h = CaseHistory((A,), (att(A, sh(2025, 10, 9, 10), Outcome.ANSWERED),))
    validate_appointment(RULES, Appointment(sh(2025, 10, 9, 15), number=A), sh(2025, 10, 9, 10), h)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (sh(2025, 10, 9, 9), "in the past"),
        (sh(2025, 10, 9, 21), r"outside the calling windows \(09:00-12:00, 14:00-20:00\); "
                              r"the nearest callable time is 2025-10-10 09:00"),
        (sh(2025, 10, 9, 12, 30), "outside the calling windows"),
        (sh(2025, 10, 18, 10), r"not a working day \(周末\)"),
        (sh(2025, 10, 31, 18), "deadline"),
    ],
)  # fmt: skip
def test_appointment_outside_the_rules_is_refused(at: datetime, message: str) -> None:
    rules = CallingRules(deadline=sh(2025, 10, 31, 18))
    with pytest.raises(AppointmentError, match=message):
        validate_appointment(rules, Appointment(at), sh(2025, 10, 9, 10))


def test_appointment_on_a_holiday_names_it() -> None:
    with pytest.raises(
        AppointmentError, match=r"国庆节.*nearest callable time is 2025-10-09 09:00"
    ):
        validate_appointment(RULES, Appointment(sh(2025, 10, 3, 10)), sh(2025, 9, 30, 10))


def test_appointment_in_an_unknown_year_is_refused() -> None:
    year = calendar.covered_years()[-1] + 1
    with pytest.raises(AppointmentError, match=f"calendar for {year} is not known"):
        validate_appointment(RULES, Appointment(sh(year, 1, 5, 10)), sh(year - 1, 12, 30, 10))


def test_appointment_error_is_a_callback_error() -> None:
    assert issubclass(AppointmentError, CallbackError)


@pytest.mark.parametrize(
    ("history", "appointment", "message"),
    [
        (CaseHistory((A,), finished=True), Appointment(sh(2025, 10, 9, 15)), "finished"),
        (CaseHistory((A,), tuple(att(A, sh(2025, 10, 8, 9 + i), Outcome.BUSY) for i in range(6))),
         Appointment(sh(2025, 10, 9, 15)), "all 6 attempts"),
        (CaseHistory((A,), do_not_call=frozenset({A})), Appointment(sh(2025, 10, 9, 15)),
         "none of the case's numbers"),
        (CaseHistory((A, B), do_not_call=frozenset({B})),
         Appointment(sh(2025, 10, 9, 15), number=B),
         r"number 139\*\*\*\*2222 may not be dialled"),
        (CaseHistory((A,), (att(A, sh(2025, 10, 9, 14, 55), Outcome.ANSWERED),)),
         Appointment(sh(2025, 10, 9, 15)), "less than 10 minutes after the last call"),
    ],
)  # fmt: skip
def test_appointment_the_case_cannot_keep_is_refused(
    history: CaseHistory, appointment: Appointment, message: str
) -> None:
    rules = CallingRules(max_attempts_per_number=6)
    with pytest.raises(AppointmentError, match=message) as info:
        validate_appointment(rules, appointment, sh(2025, 10, 9, 14, 56), history)
    assert B not in str(info.value)  # never a citizen's full number in a message
