"""The agent's terminal workstation: claim a case, dial by hand, walk the script, record.

The screen shows what the agent needs and no more: the applicant's name (to ask for them)
but the number masked until the agent dials. Every key is one keystroke; text answers take a
line. Quitting (q, or Ctrl-C at any point) releases the case held, and a call already dialled
is recorded as failed so that the case comes back, never lost or stuck.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from callback import plugins
from callback.appointments import AppointmentError, validate_appointment
from callback.attempt_outcomes import finish_attempt
from callback.attempts import attempt_placed, begin_attempt
from callback.campaign_states import paused_in_scope
from callback.claims import Claim, ClaimError, Scope, agent_scope, claim_next, release
from callback.dial_plan import extension_of, next_number
from callback.dialing import EventKind
from callback.dispositions import AgentOutcome, Disposition
from callback.errors import CallbackError
from callback.hotline_checks import observed_answers
from callback.models import Campaign, Case, Contact, Hotline, QueueItem, Unit, table
from callback.phones import mask
from callback.queues import campaign_rules
from callback.rules import Appointment
from callback.sessions import (
    Session,
    close_session,
    current_prompt,
    give_answer,
    open_session,
)
from callback.surveys import Kind

cases_t, units_t, items_t = table(Case), table(Unit), table(QueueItem)
campaigns_t, contacts_t, hotlines_t = table(Campaign), table(Contact), table(Hotline)


class Terminal(Protocol):
    def key(self, prompt: str, keys: str) -> str:
        """Wait for one of ``keys`` (a single keystroke) and return it."""

    def line(self, prompt: str) -> str:
        """Read a line of text."""

    def say(self, text: str) -> None: ...


@dataclass(frozen=True)
class CaseCard:
    """What the agent sees before dialling."""

    campaign: str
    unit: str
    case_no: str
    item: str
    handled: str
    applicant: str
    contact: str | None
    number: str
    attempts: int
    appointment: str | None
    extension: str | None = None

    def lines(self) -> list[str]:
        who = self.applicant + (f"（联系人 {self.contact}）" if self.contact else "")
        phone = mask(self.number) + _then(self.extension)
        rows = [
            f"回访任务 {self.campaign} · {self.unit}",
            f"办件 {self.case_no} · {self.item} · {self.handled} 办结",
            f"申请人 {who} · 电话 {phone} · 已拨 {self.attempts} 次",
        ]
        if self.appointment:
            rows.append(f"预约回访 {self.appointment}")
        return rows


@dataclass(frozen=True)
class HotlineCard:
    """What a tester sees before a hotline spot check: the number (public) and what the
    machine already observed on its call, when the check was handed over by a dialer."""

    campaign: str
    unit: str
    label: str | None
    number: str
    attempts: int
    observed: tuple[str, ...] = ()
    extension: str | None = None

    def lines(self) -> list[str]:
        rows = [
            f"咨询电话抽查 {self.campaign} · {self.unit}",
            f"咨询电话 {_spaced(self.number)}{_then(self.extension)}"
            + (f"（{self.label}）" if self.label else "")
            + f" · 已拨 {self.attempts} 次",
        ]  # fmt: skip
        if self.observed:
            rows.append("自动拨测已记录：" + "；".join(self.observed))
            rows.append("请拨打该电话进行咨询，并记录是否当场答复。")
        return rows


OUTCOME_KEYS = {
    "a": ("接通", None),
    "b": ("忙线", EventKind.BUSY),
    "n": ("无人接听", EventKind.NO_ANSWER),
    "m": ("语音信箱 / 留言", AgentOutcome.MACHINE_NO_MESSAGE),
    "w": ("空号 / 停机", AgentOutcome.DEAD_NUMBER),
    "o": ("关机 / 无法接通", AgentOutcome.SWITCHED_OFF),
    "r": ("拒接 / 挂断", AgentOutcome.REFUSED),
}


def agent_work(
    engine: Engine,
    login: str,
    units: frozenset[int] | None = None,
    campaigns: frozenset[int] | None = None,
) -> Callable[[], Scope]:
    """What ``login`` may work now, read afresh at each call: the units they work for (within
    ``units``), in manual campaigns and the checks automated ones handed to a person."""

    def scope() -> Scope:
        allowed = agent_scope(engine, login).units or frozenset()
        return Scope(
            units=allowed if units is None else allowed & units,
            campaigns=campaigns,
            dialers=frozenset({"manual"}),
            handed=True,
        )

    return scope


class Workstation:
    """One agent working their queues until the queue is empty or they quit."""

    def __init__(
        self,
        engine: Engine,
        login: str,
        scope: Callable[[], Scope],
        terminal: Terminal,
        zone: tzinfo,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.login = login
        #: Read again before every claim: an agent deactivated, or moved off a unit, while
        #: the workstation is open sees no further case they may no longer work.
        self.scope = scope
        self.term = terminal
        self.zone = zone
        self.clock = clock
        self.claim: Claim | None = None
        self.attempt_id: int | None = None
        self.session: Session | None = None
        self.done = 0
        self.skipped: set[int] = set()

    def run(self) -> int:
        """Work cases until the agent quits or nothing is due; return how many were worked."""
        try:
            while True:
                try:
                    scope = self.scope()
                except CallbackError as exc:
                    self.term.say(f"不能继续领取回访对象：{exc}")
                    return self.done
                self.claim = claim_next(self.engine, self.login, scope, self.clock())
                if self.claim is not None and self.claim.item_id in self.skipped:
                    # Only cases skipped already are due: leave them for later, or others.
                    release(self.engine, self.claim.item_id, self.login)
                    self.claim = None
                if self.claim is None:
                    self.term.say("现在没有到期的回访对象。")
                    for name, pause in paused_in_scope(self.engine, scope):
                        why = f"：{pause.reason}" if pause is not None else ""
                        self.term.say(f"回访任务 {name} 已暂停{why}")
                    return self.done
                if not self._work(self.claim):
                    return self.done
                self.claim = self.attempt_id = self.session = None
                if self.term.key("[Enter] 下一个  [q] 退出", "\rq") == "q":
                    return self.done
        except (KeyboardInterrupt, EOFError):
            self.term.say("")
            self._let_go()
            raise

    def _work(self, claim: Claim) -> bool:
        """One case; False when the agent quits."""
        number = next_number(self.engine, claim, self.clock())
        if number is None:
            release(self.engine, claim.item_id, self.login)
            return True
        extension = extension_of(self.engine, claim, number)
        card = self.card(claim, number, extension)
        self.term.say("─" * 48)
        for line in card.lines():
            self.term.say(line)
        choice = self.term.key("[d] 拨打  [s] 跳过  [q] 退出", "dsq")
        if choice != "d":
            release(self.engine, claim.item_id, self.login)
            self.skipped.add(claim.item_id)
            return choice == "s"
        try:
            self.attempt_id = begin_attempt(self.engine, claim, number, "manual", self.clock())
        except ClaimError as exc:
            self.term.say(f"不能拨打：{exc}")
            return True
        attempt_placed(self.engine, self.attempt_id, f"manual-{self.attempt_id}", self.clock())
        self.term.say(f"请拨打 {_spaced(number)}{_then(extension)}")
        keys = "".join(OUTCOME_KEYS)
        menu = "  ".join(f"[{k}] {label}" for k, (label, _) in OUTCOME_KEYS.items())
        key = self.term.key(f"结果：{menu}", keys)
        outcome = OUTCOME_KEYS[key][1]
        if outcome is not None:
            self._finish(outcome)
            return True
        self._interview()
        return True

    def _interview(self) -> None:
        assert self.attempt_id is not None
        self.session = open_session(self.engine, self.attempt_id, "agent", self.clock())
        while not self.session.done:
            prompt = current_prompt(self.session, "agent")
            self.term.say("")
            if prompt.error:
                self.term.say(f"（{prompt.error}，请重新记录）")
            self.term.say(prompt.text)
            if prompt.note:
                self.term.say(f"  提示：{prompt.note}")
            controls = "[r] 拒访  [h] 中断  [p] 预约"
            if prompt.kind is Kind.SAY:
                key = self.term.key(f"[Enter] 继续  {controls}", "\rrhp")
                answer = ""
            elif prompt.options:
                for choice in prompt.options:
                    self.term.say(f"  {choice.key}  {choice.label}")
                key = self.term.key(controls, "".join(c.key for c in prompt.options) + "rhp")
                answer = key
            else:
                key = self.term.key(f"[Enter] 输入回答  {controls}", "\rrhp")
                answer = self.term.line("> ") if key == "\r" else ""
            if key == "r":
                self._close(AgentOutcome.REFUSED)
                return
            if key == "h":
                self._close(None)
                return
            if key == "p":
                if self._appointment():
                    return
                continue
            self.session = give_answer(self.engine, self.session, answer, self.clock())
        self._close(None)

    def _close(self, outcome: AgentOutcome | None) -> None:
        """End the call: keep the session's results, record the attempt's outcome."""
        assert self.session is not None and self.attempt_id is not None
        said = close_session(self.engine, self.session, self.login, self.clock())
        if outcome is None:
            result = finish_attempt(
                self.engine, self.attempt_id, said.outcome, self.clock(), {"agent": self.login},
                final=said.final, progress=said.progress,
            )  # fmt: skip
        else:
            result = finish_attempt(
                self.engine, self.attempt_id, outcome, self.clock(), {"agent": self.login},
                progress=said.progress,
            )  # fmt: skip
        self._report(result.disposition)
        self.attempt_id = self.session = None

    def _finish(self, outcome: EventKind | AgentOutcome) -> None:
        assert self.attempt_id is not None
        result = finish_attempt(
            self.engine, self.attempt_id, outcome, self.clock(), {"agent": self.login}
        )
        self._report(result.disposition)
        self.attempt_id = None

    def _appointment(self) -> bool:
        """Book a time the citizen named; True when booked (the call then ends)."""
        assert self.claim is not None and self.attempt_id is not None
        text = self.term.line("预约时间（如 明天 10:00、14:30、2026-06-12 09:30；回车取消）> ")
        if not text.strip():
            return False
        now = self.clock()
        try:
            at = parse_when(text, now, self.zone)
            appointment = Appointment(at, agent=self.login)
            with self.engine.connect() as conn:
                campaign = conn.execute(
                    sa.select(campaigns_t.c.rules, campaigns_t.c.deadline).where(
                        campaigns_t.c.id == self.claim.campaign_id
                    )
                ).one()
            validate_appointment(
                campaign_rules(campaign.rules, campaign.deadline), appointment, now
            )
        except (ValueError, AppointmentError) as exc:
            self.term.say(f"不能预约：{exc}")
            return False
        assert self.session is not None
        close_session(self.engine, self.session, self.login, now)
        result = finish_attempt(
            self.engine, self.attempt_id, AgentOutcome.APPOINTMENT, now, {"agent": self.login},
            appointment=appointment,
        )  # fmt: skip
        self.term.say(f"已预约 {at.astimezone(self.zone):%m月%d日 %H:%M}")
        self._report(result.disposition)
        self.attempt_id = self.session = None
        return True

    def _report(self, code: str | None) -> None:
        self.done += 1
        if code:
            known = {d.value for d in Disposition}
            label = Disposition(code).info.zh if code in known else ""
            self.term.say(f"已记录：{code} {label}".rstrip())

    def _let_go(self) -> None:
        """Ctrl-C or end of input: leave nothing held or half-done."""
        now = self.clock()
        if self.attempt_id is not None:
            if self.session is not None:
                close_session(self.engine, self.session, self.login, now)
            finish_attempt(
                self.engine, self.attempt_id, EventKind.FAILED, now,
                {"agent": self.login, "note": "the agent quit before recording an outcome"},
            )  # fmt: skip
            self.term.say("未记录结果的呼叫已记为失败，稍后重拨。")
        elif self.claim is not None:
            release(self.engine, self.claim.item_id, self.login)
            self.term.say("已释放正在处理的回访对象。")

    def card(
        self, claim: Claim, number: str, extension: str | None = None
    ) -> CaseCard | HotlineCard:
        """What the agent reads before dialling; ``extension`` is keyed after the answer."""
        if claim.case_id is None:
            return self._hotline_card(claim, number, extension)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    campaigns_t.c.name.label("campaign"), units_t.c.name.label("unit"),
                    cases_t.c.case_no, cases_t.c.item_name, cases_t.c.handled_at,
                    cases_t.c.applicant_name, cases_t.c.contact_name,
                )
                .select_from(items_t)
                .join(campaigns_t, campaigns_t.c.id == items_t.c.campaign_id)
                .join(units_t, units_t.c.id == items_t.c.unit_id)
                .join(cases_t, cases_t.c.id == items_t.c.case_id)
                .where(items_t.c.id == claim.item_id)
            ).one()  # fmt: skip
        appointment = None
        if claim.appointment_at is not None:
            appointment = f"{claim.appointment_at.astimezone(self.zone):%m月%d日 %H:%M}"
        return CaseCard(
            row.campaign, row.unit, row.case_no, row.item_name,
            f"{row.handled_at.astimezone(self.zone):%Y-%m-%d}", row.applicant_name or "",
            row.contact_name, number, claim.attempts, appointment, extension,
        )  # fmt: skip

    def _hotline_card(self, claim: Claim, number: str, extension: str | None) -> HotlineCard:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    campaigns_t.c.name.label("campaign"), campaigns_t.c.script,
                    units_t.c.name.label("unit"), hotlines_t.c.label,
                )
                .select_from(items_t)
                .join(campaigns_t, campaigns_t.c.id == items_t.c.campaign_id)
                .join(units_t, units_t.c.id == items_t.c.unit_id)
                .outerjoin(hotlines_t, hotlines_t.c.id == items_t.c.hotline_id)
                .where(items_t.c.id == claim.item_id)
            ).one()  # fmt: skip
        observed = observed_answers(self.engine, claim.item_id, plugins.get_script(row.script))
        return HotlineCard(
            row.campaign, row.unit, row.label, number, claim.attempts, observed, extension
        )


def _then(extension: str | None) -> str:
    """The extension to key once the number answers (" 转 8001"), or nothing."""
    return f" 转 {extension}" if extension else ""


def _spaced(e164: str) -> str:
    national = e164[3:] if e164.startswith("+86") else e164
    if not national.startswith("1"):
        national = "0" + national
    if len(national) == 11 and national.startswith("1"):
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    return national


_RELATIVE_DAYS = {"今天": 0, "today": 0, "明天": 1, "tomorrow": 1, "后天": 2}
_CLOCK = re.compile(r"(\d{1,2})(?:[:：点](\d{1,2})?)?分?")


def parse_when(text: str, now: datetime, zone: tzinfo) -> datetime:
    """Read "明天 10:00", "tomorrow 10", "14:30", "下午3点", "2026-06-12 09:30" or "+2h"."""
    text = text.strip().lower()
    local_now = now.astimezone(zone)
    if m := re.fullmatch(r"\+\s*(\d+)\s*([hm]|小时|分钟)", text):
        amount = int(m.group(1))
        minutes = amount * 60 if m.group(2) in ("h", "小时") else amount
        return now + timedelta(minutes=minutes)
    try:
        return datetime.fromisoformat(text.replace("/", "-")).replace(tzinfo=zone)
    except ValueError:
        pass
    day = local_now.date()
    explicit_day = False
    for word, offset in _RELATIVE_DAYS.items():
        if text.startswith(word):
            day, text, explicit_day = day + timedelta(days=offset), text[len(word) :].strip(), True
            break
    afternoon = text.startswith(("下午", "晚上", "pm"))
    text = re.sub(r"^(上午|下午|晚上|am|pm)\s*", "", text)
    m = _CLOCK.fullmatch(text)
    if not m:
        raise ValueError(f"cannot read {text!r} as a time")
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if afternoon and hour < 12:
        hour += 12
    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if at <= local_now and not explicit_day:
        at += timedelta(days=1)  # "10:00" said in the afternoon means tomorrow
    return at
