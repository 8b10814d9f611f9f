"""The dispatcher with the real Twilio dialer, against the plugin's fake REST API and the
webhooks of ``callback serve``: what happens when Twilio's answer to "create" is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

pytest.importorskip("callback_twilio")

from callback_twilio import TwilioDialer  # noqa: E402
from callback_twilio.testing import FakeTwilioAPI  # noqa: E402
from test_calls import NOW, rows, world  # noqa: E402
from test_dispatch import FakeClock  # noqa: E402
from test_web import client_for  # noqa: E402
from test_web_twilio import fake_api, in_process, twilio_settings  # noqa: E402, F401

from callback.config import Settings  # noqa: E402
from callback.dispatch import Dispatcher  # noqa: E402
from callback.models import CallAttempt, Campaign, table  # noqa: E402
from callback.web import create_app  # noqa: E402

#: The dialer's patience with the REST API; the fake holds the answer back longer.
HTTP_TIMEOUT, STALL = 0.3, 1.0


def test_a_call_whose_creation_timed_out_is_followed_by_its_webhooks_not_redialled(
    database_url: str,
    engine: Engine,
    fake_api: FakeTwilioAPI,  # noqa: F811 - the fixture
) -> None:
    world(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(table(Campaign)).values(dialer="twilio"))
    settings = twilio_settings(database_url, api_base_url=fake_api.base_url)
    section = {**settings.section("dialers.twilio"), "http_timeout": HTTP_TIMEOUT}
    dialer = TwilioDialer(section, lambda event: None)
    clock = FakeClock(NOW)
    d = Dispatcher(engine, Settings(), "dispatcher:test", clock, dialers={"twilio": dialer},
                   sleep=clock.sleep)  # fmt: skip
    dialer.events = d.handler
    fake_api.stall_next(STALL)
    try:
        d.tick()
        # Twilio created the call; the dialer timed out before it heard so.
        (sid,) = fake_api.calls
        (attempt,) = rows(engine, CallAttempt)
        assert (attempt.state, attempt.provider_call_id) == ("placed", None)
        assert attempt.detail["maybe_placed"] is True
        # Past the line's rest, nothing is dialled: the citizen's phone may be ringing.
        clock.at += timedelta(minutes=5)
        d.tick()
        assert len(fake_api.calls) == 1 and len(rows(engine, CallAttempt)) == 1
    finally:
        dialer.close()
    # The call's callbacks name the attempt in their URLs: callback serve records its fate,
    # and the call SID the dialer never heard.
    app = create_app(settings, engine=engine, clock=lambda: NOW + timedelta(minutes=5))
    with client_for(app) as client:
        twilio = in_process(client)
        phone = fake_api.phone(sid)
        twilio.callback(phone.status("ringing"))
        twilio.callback(phone.status("busy"))
    (attempt,) = rows(engine, CallAttempt)
    assert (attempt.state, attempt.outcome, attempt.provider_call_id) == ("ended", "busy", sid)
