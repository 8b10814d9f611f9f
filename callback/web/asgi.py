"""The Twilio webhooks as bare ASGI endpoints, and the app that answers them first.

The gather webhook runs once for every question of every call, and Twilio waits on it while
the caller hears silence. Through Starlette's middleware, router, ``Request`` and ``Response``
a gather cost ~40 µs more than read from the ASGI scope and answered with two ``send`` calls
(docs/web.md). So the webhooks are endpoints of their own (``Webhook``), and ``WebApp`` hands
``POST /twilio/<kind>/<id>`` to them before Starlette's stack. Starlette keeps the rest:
``/health``, ``/openapi.json``, the 404s and 405s, and the same endpoints through its router
when the app is mounted under a root path. Its route table still lists them all, and the
OpenAPI document is made from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from callback.web import forms

TWIML_TYPE = b"text/xml; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
SIGNATURE_HEADER = b"x-twilio-signature"
#: Present when a Webhook Rule signed the request with a shared key: which, and how.
SIGNATURE_SETTINGS_HEADER = b"x-twilio-webhooks-signature-settings"
_HEADERS = (b"content-type", b"content-length", SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER)


# Neither dataclass is frozen: a frozen one's __init__ sets each field through
# object.__setattr__, a microsecond per request for nothing.


@dataclass(slots=True)
class Incoming:
    """A webhook request, read and its signature checked."""

    attempt_id: int
    form: forms.Form
    scope: Scope

    def query(self) -> Mapping[str, str]:
        """The URL's query parameters."""
        return forms.query(self.scope)


@dataclass(slots=True)
class Reply:
    """What a webhook answers, and what it does once the answer is sent (on a thread)."""

    status: int
    body: bytes = b""
    content_type: bytes = TEXT_TYPE
    then: Callable[[], None] | None = None

    async def send(self, send: Send) -> None:
        headers = []
        if self.status != 204:  # no content: no length or type either (RFC 9110 8.6)
            headers = [(b"content-length", str(len(self.body)).encode()),
                       (b"content-type", self.content_type)]  # fmt: skip
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class Webhook:
    """One signed webhook: read the request, check it, run ``work`` and send its reply.

    ``verifier()`` gives the object that checks signatures (``refusal(path, query, form,
    signature, settings)``), raising an ``HTTPException`` when the webhooks are off; ``work``
    turns a checked request into a ``Reply``. Every refusal is plain text naming what is wrong,
    in the order Starlette's endpoints gave them: the path's id (400), the webhooks being
    available (404, 503), the body (415, 413, 400), the signature (403), required fields (400).
    """

    def __init__(
        self,
        verifier: Callable[[], Any],
        work: Callable[[Any, Incoming], Awaitable[Reply]],
        required: tuple[str, ...],
    ) -> None:
        self.verifier = verifier
        self.work = work
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a route of Starlette's router, which has matched the path's attempt id."""
        await self.answer(scope, receive, send, str(scope["path_params"].get("attempt_id", "")))

    async def answer(self, scope: Scope, receive: Receive, send: Send, raw_id: str) -> None:
        try:
            attempt_id = forms.attempt_id(raw_id)
            verifier = self.verifier()
            content_type, length, signature, settings = forms.headers(scope, *_HEADERS)
            form = forms.parse_form(await forms.read_body(content_type, length, receive))
            query = scope["query_string"].decode("latin-1")
            refusal = verifier.refusal(scope["path"], query, form, signature, settings)
            if refusal is not None:
                raise HTTPException(403, refusal)
            forms.require(form, *self.required)
            reply = await self.work(verifier, Incoming(attempt_id, form, scope))
        except HTTPException as exc:
            reply = Reply(exc.status_code, exc.detail.encode())
        except forms.Disconnected:
            return
        await reply.send(send)
        if reply.then is not None:
            await anyio.to_thread.run_sync(reply.then)


class WebApp(Starlette):
    """Starlette, with ``POST /twilio/<kind>/<id>`` handed straight to its ``Webhook``."""

    def __init__(self, *, webhooks: Mapping[str, Webhook], **options: Any) -> None:
        super().__init__(**options)
        self.webhooks = dict(webhooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and scope["path"].startswith("/twilio/")
        ):
            kind, slash, raw_id = scope["path"][len("/twilio/") :].partition("/")
            webhook = self.webhooks.get(kind)
            if slash and raw_id and webhook is not None and "/" not in raw_id:
                await webhook.answer(scope, receive, send, raw_id)
                return
        await super().__call__(scope, receive, send)
