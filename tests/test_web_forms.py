"""Reading webhook requests from the ASGI scope: the form, the query, the body, the headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

from callback.web import forms

#: Text that urlencoded bodies are made of, and what breaks them: escapes, good and bad.
PIECES = st.lists(
    st.sampled_from(
        ["&", "=", "+", "%", "%2B", "%20", "%E7%AD%BE", "%E7%AD", "%zz", "a", "签", " "]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=PIECES | st.text(max_size=20))
def test_pairs_are_parse_qsl_s(text: str) -> None:
    assert forms.pairs(text) == parse_qsl(text, keep_blank_values=True)


@given(text=PIECES)
def test_the_query_is_read_as_starlette_reads_it(text: str) -> None:
    raw = text.encode("utf-8").decode("latin-1").encode("latin-1")
    assert forms.query({"query_string": raw}) == dict(QueryParams(raw).items())


def test_too_many_fields_are_refused_as_parse_qsl_refuses_them() -> None:
    text = "&".join(["a=1"] * forms.MAX_FIELDS)
    assert len(forms.parse_form(text.encode())) == 1
    with pytest.raises(HTTPException) as refused:
        forms.parse_form((text + "&b=2").encode())
    with pytest.raises(ValueError) as official:
        parse_qsl(text + "&b=2", max_num_fields=forms.MAX_FIELDS)
    assert refused.value.status_code == 400 and str(official.value) in refused.value.detail


def test_a_body_that_is_not_utf_8_is_a_400_naming_it() -> None:
    with pytest.raises(HTTPException) as refused:
        forms.parse_form(b"Digits=\xff")
    assert refused.value.status_code == 400 and "not valid form data" in refused.value.detail


def test_repeated_names_keep_every_value_for_the_signature() -> None:
    form = forms.parse_form(b"Digits=1&CallSid=CA1&Digits=2")
    assert form["Digits"] == "2" and form.getall("Digits") == ["1", "2"]
    assert form.getall("CallSid") == ["CA1"]
    single = forms.parse_form(b"Digits=1&CallSid=CA1")
    assert form.repeated and not single.repeated and single.getall("Digits") == ["1"]


def _read(messages: list[dict[str, Any]], content_type: str | None = forms.FORM_TYPE,
          length: str | None = None) -> bytes:  # fmt: skip
    queue = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(queue)

    return anyio.run(forms.read_body, content_type, length, receive)


def test_a_body_in_several_messages_is_read_whole() -> None:
    body = _read([{"type": "http.request", "body": b"a=1", "more_body": True},
                  {"type": "http.request", "body": b"&b=2", "more_body": False}])  # fmt: skip
    assert body == b"a=1&b=2"


def test_a_body_that_grows_too_large_is_a_413_before_it_is_all_read() -> None:
    chunk = {"type": "http.request", "body": b"1" * 40_000, "more_body": True}
    with pytest.raises(HTTPException) as refused:
        _read([chunk, chunk, {"type": "http.disconnect"}])
    assert refused.value.status_code == 413


@pytest.mark.parametrize(
    ("content_type", "length", "status"),
    [("application/json", None, 415), (None, None, 415),
     (forms.FORM_TYPE, str(forms.MAX_BODY_BYTES + 1), 413)],
)  # fmt: skip
def test_the_type_and_declared_length_are_checked_before_reading(
    content_type: str | None, length: str | None, status: int
) -> None:
    with pytest.raises(HTTPException) as refused:
        _read([], content_type, length)  # nothing is received
    assert refused.value.status_code == status


def test_a_client_gone_before_its_body_came_is_no_one_to_answer() -> None:
    with pytest.raises(forms.Disconnected):
        _read([{"type": "http.request", "body": b"a", "more_body": True},
               {"type": "http.disconnect"}])  # fmt: skip


@pytest.mark.parametrize("kind", [list, tuple, iter])
def test_headers_give_the_first_value_of_each_name(kind: Any) -> None:
    scope = {"headers": kind([(b"x-twilio-signature", b"first"), (b"content-type", b"a/b"),
                              [b"x-twilio-signature", b"second"]])}  # fmt: skip
    assert forms.headers(scope, b"x-twilio-signature", b"content-type", b"other") == [
        "first", "a/b", None
    ]  # fmt: skip


@pytest.mark.parametrize("raw", ["1", "7", "10", "2147483647"])
def test_an_attempt_id_is_a_whole_number(raw: str) -> None:
    assert forms.attempt_id(raw) == int(raw)


@pytest.mark.parametrize(
    "raw", ["", "0", "01", "-1", "+1", " 1", "1 ", "1.0", "abc", "2147483648", "12345678901",
            "١٢", "²", "1_000"],
)  # fmt: skip
def test_anything_else_is_a_400_naming_it(raw: str) -> None:
    with pytest.raises(HTTPException) as refused:
        forms.attempt_id(raw)
    assert refused.value.status_code == 400 and repr(raw) in refused.value.detail


def test_a_query_read_once_is_shared_and_cannot_be_changed() -> None:
    scope = {"query_string": b"at=trips.0"}
    first, again = forms.query(scope), forms.query(dict(scope))
    assert first is again and first == {"at": "trips.0"}
    with pytest.raises(TypeError):
        first["at"] = "case.0"  # type: ignore[index]
