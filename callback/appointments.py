"""Appointments: refuse, with a message for the agent, a time the calling rules cannot keep."""

from __future__ import annotations

from datetime import datetime

from callback import calendar
from callback.decisions import is_callable, next_callable, usable_numbers
from callback.errors import CallbackError
from callback.phones import mask
from callback.rules import Appointment, CallingRules, CaseHistory, require_aware


class AppointmentError(CallbackError):
    """An appointment cannot be booked at that time or for that case."""


def validate_appointment(
    rules: CallingRules,
    appointment: Appointment,
    now: datetime,
    history: CaseHistory | None = None,
) -> None:
    """Refuse an appointment we could not keep, with a message for the agent.

    The time must be in the future, on a working day the calendar knows, inside a calling
    window and before the deadline: we never call outside the window even if the citizen
    asks. With ``history``, the case must also still be open, have attempts left, a number we
    may dial, and the time must respect the minimum gap after the last call.
    """
    require_aware(now, "now")
    at = appointment.at
    local = at.astimezone(rules.zone)
    when = local.strftime("%Y-%m-%d %H:%M")
    if at < now:
        raise AppointmentError(f"{when} is in the past")
    if rules.deadline is not None and at >= rules.deadline:
        limit = rules.deadline.astimezone(rules.zone).strftime("%Y-%m-%d %H:%M")
        raise AppointmentError(f"{when} is at or after the campaign deadline ({limit})")
    try:
        working = calendar.is_working_day(local.date(), rules.closed_dates)
    except calendar.CalendarUnknownError as exc:
        raise AppointmentError(f"{when} cannot be booked: {exc}") from None
    if not working:
        name = calendar.holiday_name(local.date()) or "a local closure"
        raise AppointmentError(f"{when} is not a working day ({name}){_suggest(rules, at)}")
    if not is_callable(rules, at):
        windows = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in rules.windows)
        raise AppointmentError(
            f"{when} is outside the calling windows ({windows}){_suggest(rules, at)}"
        )
    if history is None:
        return
    if history.finished:
        raise AppointmentError("the case is finished; it will not be called again")
    if len(history.attempts) >= rules.max_attempts_per_case:
        raise AppointmentError(
            f"the case has had all {rules.max_attempts_per_case} attempts it may have"
        )
    usable = usable_numbers(rules, history)
    if not usable:
        raise AppointmentError("none of the case's numbers may be dialled again")
    if appointment.number is not None and appointment.number not in usable:
        raise AppointmentError(
            # Messages never carry a citizen's full number.
            f"number {mask(appointment.number)} may not be dialled for this case"
        )
    last = history.last
    if last is not None and at < last.placed_at + rules.min_gap:
        gap = int(rules.min_gap.total_seconds() // 60)
        raise AppointmentError(f"{when} is less than {gap} minutes after the last call")


def _suggest(rules: CallingRules, at: datetime) -> str:
    nearest = next_callable(rules, at)
    return f"; the nearest callable time is {nearest:%Y-%m-%d %H:%M}" if nearest else ""
