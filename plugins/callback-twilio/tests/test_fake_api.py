"""The fake Twilio REST API itself: it must refuse what Twilio refuses, or tests lie."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from callback_twilio.testing import FakeTwilioAPI


def post(
    api: FakeTwilioAPI, path: str, form: dict[str, str], auth: str | None = None
) -> tuple[int, dict[str, object], dict[str, str]]:
    credentials = auth if auth is not None else f"{api.account_sid}:{api.auth_token}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    request = urllib.request.Request(
        api.base_url + path, data=urlencode(form).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def calls_path(api: FakeTwilioAPI) -> str:
    return f"/2010-04-01/Accounts/{api.account_sid}/Calls.json"


GOOD = {"To": "+8613800000001", "From": "+8657188880000", "Url": "https://cb.example/v/1"}


def test_a_call_is_created_queued_with_a_ca_sid(api: FakeTwilioAPI) -> None:
    status, body, _ = post(api, calls_path(api), GOOD)
    assert status == 201
    assert str(body["sid"]).startswith("CA") and len(str(body["sid"])) == 34
    assert body["status"] == "queued"
    assert body["to"] == GOOD["To"]
    assert body["date_created"] == "Thu, 06 Mar 2025 02:30:00 +0000"


@pytest.mark.parametrize("credentials", ["", "ACnope:token", "AC" + "0" * 31 + "1:wrong"])
def test_requests_without_the_right_basic_auth_are_refused(
    api: FakeTwilioAPI, credentials: str
) -> None:
    status, body, headers = post(api, calls_path(api), GOOD, auth=credentials)
    assert (status, body["code"]) == (401, 20003)
    assert headers["WWW-Authenticate"] == "Basic"
    assert api.calls == {}
    assert api.requests[-1].username is None


@pytest.mark.parametrize(("missing", "code"), [("To", 21201), ("From", 21213), ("Url", 21205)])
def test_required_parameters_are_checked(api: FakeTwilioAPI, missing: str, code: int) -> None:
    form = {k: v for k, v in GOOD.items() if k != missing}
    status, body, _ = post(api, calls_path(api), form)
    assert (status, body["code"]) == (400, code)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_another_accounts_calls_are_not_found(api: FakeTwilioAPI) -> None:
    status, body, _ = post(api, "/2010-04-01/Accounts/AC" + "9" * 32 + "/Calls.json", GOOD)
    assert (status, body["code"]) == (404, 20404)


def test_fail_next_answers_the_next_requests_then_stops(api: FakeTwilioAPI) -> None:
    api.fail_next(2, 429, retry_after=4)
    answers = [post(api, calls_path(api), GOOD) for _ in range(3)]
    assert [a[0] for a in answers] == [429, 429, 201]
    assert answers[0][2]["Retry-After"] == "4"
    assert answers[0][1]["code"] == 20429


def test_every_request_is_recorded(api: FakeTwilioAPI) -> None:
    post(api, calls_path(api), GOOD)
    post(api, calls_path(api), {"To": "+8613800000002"})
    assert [(r.method, r.status, r.param("To")) for r in api.requests] == [
        ("POST", 201, "+8613800000001"),
        ("POST", 400, "+8613800000002"),
    ]


def test_updating_an_ended_call_is_an_invalid_call_state(api: FakeTwilioAPI) -> None:
    _, body, _ = post(api, calls_path(api), GOOD)
    path = f"/2010-04-01/Accounts/{api.account_sid}/Calls/{body['sid']}.json"
    api.set_call(str(body["sid"]), "busy")
    status, error, _ = post(api, path, {"Status": "completed"})
    assert (status, error["code"]) == (400, 21220)


def test_canceling_a_call_in_progress_leaves_it_alone(api: FakeTwilioAPI) -> None:
    _, body, _ = post(api, calls_path(api), GOOD)
    sid = str(body["sid"])
    api.set_call(sid, "in-progress")
    path = f"/2010-04-01/Accounts/{api.account_sid}/Calls/{sid}.json"
    status, call, _ = post(api, path, {"Status": "canceled"})
    assert (status, call["status"]) == (200, "in-progress")


def test_the_phone_uses_the_urls_the_call_was_created_with(api: FakeTwilioAPI) -> None:
    form = {**GOOD, "StatusCallback": "https://cb.example/s/1"}
    _, body, _ = post(api, calls_path(api), form)
    phone = api.phone(str(body["sid"]))
    assert phone.voice().url == "https://cb.example/v/1"
    assert phone.status("ringing").url == "https://cb.example/s/1"
    assert phone.call_sid == body["sid"]
    with pytest.raises(ValueError, match="AMD"):
        phone.amd("human")


def test_the_base_url_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeTwilioAPI().base_url


def test_on_create_plays_each_created_call_once_after_answering_and_keeps_its_errors() -> None:
    seen: list[tuple[str, str]] = []

    def play(sid: str) -> None:
        # The create request has been answered: the call is there to be moved on.
        seen.append((sid, api.calls[sid]["status"]))
        api.set_call(sid, "completed", answered_by="human")
        if len(seen) == 2:
            raise RuntimeError("the second call broke")

    with FakeTwilioAPI(on_create=play) as api:
        first = post(api, calls_path(api), GOOD)[1]["sid"]
        assert api.wait_for_calls(5)
        second = post(api, calls_path(api), GOOD)[1]["sid"]
        assert post(api, calls_path(api), {"To": GOOD["To"]})[0] == 400  # nothing to play
        assert api.wait_for_calls(5)
        assert seen == [(first, "queued"), (second, "queued")]
        assert api.calls[str(first)]["status"] == "completed"
        assert [str(e) for e in api.call_errors] == ["the second call broke"]
