"""The Twilio webhooks: check the signature, hand events and input to the core, render TwiML.

Imported by the app only when a ``/twilio/`` route is first used and the ``twilio`` dialer is
installed, so callback itself never needs the twilio library. Everything here is synchronous
and short; the app decides where it runs (see ``callback.web.app.Database``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from callback_twilio.signatures import MISMATCH, public_url

from callback.calls import CallHandler
from callback.config import Settings
from callback.dialing import CallEvent, EventKind, Turn
from callback.models import LIVE_ATTEMPT_STATES, CallAttempt, table
from callback.phones import mask
from callback.problems import mask_numbers
from callback.web.forms import Form, first
from callback.web.ivr import KeyedSessions, Step
from callback.web.settings import WebSettings

log = logging.getLogger(__name__)
attempts_t = table(CallAttempt)

#: Heard when something broke mid-call: "Sorry, the callback cannot go on right now; we will
#: call you again. Goodbye." Twilio's own answer to a 500 is an English error message.
APOLOGY = Turn(
    "对不起，系统暂时无法继续本次回访，我们会另行与您联系，再见。", expect="", hangup=True
)


class TwilioWebhooks:
    """The four webhooks of one Twilio account, around one ``TwilioDialer``.

    ``dialer_class`` is what ``callback.plugins.get_dialer("twilio")`` returned; it is built
    from ``[dialers.twilio]`` with the core's ``CallHandler`` as its event sink (a
    ``ConfigError`` when the table is incomplete).
    """

    def __init__(
        self,
        dialer_class: Any,
        settings: Settings,
        web: WebSettings,
        handler: CallHandler,
        sessions: KeyedSessions,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        # The clock stamps events that carry no Timestamp of Twilio's (tests inject it).
        self.dialer = dialer_class(settings.section("dialers.twilio"), handler, clock=clock)
        self.handler = handler
        self.sessions = sessions
        config = self.dialer.config
        #: Twilio signs the URL it requested: ours behind the proxy, else the dialer's.
        self.public_base_url: str = web.public_base_url or config.public_base_url
        if web.public_base_url and web.public_base_url != config.public_base_url:
            log.warning(
                "[web] public_base_url %s differs from [dialers.twilio] public_base_url %s, "
                "where calls send Twilio: signatures are checked against the first",
                web.public_base_url, config.public_base_url,
            )  # fmt: skip
        #: Rendered now: when it is needed, something else has already failed.
        self.apology = self.render(Step(APOLOGY), 0)
        # Serialises machine verdicts, so that of two deliveries of one (Twilio retries),
        # only the one that records it hangs up.
        self._verdicts = threading.Lock()

    # -- checks ------------------------------------------------------------------------------

    def refusal(
        self, path: str, query: str, form: Form, signature: str | None, settings: str | None
    ) -> str | None:
        """None when ``signature`` is Twilio's for the public URL of ``path`` and ``form``
        (with the auth token, or the shared key ``settings`` names); else why not."""
        url = public_url(self.public_base_url, path, query)
        refusal = self.dialer.signature_check.refusal(url, form, signature, settings)
        if refusal == MISMATCH:
            refusal += " (behind a proxy, [web] public_base_url must be the URL Twilio calls)"
        return refusal

    # -- webhooks ----------------------------------------------------------------------------

    def voice(self, attempt_id: int, form: Form, query: Mapping[str, str] | None = None) -> str:
        """The callee answered: report it, open the session, return the first turn.

        ``query`` is the URL's query, as for ``callback``."""
        self._report("voice", attempt_id, form, query)
        return self.render(self.sessions.begin(attempt_id), attempt_id)

    def gather(self, attempt_id: int, at: str | None, form: Form) -> str:
        """Input (or silence) for the turn asked at ``at``: apply it once, return the next."""
        digits = first(form, "Digits") or ""
        speech = first(form, "SpeechResult")
        return self.render(self.sessions.reply(attempt_id, at, digits, speech), attempt_id)

    def callback(
        self, kind: str, attempt_id: int, form: Form, query: Mapping[str, str] | None = None
    ) -> Callable[[], None] | None:
        """A status or AMD callback: only events, no TwiML. Returns the hang-up to do once
        Twilio has its answer, when the call has nothing more to give. ``query`` is the
        URL's query: the dialer wrote there how it placed the call.

        Twilio keeps a call that a machine answered until someone ends it, and the survey
        would play to the voicemail; a hotline check by machine has all it came for once
        detection has said who answered (a tester makes the rest of the check). The hang-up
        is a request to Twilio: the app makes it after answering, off the event loop, so a
        slow API never holds the webhooks up.
        """
        events = self._events(kind, attempt_id, form, query)
        verdict = self._verdict(attempt_id, events)
        if verdict is None:
            self._apply(events)
            return None
        with self._verdicts:
            before = self._attempt(attempt_id)
            self._apply(events)
            after = self._attempt(attempt_id)
        if before is None or after is None or before.state not in LIVE_ATTEMPT_STATES:
            return None  # a repeat, a late verdict, or an unknown attempt: nothing to end now
        if verdict.kind is EventKind.MACHINE and after.outcome != EventKind.MACHINE:
            return None  # something else ended it meanwhile
        return partial(self._hang_up, attempt_id, verdict.provider_call_id, after.number)

    def _verdict(self, attempt_id: int, events: list[CallEvent]) -> CallEvent | None:
        """The event after which the call is of no more use: a machine answered, or, on a
        hotline check by machine, detection said who answered. None for a call already over
        (a "completed" that carries the verdict)."""
        if any(event.kind is EventKind.COMPLETED for event in events):
            return None
        for event in events:
            if event.kind is EventKind.MACHINE:
                return event
            if (
                event.kind is EventKind.ANSWERED
                and event.answered_by is not None
                and self.handler.checks.handles(attempt_id)
            ):
                return event
        return None

    def _report(
        self, kind: str, attempt_id: int, form: Form, query: Mapping[str, str] | None
    ) -> None:
        self._apply(self._events(kind, attempt_id, form, query))

    def _events(
        self, kind: str, attempt_id: int, form: Form, query: Mapping[str, str] | None
    ) -> list[CallEvent]:
        return self.dialer.webhook_events(kind, attempt_id, form, query)

    def _apply(self, events: list[CallEvent]) -> None:
        # The plugin's mapping, applied by the core's CallHandler: repeated or late events
        # (Twilio retries, and sends status callbacks out of order) change nothing twice.
        # (handle_webhook would do the same, then render a turn without the position.)
        for event in events:
            self.handler(event)

    def _attempt(self, attempt_id: int) -> Any:
        with self.handler.engine.connect() as conn:
            return conn.execute(
                sa.select(attempts_t.c.state, attempts_t.c.outcome, attempts_t.c.number).where(
                    attempts_t.c.id == attempt_id
                )
            ).first()

    def _hang_up(self, attempt_id: int, call_sid: str, number: str) -> None:
        try:
            self.dialer.hangup(call_sid)
        except Exception as exc:
            # Twilio has had its answer (204) and the outcome is recorded; the survey's next
            # turn for this call is a goodbye, so the call ends then at the latest.
            log.warning(
                "attempt %s: call %s to %s was not hung up: %s: %s",
                attempt_id, call_sid, mask(number), type(exc).__name__, mask_numbers(str(exc)),
            )  # fmt: skip

    # -- TwiML -------------------------------------------------------------------------------

    def render(self, step: Step, attempt_id: int) -> str:
        """Render ``step``; its input comes back to the gather URL keyed with its position."""
        return str(self.dialer.render(step.turn, attempt_id, step.at))
