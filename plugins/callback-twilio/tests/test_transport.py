"""The HTTP client under the Twilio library: another host for tests, headers kept."""

from __future__ import annotations

from callback_twilio.testing import FakeTwilioAPI
from callback_twilio.transport import CallbackHttpClient, last_response_header, rebase_url


def test_twilio_urls_go_to_the_configured_base() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?Page=2"
    assert rebase_url(url, "http://127.0.0.1:8080/") == (
        "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Calls.json?Page=2"
    )


def test_regional_twilio_hosts_are_rebased_too() -> None:
    url = "https://api.singapore.au1.twilio.com/2010-04-01/x.json"
    assert (
        rebase_url(url, "http://127.0.0.1:1/prefix")
        == "http://127.0.0.1:1/prefix/2010-04-01/x.json"
    )


def test_other_hosts_are_left_alone() -> None:
    assert rebase_url("https://example.com/a", "http://127.0.0.1:1") == "https://example.com/a"


def test_the_last_response_headers_are_kept(api: FakeTwilioAPI) -> None:
    api.fail_next(1, 429, retry_after=9)
    client = CallbackHttpClient(api.base_url)
    response = client.request("GET", "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json")
    assert response.status_code == 429
    assert last_response_header(client, "retry-after") == "9"


def test_a_client_that_keeps_no_response_has_no_headers() -> None:
    assert last_response_header(object(), "Retry-After") is None
