"""Reading webhook requests strictly: the path's attempt id, the form body, required fields.

Every refusal is an ``HTTPException`` whose text names what is wrong, so a misconfigured
provider or proxy shows up in its request log as a sentence, not as a 500.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request

#: Twilio's webhook bodies are a few hundred bytes; anything near this is not Twilio.
MAX_BODY_BYTES = 64 * 1024
_ATTEMPT_ID = re.compile(r"[1-9][0-9]{0,9}")
#: attempts.id is an INTEGER: PostgreSQL refuses larger values outright, as a server error.
MAX_ATTEMPT_ID = 2**31 - 1
FORM_TYPE = "application/x-www-form-urlencoded"
#: Twilio sends about twenty fields at most.
MAX_FIELDS = 200


class Form(dict[str, str]):
    """Form fields by name (the last value, should a name repeat), plus ``getall``.

    Twilio's RequestValidator signs every value of a repeated name and asks the mapping for
    them with ``getall`` (Flask's MultiDict), then ``getlist``, then plain indexing, catching
    AttributeError at each step: answering the first spares it two exceptions per field.
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._all: dict[str, list[str]] = {}
        if len(self) < len(pairs):
            for name, value in pairs:
                self._all.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order (KeyError when none was)."""
        return self._all.get(name) or [self[name]]

    getlist = getall


def attempt_id(request: Request) -> int:
    """The ``{attempt_id}`` of the path as an int, or 400 naming it."""
    raw = str(request.path_params.get("attempt_id", ""))
    if not _ATTEMPT_ID.fullmatch(raw) or int(raw) > MAX_ATTEMPT_ID:
        raise HTTPException(
            400, f"attempt_id must be a whole number from 1 to {MAX_ATTEMPT_ID}, not {raw!r}"
        )
    return int(raw)


async def read_form(request: Request) -> Form:
    """The urlencoded body as a ``Form``. Blank values are kept: Twilio signs them too."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise HTTPException(415, f"the body must be {FORM_TYPE}, not {kind or 'missing'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, f"the body is not valid form data: {exc}") from None
    return Form(pairs)


def require(form: Form, *names: str) -> None:
    """400 naming the first of ``names`` that the form lacks or leaves empty."""
    for name in names:
        if not form.get(name):
            raise HTTPException(400, f"the form field {name} is missing")


def first(form: Form, name: str) -> str | None:
    """The value of ``name`` (the last one, should a provider repeat it), or None."""
    value = form.get(name)
    return value if value else None
