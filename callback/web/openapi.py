"""The OpenAPI 3.1 description of the app, built from the same table as its routes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callback import __version__

TEXT = "text/plain"
TWIML = "text/xml"
JSON = "application/json"


@dataclass(frozen=True)
class Field:
    """A form field of a request body."""

    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the OpenAPI document tells it."""

    method: str
    path: str
    operation_id: str
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    form: tuple[Field, ...] = ()
    #: Query parameters: name -> description (all optional).
    query: Mapping[str, str] = field(default_factory=dict)
    #: Status code -> (description, media type or "" for no body).
    responses: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    #: True when the request must carry X-Twilio-Signature.
    signed: bool = False

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def document(operations: Iterable[Operation]) -> dict[str, Any]:
    """Return the OpenAPI document (a JSON-ready dict) describing ``operations``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callback",
            "version": __version__,
            "description": "Voice webhooks of callback's IVR surveys, and its health check.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "twilioSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Twilio-Signature",
                    "description": "HMAC-SHA1 of the public URL and the form fields with the "
                    "account's auth token (https://www.twilio.com/docs/usage/security).",
                }
            }
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        out["description"] = op.description
    if op.tags:
        out["tags"] = list(op.tags)
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            "description": "The call attempt's id, as the dialer put it in the webhook URL.",
        }
        for name in op.path_params
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
         "description": text}
        for name, text in op.query.items()
    ]  # fmt: skip
    if parameters:
        out["parameters"] = parameters
    if op.form:
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            f.name: {"type": "string", "description": f.description}
                            for f in op.form
                        },
                        "required": [f.name for f in op.form if f.required],
                        # Twilio sends many more fields; every one is signed and accepted.
                        "additionalProperties": {"type": "string"},
                    }
                }
            },
        }
    if op.signed:
        out["security"] = [{"twilioSignature": []}]
    out["responses"] = {
        str(code): {"description": text, **({"content": {media: {}}} if media else {})}
        for code, (text, media) in sorted(op.responses.items())
    }
    return out
