"""Hotline checks by machine over Twilio: the answer's verdict comes from answering-machine
detection (AnsweredBy), the hotline hears silence, never the survey."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

pytest.importorskip("callback_twilio")

from callback_twilio.testing import DEFAULT_FROM, FakeTwilioAPI  # noqa: E402
from test_calls import rows  # noqa: E402
from test_hotline_checks import LINES, hotline_campaign  # noqa: E402
from test_web_twilio import (  # noqa: E402, F401 - fixtures
    Twilio,
    app_client,
    fake_api,
    hangups,
    phone_for,
    twilio,
)

from callback.attempts import attempt_placed, begin_attempt  # noqa: E402
from callback.claims import Scope, claim_next  # noqa: E402
from callback.models import CallAttempt, QueueItem, Response, table  # noqa: E402


def placed_check(engine: Engine, api: FakeTwilioAPI) -> tuple[int, str, str]:
    """The first planned check, claimed and placed through the fake Twilio API by the
    dispatcher; (attempt id, number, call SID)."""
    campaign = hotline_campaign(engine, dialer="twilio")
    items = table(QueueItem).c
    with engine.connect() as conn:
        due = conn.execute(
            sa.select(sa.func.min(items.due_at)).where(items.campaign_id == campaign)
        ).scalar_one()
    claim = claim_next(engine, "dispatcher:test", Scope(dialers=frozenset({"twilio"})), due)
    assert claim is not None
    with engine.connect() as conn:
        number = conn.execute(
            sa.text("SELECT e164 FROM hotlines WHERE id = :id"), {"id": claim.hotline_id}
        ).scalar_one()
    attempt = begin_attempt(engine, claim, number, "twilio", due)
    url = phone_for(attempt).voice_url
    sid = api.client().calls.create(to=number, from_=DEFAULT_FROM, url=url).sid
    attempt_placed(engine, attempt, sid, due - timedelta(seconds=9))
    api.set_call(sid, "in-progress")
    return attempt, number, sid


@pytest.mark.parametrize(
    ("answered_by", "recorded", "handed"),
    [
        ("human", "person", True),
        ("machine_start", "machine", False),
        ("unknown", None, True),  # Twilio could not tell: the tester says
    ],
)
def test_amd_decides_what_the_machine_records(
    twilio: Twilio,  # noqa: F811 - the fixture
    engine: Engine,
    fake_api: FakeTwilioAPI,  # noqa: F811 - the fixture
    answered_by: str,
    recorded: str | None,
    handed: bool,
) -> None:
    attempt, number, sid = placed_check(engine, fake_api)
    assert number in {n for n, _ in LINES.values()}
    phone = phone_for(attempt, call_sid=sid)
    twilio.callback(phone.status("ringing"))
    first = twilio.page(phone.voice())
    # Silence while detection listens: nothing said that could be taken for a greeting.
    assert not first.hangup and first.says == [] and "<Pause" in first.xml
    twilio.callback(phone.amd(answered_by))
    twilio.callback(phone.amd(answered_by))  # Twilio retries a callback it thinks was lost
    # Whoever answered, the machine has what it came for: the call is ended once.
    assert hangups(fake_api, sid) == ["completed"]
    # When the silence ends, the machine hangs up: its part is over.
    assert twilio.page(phone.gather(first.redirect or "")).hangup
    twilio.callback(phone.status("completed", duration=12))
    (row,) = rows(engine, CallAttempt)
    (item,) = [i for i in rows(engine, QueueItem) if i.id == row.queue_item_id]
    (response,) = rows(engine, Response)
    assert response.answers["answered"] is True
    assert response.answers.get("answered_by") == recorded
    assert response.answers["answer_seconds"] >= 0
    if handed:
        assert (item.state, item.handed_to, row.outcome, row.disposition) == (
            "open", "agent", "answered", "2.36",
        )  # fmt: skip
    else:
        assert (item.state, item.final_disposition, row.outcome) == ("finished", "1.1", "machine")
