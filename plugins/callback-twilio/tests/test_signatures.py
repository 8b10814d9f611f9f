"""X-Twilio-Signature checking, and rebuilding the public URL Twilio signed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, add_port, remove_port

from callback.web.forms import Form
from callback_twilio import signatures
from callback_twilio.signatures import (
    SIGNATURE_HEADER,
    SignatureCheck,
    public_url,
    verify_request,
)
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


# -- SignatureCheck gives the official validator's verdict, with one HMAC when it matches ------

BASES = [
    "https://callback.example.gov.cn",
    "https://callback.example.gov.cn:443",
    "https://callback.example.gov.cn:8443",
    "http://callback.example.gov.cn",
    "http://callback.example.gov.cn:80",
]


def _official(url: str, params: Mapping[str, Any], signature: str | None) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(TOKEN).validate(url, params, signature))


@settings(max_examples=300, deadline=None)
@given(
    signed_base=st.sampled_from(BASES),
    checked_base=st.sampled_from(BASES),
    path=st.sampled_from(["/twilio/gather/7", "/twilio/gather/7?at=trips.0", "/a/b?x=1&y=2"]),
    params=st.dictionaries(
        st.sampled_from(["CallSid", "Digits", "SpeechResult", "From", "Caller"]),
        st.text(max_size=6),
        max_size=4,
    ),
    tamper=st.sampled_from(["none", "param", "signature", "non-ascii", "empty"]),
)
def test_the_check_agrees_with_the_official_validator(
    signed_base: str, checked_base: str, path: str, params: dict[str, str], tamper: str
) -> None:
    signature: str | None = sign(signed_base + path, params, TOKEN)
    checked = dict(params)
    if tamper == "param":
        checked["Digits"] = checked.get("Digits", "") + "9"
    elif tamper == "signature":
        signature = signature[:-2] + ("A=" if not signature.endswith("A=") else "B=")
    elif tamper == "non-ascii":
        signature = "签" + signature[1:]
    elif tamper == "empty":
        signature = ""
    url = checked_base + path
    assert SignatureCheck(TOKEN)(url, checked, signature) == _official(url, checked, signature)


def test_repeated_fields_are_signed_as_the_official_validator_signs_them() -> None:
    form = Form([("CallSid", "CA1"), ("Digits", "1"), ("Digits", "2")])
    signature = RequestValidator(TOKEN).compute_signature(URL, form)
    assert SignatureCheck(TOKEN)(URL, form, signature)
    assert not SignatureCheck(TOKEN)(URL, {"CallSid": "CA1", "Digits": "2"}, signature)


def test_a_genuine_request_costs_one_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = signatures.sign
    plain = sign(URL, PARAMS, TOKEN)
    with_port = sign(URL.replace(".cn/", ".cn:443/"), PARAMS, TOKEN)

    def counting(secret: bytes, uri: str, params: Any, algorithm: Any = None) -> str:
        calls.append(uri)
        return real(secret, uri, params, algorithm)

    monkeypatch.setattr(signatures, "sign", counting)
    check = SignatureCheck(TOKEN)
    assert check(URL, PARAMS, plain)
    assert calls == [URL]
    # Signed with the port: the second try finds it.
    calls.clear()
    assert check(URL, PARAMS, with_port)
    assert calls == [URL, URL.replace(".cn/", ".cn:443/")]


@settings(max_examples=500, deadline=None)
@given(
    base=st.sampled_from([*BASES, "HTTPS://callback.example.gov.cn", "https://Gw.Example.cn",
                          "https://gw.example.cn:443", "https://[::1]:8443", " https://a.b"]),
    rest=st.lists(st.sampled_from(["/", "twilio", "gather", "7", "?", "at=", "trips.0", "&",
                                   "%2B", "+", "#", ";", " ", "\t", "签", ":", "//", "."]),
                  max_size=8).map("".join),
)  # fmt: skip
def test_the_url_forms_are_the_libraries_without_and_with_the_port(base: str, rest: str) -> None:
    url = base + rest
    parsed = urlparse(url)
    try:
        expected = [remove_port(parsed), add_port(parsed)]
    except ValueError:  # a port urlparse cannot read: the library fails the same way
        with pytest.raises(ValueError):
            list(signatures.url_forms(url))
        return
    assert list(signatures.url_forms(url)) == expected


class _DjangoLike(dict[str, str]):
    """A mapping that answers getlist only, as Django's QueryDict does."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["CallSid", "Digits", "SpeechResult", "a", "B", "签"]),
            st.text(max_size=5),
        ),
        max_size=8,
    ),  # fmt: skip
    kind=st.sampled_from(["form", "dict", "getlist"]),
    algorithm=st.sampled_from(["HMAC_SHA1", "HMAC_SHA256", "hmac_sha256", None]),
    secret=st.text(min_size=1, max_size=8),
)
def test_signing_is_the_official_libraries_signing(
    pairs: list[tuple[str, str]], kind: str, algorithm: str | None, secret: str
) -> None:
    params: Mapping[str, str] = {
        "form": Form, "dict": lambda p: dict(p), "getlist": _DjangoLike
    }[kind](pairs)  # fmt: skip
    official = RequestValidator(secret).compute_signature(URL, params, algorithm)
    assert signatures.sign(secret.encode(), URL, params, algorithm) == official


def test_an_algorithm_twilio_does_not_have_is_left_to_the_library() -> None:
    with pytest.raises(ValueError, match="HMAC_MD5"):
        signatures.sign(b"secret", URL, PARAMS, "HMAC_MD5")


# -- shared keys (Webhook Rules) -----------------------------------------------------------------

KEYS = {"KSold": "old-secret", "KSnew": "new-secret"}


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["KSold", "KSnew"]),
    algorithm=st.sampled_from(["HMAC_SHA1", "HMAC_SHA256", "hmac_sha256"]),
    base=st.sampled_from(BASES),
    params=st.dictionaries(st.sampled_from(["CallSid", "Digits"]), st.text(max_size=4)),
    tamper=st.booleans(),
)
def test_a_shared_key_signature_gets_the_official_verdict(
    key: str, algorithm: str, base: str, params: dict[str, str], tamper: bool
) -> None:
    url = base + "/twilio/gather/7?at=q1.0"
    signature = RequestValidator(KEYS[key]).compute_signature(url, params, algorithm)
    if tamper:
        params = {**params, "Digits": params.get("Digits", "") + "9"}
    header = f"key={key},algorithm={algorithm}"
    official = RequestValidator(KEYS[key]).validate(url, params, signature, algorithm)
    assert SignatureCheck(None, KEYS)(url, params, signature, header) == official
    # The auth token never stands in for the key the request names.
    assert not SignatureCheck(KEYS[key])(url, params, signature, header)


def test_a_shared_key_request_is_refused_for_what_it_lacks() -> None:
    signature = RequestValidator("new-secret").compute_signature(URL, PARAMS, "HMAC_SHA256")
    check = SignatureCheck(TOKEN, KEYS)
    assert check(URL, PARAMS, signature, "key=KSnew,algorithm=HMAC_SHA256")
    assert check.refusal(URL, PARAMS, signature, "key=KSother,algorithm=HMAC_SHA256") == (
        "the request is signed with the shared key KSother, which [dialers.twilio] "
        "webhook_keys does not hold"
    )
    assert "(none named)" in (check.refusal(URL, PARAMS, signature, "algorithm=HMAC_SHA256") or "")
    assert check.refusal(URL, PARAMS, signature, "key=KSnew,algorithm=HMAC_SHA512") == (
        "the request is signed with HMAC_SHA512, which this server cannot check"
    )
    # Without the header, the auth token; a server without one refuses, saying why.
    assert check(URL, PARAMS, sign(URL, PARAMS, TOKEN))
    refusal = SignatureCheck(None, KEYS).refusal(URL, PARAMS, sign(URL, PARAMS, TOKEN))
    assert refusal is not None and "auth token" in refusal
