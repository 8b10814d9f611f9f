"""Checking that a webhook request really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the full URL it requested, as Twilio saw it, plus the POST parameters, with the
account's auth token (https://www.twilio.com/docs/usage/security#validating-requests). Behind
a reverse proxy or load balancer the server sees another scheme, host or port than the one
Twilio called, so the URL to check must be rebuilt from the configured public base URL
(``public_url``), never from the request's Host header or X-Forwarded-* (which a caller can
forge).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse, urlsplit

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator, add_port, remove_port

__all__ = ["SIGNATURE_HEADER", "SignatureCheck", "public_url", "verify_request"]


class SignatureCheck:
    """Check X-Twilio-Signature for one auth token, with one HMAC for a genuine request.

    Twilio signs the URL sometimes with its default port (``:443``) and sometimes without, so
    the official ``RequestValidator.validate`` accepts either, and computes both signatures
    every time (and parses the query for a JSON body's hash, which a form webhook never has).
    This asks the library for the signature of the URL without the port first and for the
    other only when that one does not match: the same verdict (the tests compare the two),
    the library's own signing, half the work on every genuine request.
    """

    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token
        self._validator = RequestValidator(auth_token)

    def __call__(self, url: str, params: Mapping[str, Any], signature: str | None) -> bool:
        # A signature is base64: anything else is refused before any work.
        if not signature or not signature.isascii() or not self.auth_token:
            return False
        parsed = urlparse(url)
        compute = self._validator.compute_signature
        return any(
            hmac.compare_digest(compute(variant(parsed), params), signature)
            for variant in (remove_port, add_port)
        )


def verify_request(
    url: str, params: Mapping[str, Any], signature: str | None, auth_token: str
) -> bool:
    """Return True when ``signature`` is Twilio's signature of ``url`` and ``params``.

    ``url`` is the public URL Twilio requested, query string included; ``params`` the POST
    form fields (a dict, or a Flask/Django multi-dict); ``signature`` the X-Twilio-Signature
    header, None or "" when it is missing. The official validator also accepts the URL with
    and without an explicit port, since Twilio is not consistent about which one it signs.
    """
    return SignatureCheck(auth_token)(url, params, signature)


def public_url(public_base_url: str, path: str, query: str = "") -> str:
    """Rebuild the URL Twilio requested from our public base URL and the request's path.

    ``path`` is the path the web server saw, relative to the application root (e.g.
    ``/twilio/gather/7``); when the public base URL has a path prefix (the proxy mounts us
    under ``/callback``), it is kept. ``query`` is the raw query string, without ``?``.
    """
    base = urlsplit(public_base_url.rstrip("/"))
    prefix = base.path.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        # The proxy forwarded the prefix unchanged; do not double it.
        prefix = ""
    url = f"{base.scheme}://{base.netloc}{prefix}{path if path.startswith('/') else '/' + path}"
    return f"{url}?{query}" if query else url
