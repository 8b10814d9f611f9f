"""A fake of Twilio's REST API for Calls: a real HTTP server on 127.0.0.1, for tests.

It speaks the slice the dialer uses (create, fetch and update a Call), checks Basic auth and
required parameters like Twilio (same status codes, error codes and error body), records
every request, and fails on demand: 429 with Retry-After, or 5xx, for the next N requests.
With ``on_create`` it also plays the rest of each call (webhooks to our server), as Twilio
does once a call is queued.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from callback_twilio.fake_phone import (
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_FROM,
    DEFAULT_PUBLIC_BASE_URL,
    TwilioPhone,
    rfc2822,
)

_CALLS = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC\w+)/Calls\.json$")
_CALL = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC\w+)/Calls/(?P<sid>CA\w+)\.json$")
# E.164, or the SIP and client addresses Twilio also dials.
_DIALABLE = re.compile(r"^(\+[1-9]\d{6,14}|sip:.+|client:.+)$")
_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
#: Twilio's answer to updating a call that already ended.
INVALID_CALL_STATE = 21220


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake API received, and what it answered."""

    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]
    #: The Basic auth user when the credentials were right, else None.
    username: str | None
    status: int
    #: The JSON the fake answered.
    response: dict[str, Any]

    def param(self, name: str) -> str | None:
        """Return a form parameter's (first) value, or None."""
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    code: int
    message: str


class FakeTwilioAPI:
    """A local HTTP server that answers like Twilio's REST API for Calls.

    Use as a context manager (or ``start``/``stop``). ``base_url`` goes into the dialer's
    ``api_base_url`` setting; ``settings()`` returns a whole ``[dialers.twilio]`` table.
    ``api_keys`` maps API key SIDs to secrets that authenticate too; ``caller_ids``, when
    given, are the only From numbers accepted (else 21210, as for an unverified caller id).

    ``on_create(sid)``, when given, plays Twilio's part of every call created: it runs on a
    thread of its own once the create request has been answered (Twilio, too, calls back
    only after it has queued the call), so it may post webhooks (``phone(sid)``) and move the
    call on (``set_call``) while the dialer carries on. ``wait_for_calls`` waits for those
    threads; what they raised is kept in ``call_errors`` for the test to assert on.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        api_keys: Mapping[str, str] | None = None,
        caller_ids: Iterable[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        on_create: Callable[[str], None] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys = dict(api_keys or {})
        self.caller_ids = set(caller_ids) if caller_ids is not None else None
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_create = on_create
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._calls: dict[str, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._stalls: list[float] = []
        self._rejected: dict[str, tuple[int, int, str]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Calls whose ``on_create`` has not returned yet, counted from before the create
        #: request is answered, so that ``wait_for_calls`` right after it cannot miss one.
        self._playing = 0
        self._played = threading.Condition(self._lock)
        self._call_errors: list[Exception] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeTwilioAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeTwilioAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeTwilioAPI is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what tests arrange and inspect ----------------------------------------------------

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Return a ``[dialers.twilio]`` table that points the dialer at this fake."""
        table: dict[str, Any] = {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from_number": DEFAULT_FROM,
            "public_base_url": DEFAULT_PUBLIC_BASE_URL,
            "api_base_url": self.base_url,
        }
        table.update(overrides)
        return table

    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        *,
        retry_after: str | int | None = None,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (and a Retry-After header)."""
        default = (20429, "Too Many Requests") if status == 429 else (status, "Service Unavailable")
        failure = _Failure(
            status,
            None if retry_after is None else str(retry_after),
            code if code is not None else default[0],
            message or default[1],
        )
        with self._lock:
            self._failures.extend([failure] * count)

    def stall_next(self, seconds: float) -> None:
        """Create the next call, then hold its answer back ``seconds``: the call exists (and
        is played) while the dialer, if its timeout is shorter, never learns its SID."""
        with self._lock:
            self._stalls.append(seconds)

    def reject_number(
        self, to: str, *, status: int = 400, code: int = 21211, message: str | None = None
    ) -> None:
        """Refuse calls to ``to`` (by default as Twilio refuses an invalid 'To' number)."""
        text = message or f"The 'To' number {to} is not a valid phone number."
        with self._lock:
            self._rejected[to] = (status, code, text)

    @property
    def call_errors(self) -> list[Exception]:
        """What ``on_create`` raised, one entry per call whose playing failed."""
        with self._lock:
            return list(self._call_errors)

    def wait_for_calls(self, timeout: float = 10.0) -> bool:
        """Wait until every ``on_create`` started so far has returned; False on timeout."""
        with self._played:
            return self._played.wait_for(lambda: self._playing == 0, timeout)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        """Every call created so far, as the JSON Twilio would return for it."""
        with self._lock:
            return {sid: dict(call) for sid, call in self._calls.items()}

    def created_params(self, sid: str) -> RecordedRequest:
        """Return the create request that made call ``sid``."""
        for request in self.requests:
            if request.status == 201 and request.response.get("sid") == sid:
                return request
        raise KeyError(sid)

    def set_call(self, sid: str, status: str, **fields: Any) -> None:
        """Move call ``sid`` on, e.g. ``set_call(sid, "completed", answered_by="human")``."""
        now = self.clock()
        with self._lock:
            call = self._calls[sid]
            call["status"] = status
            call["date_updated"] = rfc2822(now)
            if status == "in-progress" and call.get("start_time") is None:
                call["start_time"] = rfc2822(now)
            if status in _FINAL:
                call["end_time"] = rfc2822(now)
            call.update(fields)

    def phone(self, sid: str) -> TwilioPhone:
        """Return a ``TwilioPhone`` for call ``sid``, with the webhook URLs it was created with."""
        created = self.created_params(sid)
        return TwilioPhone(
            self.auth_token,
            voice_url=created.param("Url") or "",
            status_url=created.param("StatusCallback"),
            amd_url=created.param("AsyncAmdStatusCallback"),
            call_sid=sid,
            account_sid=self.account_sid,
            to=created.param("To") or "",
            from_=created.param("From") or DEFAULT_FROM,
        )

    def client(self) -> Any:
        """Return an official ``twilio.rest.Client`` that talks to this fake."""
        from twilio.rest import Client

        from callback_twilio.transport import CallbackHttpClient

        return Client(
            self.account_sid, self.auth_token, http_client=CallbackHttpClient(self.base_url)
        )

    # -- the server side -------------------------------------------------------------------

    def _authenticate(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if user == self.account_sid and password == self.auth_token:
            return user
        if user in self.api_keys and password == self.api_keys[user]:
            return user
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        url = urlsplit(handler.path)
        form = parse_qs(body, keep_blank_values=True)
        headers = {k: v for k, v in handler.headers.items()}
        username = self._authenticate(handler.headers.get("Authorization"))
        status, payload, extra = self._answer(handler.command, url.path, form, username)
        with self._lock:
            self._requests.append(
                RecordedRequest(handler.command, url.path, form, headers, username, status, payload)
            )
        data = json.dumps(payload).encode()
        sid = str(payload["sid"]) if status == 201 else None
        on_create = self.on_create if sid is not None else None
        with self._lock:
            stall = self._stalls.pop(0) if sid is not None and self._stalls else None
            if on_create is not None:
                self._playing += 1
        if stall is None:
            self._respond(handler, status, data, extra)
        else:
            # The call is queued and goes on; only its answer is late (or never arrives).
            if on_create is not None and sid is not None:
                self._play(on_create, sid)
            time.sleep(stall)
            try:
                self._respond(handler, status, data, extra)
            except OSError:  # the dialer gave up waiting and closed the connection
                pass
        if on_create is not None and sid is not None and stall is None:
            self._play(on_create, sid)

    @staticmethod
    def _respond(
        handler: BaseHTTPRequestHandler, status: int, data: bytes, extra: Mapping[str, str]
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _play(self, on_create: Callable[[str], None], sid: str) -> None:
        def run() -> None:
            try:
                on_create(sid)
            except Exception as exc:  # handed to the test, not lost in a thread
                with self._lock:
                    self._call_errors.append(exc)
            finally:
                with self._played:
                    self._playing -= 1
                    self._played.notify_all()

        threading.Thread(target=run, name=f"twilio-call-{sid}", daemon=True).start()

    @staticmethod
    def _error(status: int, code: int, message: str) -> dict[str, Any]:
        # Twilio's error body (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions).
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    def _answer(
        self, method: str, path: str, form: dict[str, list[str]], username: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, self._error(failure.status, failure.code, failure.message), extra
        if username is None:
            return 401, self._error(401, 20003, "Authenticate"), {"WWW-Authenticate": "Basic"}
        calls, call = _CALLS.match(path), _CALL.match(path)
        match = calls or call
        if match is None or match["account"] != self.account_sid:
            return 404, self._error(404, 20404, f"The requested resource {path} was not found"), {}
        if calls and method == "POST":
            return self._create(form)
        if call and method == "GET":
            return self._fetch(call["sid"])
        if call and method == "POST":
            return self._update(call["sid"], form)
        return 405, self._error(405, 20004, "Method not allowed"), {}

    def _create(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        def one(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values and values[0] != "" else None

        to, from_ = one("To"), one("From")
        # Twilio's codes for missing parameters: 21201 To, 21213 From, 21205 Url.
        if to is None:
            return 400, self._error(400, 21201, "No 'To' number is specified"), {}
        if from_ is None:
            return 400, self._error(400, 21213, "No 'From' number is specified"), {}
        if not (one("Url") or one("Twiml") or one("ApplicationSid")):
            return 400, self._error(400, 21205, "Url parameter is required."), {}
        with self._lock:
            rejected = self._rejected.get(to)
        if rejected is not None:
            return rejected[0], self._error(*rejected), {}
        if not _DIALABLE.match(to):
            message = f"The 'To' number {to} is not a valid phone number."
            return 400, self._error(400, 21211, message), {}
        if self.caller_ids is not None and from_ not in self.caller_ids:
            message = f"The source phone number provided, {from_}, is not yet verified."
            return 400, self._error(400, 21210, message), {}
        sid = "CA" + uuid.uuid4().hex
        now = rfc2822(self.clock())
        call: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "to": to,
            "to_formatted": to,
            "from": from_,
            "from_formatted": from_,
            "status": "queued",
            "direction": "outbound-api",
            "answered_by": None,
            "duration": None,
            "date_created": now,
            "date_updated": now,
            "start_time": None,
            "end_time": None,
            "price": None,
            "price_unit": "USD",
            "parent_call_sid": None,
            "phone_number_sid": None,
            "forwarded_from": None,
            "caller_name": None,
            "group_sid": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json",
            "subresource_uris": {},
        }
        with self._lock:
            self._calls[sid] = call
        return 201, dict(call), {}

    def _fetch(self, sid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            call = self._calls.get(sid)
        if call is None:
            return 404, self._error(404, 20404, f"The requested resource {sid} was not found"), {}
        return 200, dict(call), {}

    def _update(
        self, sid: str, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            call = self._calls.get(sid)
        if call is None:
            return 404, self._error(404, 20404, f"The requested resource {sid} was not found"), {}
        statuses = form.get("Status") or []
        wanted = statuses[0] if statuses else None
        current = call["status"]
        if wanted is not None:
            if wanted not in ("completed", "canceled"):
                return 400, self._error(400, 21218, f"Invalid value for Status: {wanted}"), {}
            if current in _FINAL:
                return 400, self._error(400, INVALID_CALL_STATE, "Invalid call state"), {}
            # "canceled" leaves a call in progress alone; "completed" ends any call, and one
            # that was never answered ends as canceled (an assumption of this fake).
            if current in ("queued", "initiated", "ringing"):
                self.set_call(sid, "canceled")
            elif wanted == "completed":
                self.set_call(sid, "completed")
        return self._fetch(sid)
