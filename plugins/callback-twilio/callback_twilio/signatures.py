"""Checking that a webhook request really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the full URL it requested, as Twilio saw it, plus the POST parameters, with the
account's auth token (https://www.twilio.com/docs/usage/security#validating-requests). Behind
a reverse proxy or load balancer the server sees another scheme, host or port than the one
Twilio called, so the URL to check must be rebuilt from the configured public base URL
(``public_url``), never from the request's Host header or X-Forwarded-* (which a caller can
forge).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

__all__ = ["SIGNATURE_HEADER", "public_url", "verify_request"]


def verify_request(
    url: str, params: Mapping[str, Any], signature: str | None, auth_token: str
) -> bool:
    """Return True when ``signature`` is Twilio's signature of ``url`` and ``params``.

    ``url`` is the public URL Twilio requested, query string included; ``params`` the POST
    form fields (a dict, or a Flask/Django multi-dict); ``signature`` the X-Twilio-Signature
    header, None or "" when it is missing. The official validator also accepts the URL with
    and without an explicit port, since Twilio is not consistent about which one it signs.
    """
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))


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
