"""AAPOR disposition codes (结果代码) for attempts and cases, and how we assign them.

Codes follow AAPOR's *Standard Definitions: Final Dispositions of Case Codes and Outcome Rates
for Surveys*, the table of final disposition codes for RDD telephone surveys (Table 1 of the
2011-2016 editions; 2.34 and 2.35 are the codes it added for mobile phones). AAPOR lets a
survey subdivide its codes as long as every local code collapses into the standard rate
categories; ours are marked ``local`` and explained in docs/dispositions.md.

The one deliberate departure: AAPOR codes a non-working or wrong number as not eligible (4.x),
because in a random-digit sample the number *is* the unit. Our sample is a list of named
applicants whose cases were really handled, so the applicant is eligible whatever number the
service centre typed: a wrong or dead number is a frame error to correct (信息更正), and the case
stays eligible as a non-contact (local codes 2.291 and 2.292, category NC).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from callback.dialing import EventKind
from callback.rules import Outcome


class Category(enum.StrEnum):
    """The groups AAPOR's response, cooperation, refusal and contact rates are built from."""

    I = "I"  # noqa: E741 - AAPOR's own name: complete interview
    P = "P"  # partial interview
    R = "R"  # refusal and break-off
    NC = "NC"  # non-contact
    O = "O"  # noqa: E741 - other eligible non-interview
    UH = "UH"  # unknown eligibility: unknown if the number reaches the applicant
    UO = "UO"  # unknown eligibility, other
    NE = "NE"  # not eligible


class Disposition(enum.StrEnum):
    """A disposition code; its value is the AAPOR code ("1.1", "2.112", ...)."""

    COMPLETE = "1.1"
    PARTIAL = "1.2"
    REFUSAL = "2.11"
    REFUSAL_HOUSEHOLD = "2.111"
    REFUSAL_RESPONDENT = "2.112"
    BREAK_OFF = "2.12"
    NEVER_AVAILABLE = "2.21"
    MACHINE_MESSAGE = "2.221"
    MACHINE_NO_MESSAGE = "2.222"
    WRONG_NUMBER = "2.291"
    DEAD_NUMBER = "2.292"
    DECEASED = "2.31"
    UNABLE = "2.32"
    LANGUAGE_HOUSEHOLD = "2.331"
    LANGUAGE_RESPONDENT = "2.332"
    LANGUAGE_NO_INTERVIEWER = "2.333"
    AUDIO = "2.34"
    NOT_NOW = "2.35"
    OTHER_ELIGIBLE = "2.36"
    NOT_ATTEMPTED = "3.11"
    BUSY = "3.12"
    NO_ANSWER = "3.13"
    MACHINE_UNKNOWN = "3.14"
    CALL_BLOCKING = "3.15"
    TECHNICAL = "3.16"
    UNKNOWN_OTHER = "3.90"
    OUT_OF_SAMPLE = "4.10"
    QUOTA_FILLED = "4.80"
    NOT_ELIGIBLE_OTHER = "4.90"

    @property
    def info(self) -> DispositionInfo:
        return CODES[self]

    @property
    def category(self) -> Category:
        return CODES[self].category

    @property
    def final(self) -> bool:
        return CODES[self].final


@dataclass(frozen=True)
class DispositionInfo:
    """One row of the code table."""

    code: Disposition
    en: str
    zh: str
    category: Category
    #: True when this outcome closes the case: nobody calls it again.
    final: bool
    #: True for our subdivisions of AAPOR's codes (they collapse into ``category``).
    local: bool = False


def _row(
    code: Disposition, en: str, zh: str, cat: Category, final: bool = False
) -> tuple[Disposition, DispositionInfo]:
    local = code in (Disposition.WRONG_NUMBER, Disposition.DEAD_NUMBER)
    return code, DispositionInfo(code, en, zh, cat, final, local)


D, C = Disposition, Category
#: Every code we use, with its labels, rate category and whether it closes the case.
#: Finality is ours, not AAPOR's (AAPOR codes only the end of a case): an outcome is final when
#: calling again would be pointless or unwelcome.
CODES: dict[Disposition, DispositionInfo] = dict(
    [
        _row(D.COMPLETE, "Complete", "完成访问", C.I, True),
        _row(D.PARTIAL, "Partial", "部分完成", C.P, True),
        # Who hung up during the introduction is not known: try again, it may not have been
        # the applicant, and a hang-up is not a considered refusal.
        _row(D.REFUSAL, "Refusal, by whom unknown (hung up at the introduction)",
             "拒访（接通后挂断，拒访者不明）", C.R),
        _row(D.REFUSAL_HOUSEHOLD, "Household-level refusal (someone else refused for the "
             "applicant)", "他人代为拒访", C.R, True),
        _row(D.REFUSAL_RESPONDENT, "Known-respondent refusal", "本人拒访", C.R, True),
        _row(D.BREAK_OFF, "Break-off", "中途终止", C.R),
        _row(D.NEVER_AVAILABLE, "Respondent never available", "本人不在或无法接听", C.NC),
        _row(D.MACHINE_MESSAGE, "Answering machine confirming the applicant, message left",
             "语音信箱（确认为本人），已留言", C.NC),
        _row(D.MACHINE_NO_MESSAGE, "Answering machine confirming the applicant, no message "
             "left", "语音信箱（确认为本人），未留言", C.NC),
        _row(D.WRONG_NUMBER, "Wrong number: not the applicant's (frame correction needed)",
             "号码非本人（需更正样本框）", C.NC),
        _row(D.DEAD_NUMBER, "Non-working or disconnected number (frame correction needed)",
             "空号或停用号码（需更正样本框）", C.NC),
        _row(D.DECEASED, "Respondent deceased", "本人已故", C.O, True),
        _row(D.UNABLE, "Physically or mentally unable", "身体或精神原因无法受访", C.O, True),
        _row(D.LANGUAGE_HOUSEHOLD, "Language problem of the person who answered",
             "接听者语言不通", C.O),
        _row(D.LANGUAGE_RESPONDENT, "Respondent language problem", "本人语言不通", C.O, True),
        _row(D.LANGUAGE_NO_INTERVIEWER, "No interviewer available for the needed language",
             "无相应语言（方言）访员", C.O),
        _row(D.AUDIO, "Inadequate audio quality", "通话质量差", C.O),
        _row(D.NOT_NOW, "Location or activity not allowing an interview (appointment)",
             "本人当前不便受访（已预约）", C.O),
        _row(D.OTHER_ELIGIBLE, "Other, eligible", "其他（有效对象）", C.O),
        _row(D.NOT_ATTEMPTED, "Not attempted or worked", "未拨打", C.UH),
        _row(D.BUSY, "Busy (always busy)", "占线", C.UH),
        _row(D.NO_ANSWER, "No answer", "无人接听", C.UH),
        _row(D.MACHINE_UNKNOWN, "Answering machine, not known to be the applicant's",
             "语音信箱（无法确认本人）", C.UH),
        _row(D.CALL_BLOCKING, "Call blocked (anti-nuisance filter)", "来电被拦截", C.UH),
        _row(D.TECHNICAL, "Technical phone problems (unreachable, switched off)",
             "无法接通（关机、网络故障等）", C.UH),
        _row(D.UNKNOWN_OTHER, "Other, eligibility unknown", "其他（资格未知）", C.UO),
        _row(D.OUT_OF_SAMPLE, "Out of sample", "不属于调查范围", C.NE, True),
        _row(D.QUOTA_FILLED, "Quota filled", "配额已满", C.NE, True),
        _row(D.NOT_ELIGIBLE_OTHER, "Other, not eligible", "其他（不合格）", C.NE, True),
    ]
)  # fmt: skip

#: Codes that say the frame holds a wrong number for the applicant (export as corrections).
FRAME_ERRORS = frozenset({Disposition.WRONG_NUMBER, Disposition.DEAD_NUMBER})


class Progress(enum.StrEnum):
    """How far the survey script got on the call (the script decides what is "sufficient")."""

    NONE = "none"
    SOME = "some"  # at least one answer, fewer than a partial interview needs
    SUFFICIENT = "sufficient"  # enough for a partial interview
    ALL = "all"


class AgentOutcome(enum.StrEnum):
    """What an agent records after talking to someone (or hearing the network)."""

    BROKE_OFF = "broke-off"  # the call ended before the interview did (hang-up, drop)
    REFUSED = "refused"  # the applicant declined
    REFUSED_BY_OTHER = "refused-by-other"  # someone else declined for the applicant
    APPLICANT_UNAVAILABLE = "applicant-unavailable"  # someone else answered; book with them
    APPOINTMENT = "appointment"  # the applicant cannot talk now and named a time
    WRONG_PERSON = "wrong-person"  # the number is not the applicant's
    DEAD_NUMBER = "dead-number"  # "您拨打的号码是空号" and the like
    MACHINE_MESSAGE_LEFT = "machine-message-left"  # the greeting names the applicant
    MACHINE_NO_MESSAGE = "machine-no-message"
    SWITCHED_OFF = "switched-off"  # "您拨打的电话已关机" / "暂时无法接通"
    CALL_BLOCKED = "call-blocked"
    DECEASED = "deceased"
    UNABLE = "unable"
    LANGUAGE_BARRIER = "language-barrier"  # the applicant
    LANGUAGE_BARRIER_OTHER = "language-barrier-other"  # whoever answered
    NEEDS_DIALECT = "needs-dialect"  # another agent speaking the dialect may call
    BAD_AUDIO = "bad-audio"
    NOT_ELIGIBLE = "not-eligible"
    QUOTA_FILLED = "quota-filled"
    OTHER = "other"


_BASE: dict[EventKind | AgentOutcome, Disposition] = {
    EventKind.QUEUED: D.NOT_ATTEMPTED,
    EventKind.RINGING: D.NO_ANSWER,  # last heard ringing: nobody picked up yet
    EventKind.ANSWERED: D.REFUSAL,  # picked up, nothing answered yet
    EventKind.MACHINE: D.MACHINE_UNKNOWN,
    EventKind.BUSY: D.BUSY,
    EventKind.NO_ANSWER: D.NO_ANSWER,
    EventKind.WRONG_NUMBER: D.DEAD_NUMBER,  # the network says the number does not exist
    EventKind.FAILED: D.TECHNICAL,
    EventKind.COMPLETED: D.REFUSAL,  # answered, then ended before the first answer
    AgentOutcome.BROKE_OFF: D.REFUSAL,
    AgentOutcome.REFUSED: D.REFUSAL_RESPONDENT,
    AgentOutcome.REFUSED_BY_OTHER: D.REFUSAL_HOUSEHOLD,
    AgentOutcome.APPLICANT_UNAVAILABLE: D.NEVER_AVAILABLE,
    AgentOutcome.APPOINTMENT: D.NOT_NOW,
    AgentOutcome.WRONG_PERSON: D.WRONG_NUMBER,
    AgentOutcome.DEAD_NUMBER: D.DEAD_NUMBER,
    AgentOutcome.MACHINE_MESSAGE_LEFT: D.MACHINE_MESSAGE,
    AgentOutcome.MACHINE_NO_MESSAGE: D.MACHINE_NO_MESSAGE,
    AgentOutcome.SWITCHED_OFF: D.TECHNICAL,
    AgentOutcome.CALL_BLOCKED: D.CALL_BLOCKING,
    AgentOutcome.DECEASED: D.DECEASED,
    AgentOutcome.UNABLE: D.UNABLE,
    AgentOutcome.LANGUAGE_BARRIER: D.LANGUAGE_RESPONDENT,
    AgentOutcome.LANGUAGE_BARRIER_OTHER: D.LANGUAGE_HOUSEHOLD,
    AgentOutcome.NEEDS_DIALECT: D.LANGUAGE_NO_INTERVIEWER,
    AgentOutcome.BAD_AUDIO: D.AUDIO,
    AgentOutcome.NOT_ELIGIBLE: D.OUT_OF_SAMPLE,
    AgentOutcome.QUOTA_FILLED: D.QUOTA_FILLED,
    AgentOutcome.OTHER: D.OTHER_ELIGIBLE,
}

# Outcomes of a conversation with the applicant, where answers already given decide the code.
_CONVERSATION = frozenset(
    {EventKind.ANSWERED, EventKind.COMPLETED, AgentOutcome.BROKE_OFF, AgentOutcome.REFUSED,
     AgentOutcome.APPOINTMENT, AgentOutcome.BAD_AUDIO, AgentOutcome.OTHER}
)  # fmt: skip
# Outcomes where answers mean the interview had begun, so a stop is a break-off (AAPOR 2.12).
_BREAKS_OFF = frozenset(
    {EventKind.ANSWERED, EventKind.COMPLETED, AgentOutcome.BROKE_OFF}
)  # fmt: skip
# No one was on the line: answers here mean the caller mixed up two calls.
_NO_CONVERSATION = frozenset(
    {EventKind.QUEUED, EventKind.RINGING, EventKind.MACHINE, EventKind.BUSY,
     EventKind.NO_ANSWER, EventKind.WRONG_NUMBER, EventKind.FAILED}
)  # fmt: skip


def attempt_disposition(
    outcome: EventKind | AgentOutcome, progress: Progress = Progress.NONE
) -> Disposition:
    """Return the code of one attempt from a dialer event or an agent's outcome.

    For a dialer event this is the code as of that event (the last event of a call gives the
    attempt's code); an agent's outcome, when there is one, replaces it. In a conversation the
    answers decide first: all answered is 1.1, a partial interview's worth is 1.2, whatever
    else happened; some answers make a hang-up a break-off (2.12) and a refusal the
    applicant's (2.112). Raises ValueError for answers on a call nobody answered.
    """
    progress = Progress(progress)
    if outcome in _NO_CONVERSATION and progress is not Progress.NONE:
        raise ValueError(f"answers ({progress}) recorded on a call that ended {outcome}")
    if outcome in _CONVERSATION:
        if progress is Progress.ALL:
            return D.COMPLETE
        if progress is Progress.SUFFICIENT:
            return D.PARTIAL
        if progress is Progress.SOME and outcome in _BREAKS_OFF:
            return D.BREAK_OFF
    return _BASE[outcome]


def is_final(code: Disposition | str) -> bool:
    """Return whether ``code`` closes its case (complete, partial, refusal, not eligible, ...)."""
    return Disposition(code).final


def needs_frame_correction(attempts: Iterable[Disposition | str]) -> bool:
    """Return whether any attempt found a wrong or dead number that the frame must correct."""
    return any(Disposition(code) in FRAME_ERRORS for code in attempts)


def retry_outcome(code: Disposition | str) -> Outcome:
    """Return the calling rules' outcome for an attempt's code (which retry delay applies)."""
    code = Disposition(code)
    if code in FRAME_ERRORS:
        return Outcome.WRONG_NUMBER
    if code in (D.MACHINE_MESSAGE, D.MACHINE_NO_MESSAGE, D.MACHINE_UNKNOWN):
        return Outcome.MACHINE
    if code is D.BUSY:
        return Outcome.BUSY
    if code is D.NO_ANSWER:
        return Outcome.NO_ANSWER
    if code.category in (C.UH, C.UO):
        return Outcome.FAILED
    return Outcome.ANSWERED


# Among final codes an interview beats everything, and a finding of ineligibility beats a
# refusal or other non-interview (it takes the case out of every rate's denominator); among
# the rest the latest wins.
_FINAL_RANK = {C.I: 3, C.P: 2, C.NE: 1, C.R: 0, C.O: 0}
# Closing without a final code: a refusal or break-off is the strongest sign of contact, then
# other eligible non-interviews, then non-contacts (AAPOR's contact rates count R and O as
# contacted; turning them into non-contacts would understate contact and refusal).
_CONTACT_RANK = {C.R: 2, C.O: 1, C.NC: 0}


def final_disposition(
    attempts: Sequence[Disposition | str], max_attempts_reached: bool
) -> Disposition | None:
    """Return the final code of a case from its attempts' codes, oldest first.

    ``max_attempts_reached`` is True when no further attempt will be made: the attempt limits
    are used up, no number is left, or the deadline has passed. Rules, in order:

    1. No attempt: 3.11, not attempted.
    2. A final code wins: 1.1, then 1.2, then not eligible (4.x), then the latest refusal or
       other final non-interview.
    3. Otherwise, while attempts remain, the case is still open: None. (Pass True to classify
       an open case as if it closed now, for interim rates.)
    4. Someone was reached at one of the applicant's numbers: the strongest contact code
       (refusal or break-off, then other eligible, then non-contact such as 2.21), latest
       first among equals. These are AAPOR's eligible families: the number is right.
    5. Only wrong or dead numbers, besides unknowns: the latest of 2.291/2.292 (eligible
       non-contact, frame correction needed).
    6. Nobody was ever reached: the unknown-eligibility code that happened most (3.12 always
       busy, 3.13 no answer, 3.14 machine, 3.16 technical, ...), ties to the latest; 3.11
       only when no call was ever placed.
    """
    codes = [Disposition(code) for code in attempts]
    if not codes:
        return D.NOT_ATTEMPTED
    finals = [(i, c) for i, c in enumerate(codes) if c.final]
    if finals:
        return max(finals, key=lambda ic: (_FINAL_RANK[ic[1].category], ic[0]))[1]
    if not max_attempts_reached:
        return None
    contacts = [
        (i, c) for i, c in enumerate(codes) if c.category in _CONTACT_RANK and c not in FRAME_ERRORS
    ]
    if contacts:
        return max(contacts, key=lambda ic: (_CONTACT_RANK[ic[1].category], ic[0]))[1]
    frame = [c for c in codes if c in FRAME_ERRORS]
    if frame:
        return frame[-1]
    placed = [c for c in codes if c is not D.NOT_ATTEMPTED] or codes
    counts = Counter(placed)
    most = max(counts.values())
    return next(c for c in reversed(placed) if counts[c] == most)
