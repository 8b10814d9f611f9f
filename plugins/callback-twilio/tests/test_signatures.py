"""X-Twilio-Signature checking, and rebuilding the public URL Twilio signed."""

from __future__ import annotations

import pytest

from callback_twilio.signatures import SIGNATURE_HEADER, public_url, verify_request
from callback_twilio.testing import TwilioPhone, sign

TOKEN = "auth-token-of-the-account"
URL = "https://callback.example.gov.cn/twilio/gather/7"
PARAMS = {"CallSid": "CA" + "a" * 32, "Digits": "1", "CallStatus": "in-progress"}


def test_a_request_signed_by_twilio_is_accepted() -> None:
    assert verify_request(URL, PARAMS, sign(URL, PARAMS, TOKEN), TOKEN)


def test_an_altered_parameter_is_rejected() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not verify_request(URL, {**PARAMS, "Digits": "2"}, signature, TOKEN)


def test_an_added_parameter_is_rejected() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not verify_request(URL, {**PARAMS, "SpeechResult": "满意"}, signature, TOKEN)


def test_a_signature_for_another_url_is_rejected() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not verify_request(URL.replace("/7", "/8"), PARAMS, signature, TOKEN)


def test_the_url_the_server_sees_behind_a_proxy_is_not_the_one_twilio_signed() -> None:
    signature = sign(URL, PARAMS, TOKEN)
    assert not verify_request("http://127.0.0.1:8000/twilio/gather/7", PARAMS, signature, TOKEN)


@pytest.mark.parametrize("signature", [None, ""])
def test_a_missing_signature_is_rejected(signature: str | None) -> None:
    assert not verify_request(URL, PARAMS, signature, TOKEN)


def test_another_accounts_token_is_rejected() -> None:
    assert not verify_request(URL, PARAMS, sign(URL, PARAMS, TOKEN), "some-other-token")


def test_an_empty_auth_token_never_validates() -> None:
    assert not verify_request(URL, PARAMS, sign(URL, PARAMS, ""), "")


def test_twilio_signing_with_the_default_port_still_validates() -> None:
    # Twilio is inconsistent about :443 in what it signs; the official validator tries both.
    with_port = "https://callback.example.gov.cn:443/twilio/gather/7"
    assert verify_request(URL, PARAMS, sign(with_port, PARAMS, TOKEN), TOKEN)


def test_the_phone_signs_what_it_sends() -> None:
    phone = TwilioPhone.for_attempt("https://callback.example.gov.cn", 7, TOKEN)
    request = phone.gather(URL, digits="1")
    assert request.headers[SIGNATURE_HEADER] == request.signature
    assert verify_request(request.url, request.params, request.signature, TOKEN)


@pytest.mark.parametrize(
    ("base", "path", "query", "expected"),
    [
        ("https://cb.example.gov.cn", "/twilio/voice/7", "", "https://cb.example.gov.cn/twilio/voice/7"),
        ("https://cb.example.gov.cn/", "/twilio/voice/7", "", "https://cb.example.gov.cn/twilio/voice/7"),
        # The proxy mounts us under /callback and strips the prefix before forwarding.
        ("https://gov.cn/callback", "/twilio/voice/7", "", "https://gov.cn/callback/twilio/voice/7"),
        # ... or forwards it unchanged: not doubled.
        ("https://gov.cn/callback", "/callback/twilio/voice/7", "", "https://gov.cn/callback/twilio/voice/7"),
        ("https://cb.example.gov.cn", "/twilio/voice/7", "a=1", "https://cb.example.gov.cn/twilio/voice/7?a=1"),
        ("https://cb.example.gov.cn:8443", "twilio/voice/7", "", "https://cb.example.gov.cn:8443/twilio/voice/7"),
    ],
)  # fmt: skip
def test_public_url_rebuilds_what_twilio_requested(
    base: str, path: str, query: str, expected: str
) -> None:
    assert public_url(base, path, query) == expected


def test_a_request_seen_behind_a_proxy_validates_against_the_rebuilt_public_url() -> None:
    phone = TwilioPhone.for_attempt("https://callback.example.gov.cn", 7, TOKEN)
    request = phone.voice()
    seen_path = request.path  # what the app behind the proxy sees: /twilio/voice/7
    rebuilt = public_url("https://callback.example.gov.cn", seen_path)
    assert verify_request(rebuilt, request.params, request.signature, TOKEN)
