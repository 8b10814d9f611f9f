"""Hotline checks by machine over Twilio: the answer's verdict comes from answering-machine
detection (AnsweredBy), the hotline hears silence, never the survey."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

pytest.importorskip("callback_twilio")

from callback_twilio import TwilioDialer  # noqa: E402
from callback_twilio.testing import DEFAULT_FROM, FakeTwilioAPI  # noqa: E402
from test_calls import NOW, rows  # noqa: E402
from test_hotline_checks import LINES, hotline_campaign  # noqa: E402
from test_web import client_for  # noqa: E402
from test_web_twilio import (  # noqa: E402, F401 - fixtures
    Twilio,
    app_client,
    fake_api,
    hangups,
    in_process,
    phone_for,
    twilio,
    twilio_settings,
)

from callback.attempts import attempt_placed, begin_attempt  # noqa: E402
from callback.claims import Scope, claim_next  # noqa: E402
from callback.dial_plan import extension_of  # noqa: E402
from callback.dialing import CallRequest  # noqa: E402
from callback.hotline_checks import HANDED_EXTENSION, HANDED_UNTOLD  # noqa: E402
from callback.models import (  # noqa: E402
    AuditEntry,
    CallAttempt,
    Hotline,
    QueueItem,
    Response,
    table,
)
from callback.web import create_app  # noqa: E402


def placed_check(
    engine: Engine, api: FakeTwilioAPI, extension: str | None = None
) -> tuple[int, str, str]:
    """The first planned check, claimed and placed through the fake Twilio API by the
    dispatcher (with ``extension``, every hotline is published with it, and the call is
    created with the dialer's own parameters); (attempt id, number, call SID)."""
    campaign = hotline_campaign(engine, dialer="twilio")
    if extension is not None:
        with engine.begin() as conn:
            conn.execute(sa.update(table(Hotline)).values(extension=extension))
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
    if extension is None:
        url = phone_for(attempt).voice_url
        sid = api.client().calls.create(to=number, from_=DEFAULT_FROM, url=url).sid
    else:
        dialer = TwilioDialer(api.settings(), lambda event: None)
        request = CallRequest(attempt, number, extension=extension_of(engine, claim, number))
        sid = api.client().calls.create(**dialer.call_params(request)).sid
    # As the dispatcher records it: the extension keyed, when there is one.
    keyed = {"extension": extension} if extension else None
    attempt_placed(engine, attempt, sid, due - timedelta(seconds=9), keyed)
    api.set_call(sid, "in-progress")
    return attempt, number, sid


@contextmanager
def app_worker(
    database_url: str, engine: Engine, api: FakeTwilioAPI, **dialer: Any
) -> Iterator[Twilio]:
    """An app of its own (as a uvicorn worker is), with ``dialer`` settings for Twilio."""
    settings = twilio_settings(database_url, api_base_url=api.base_url)
    settings.sections["dialers"]["twilio"].update(dialer)
    with client_for(create_app(settings, engine=engine, clock=lambda: NOW)) as client:
        yield in_process(client)


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
    # When the silence ends, the machine hangs up without a word: its part is over.
    last = twilio.page(phone.gather(first.redirect or ""))
    assert last.hangup and last.says == []
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


def test_without_detection_an_answer_goes_to_a_tester_at_once(
    database_url: str,
    engine: Engine,
    fake_api: FakeTwilioAPI,  # noqa: F811 - the fixture
) -> None:
    # machine_detection = "off": no verdict will ever come, so the machine must not wait for
    # one in silence; it hands the check on and hangs up on the answer.
    with app_worker(database_url, engine, fake_api, machine_detection="off") as machine:
        attempt, _, sid = placed_check(engine, fake_api)
        phone = phone_for(attempt, call_sid=sid)
        machine.callback(phone.status("ringing"))
        first = machine.page(phone.voice())
        assert first.hangup and first.says == [] and first.gather is None  # no listening
        machine.callback(phone.status("completed", duration=2))
    (row,) = rows(engine, CallAttempt)
    (item,) = [i for i in rows(engine, QueueItem) if i.id == row.queue_item_id]
    assert (item.state, item.handed_to, row.outcome, row.disposition) == (
        "open", "agent", "answered", "2.36",
    )  # fmt: skip
    assert row.ended_at == row.answered_at
    (response,) = rows(engine, Response)
    assert response.answers["answered"] is True and "answered_by" not in response.answers
    (hand_off,) = [e for e in rows(engine, AuditEntry) if e.action == "queue_item.hand_off"]
    assert hand_off.reason == HANDED_UNTOLD


def test_a_check_that_keys_an_extension_goes_to_a_tester_at_once(
    twilio: Twilio,  # noqa: F811 - the fixture
    engine: Engine,
    fake_api: FakeTwilioAPI,  # noqa: F811 - the fixture
) -> None:
    # Detection is on, but never for a call that keys an extension (the switchboard's
    # greeting would be judged): the call's URLs say so, and the app, which did not place
    # the call, hands the check on and hangs up instead of waiting for a verdict.
    attempt, _, sid = placed_check(engine, fake_api, extension="8001")
    created = fake_api.created_params(sid)
    assert (created.param("SendDigits") or "").endswith("8001")
    assert created.param("MachineDetection") is None
    phone = fake_api.phone(sid)
    twilio.callback(phone.status("ringing"))
    first = twilio.page(phone.voice())
    assert first.hangup and first.says == [] and first.gather is None
    twilio.callback(phone.status("completed", duration=3))
    (row,) = rows(engine, CallAttempt)
    (item,) = [i for i in rows(engine, QueueItem) if i.id == row.queue_item_id]
    assert (row.id, item.state, item.handed_to, row.disposition) == (
        attempt,
        "open",
        "agent",
        "2.36",
    )
    (hand_off,) = [e for e in rows(engine, AuditEntry) if e.action == "queue_item.hand_off"]
    assert hand_off.reason == HANDED_EXTENSION
    # The switchboard's answer says nothing of the extension: nothing is recorded of it.
    assert rows(engine, Response) == [] and row.detail["observed"] == {}


def test_a_worker_that_never_saw_the_check_hangs_up_in_silence_too(
    database_url: str,
    engine: Engine,
    fake_api: FakeTwilioAPI,  # noqa: F811 - the fixture
) -> None:
    # With several uvicorn workers, the silence's end may reach one that did not answer the
    # call: it must know the check from the database, not from what it saw.
    attempt, _, sid = placed_check(engine, fake_api)
    phone = phone_for(attempt, call_sid=sid)
    with app_worker(database_url, engine, fake_api) as first_worker:
        first_worker.callback(phone.status("ringing"))
        first = first_worker.page(phone.voice())
        first_worker.callback(phone.amd("machine_start"))
    with app_worker(database_url, engine, fake_api) as other_worker:
        last = other_worker.page(phone.gather(first.redirect or ""))
    assert last.hangup and last.says == [] and last.gather is None
