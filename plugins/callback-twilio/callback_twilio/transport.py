"""The HTTP client under the official Twilio library: another API host for tests, and headers.

The library hard-codes ``https://api.twilio.com`` in its generated resources and has no base
URL option; Twilio's documented way to change requests is a custom ``http_client`` that
subclasses ``TwilioHttpClient`` and overrides ``request``
(twilio-python, advanced-examples/custom-http-client.md, "mock the Twilio API responses").
We do that to send requests to a local fake of the REST API, and to keep each response's
headers: ``TwilioRestException`` drops them, and ``Retry-After`` lives there.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


def rebase_url(url: str, api_base_url: str) -> str:
    """Send a ``https://*.twilio.com/...`` URL to ``api_base_url`` instead, path kept."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("twilio.com"):
        return url
    base = urlsplit(api_base_url.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))


class CallbackHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` that may talk to another host and remembers the last response.

    The last response is kept per thread, because one dialer (and its client) serves the
    dispatcher's threads at once and each must read the headers of its own request.
    """

    def __init__(self, api_base_url: str | None = None, timeout: float | None = 10.0) -> None:
        super().__init__(timeout=timeout)
        self.api_base_url = api_base_url
        self._local = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.api_base_url:
            url = rebase_url(url, self.api_base_url)
        self._local.last = None
        response: Response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        self._local.last = response
        return response

    def last_response(self) -> Response | None:
        """Return this thread's last response (None before the first, or after an error)."""
        return getattr(self._local, "last", None)


def last_response_header(http_client: Any, name: str) -> str | None:
    """Read a header of this thread's last response, when the client can tell (ours can)."""
    last = getattr(http_client, "last_response", None)
    response = last() if callable(last) else None
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    # requests' CaseInsensitiveDict, or a plain dict from an injected client.
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return None if value is None else str(value)
