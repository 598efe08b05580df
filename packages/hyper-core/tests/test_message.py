"""Request and Response, and the public surface of hyper_core.http."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hyper_core.http
from hyper_core.body import Empty, Full
from hyper_core.error import InvalidHeader, InvalidMethod, InvalidStatusCode, InvalidUri
from hyper_core.http import (
    Extensions,
    Headers,
    Method,
    Request,
    Response,
    StatusCode,
    Uri,
    UriForm,
    Version,
)


def test_all_is_exactly_the_public_surface() -> None:
    assert sorted(hyper_core.http.__all__) == [
        "Extensions",
        "HeaderInit",
        "Headers",
        "Method",
        "Request",
        "Response",
        "StatusCode",
        "Uri",
        "UriForm",
        "Version",
    ]
    public = {name for name in vars(hyper_core.http) if not name.startswith("_")}
    # Besides __all__, only the private submodules (and `annotations`) are visible.
    assert public - set(hyper_core.http.__all__) == {"annotations"}
    for name in hyper_core.http.__all__:
        if name == "HeaderInit":  # a type alias: no __module__ of its own
            assert hyper_core.http.HeaderInit is hyper_core.http._headers.HeaderInit
            continue
        assert getattr(hyper_core.http, name).__module__.startswith("hyper_core.http._")


@pytest.mark.parametrize(
    "first", ["hyper_core.http", "hyper_core.body", "hyper_core.http._message"]
)
def test_http_and_body_import_in_either_order(first: str) -> None:
    # http and body refer to each other (trailers are Headers; a Request's
    # default body is Empty): whichever is imported first, no cycle breaks.
    code = (
        f"import {first}, hyper_core.http, hyper_core.body; print(hyper_core.http.Request().body)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Empty" in result.stdout


# -- Request --------------------------------------------------------------------


def test_request_defaults() -> None:
    request = Request()
    assert request.method is Method.GET
    assert request.uri == Uri("/")
    assert request.version is Version.HTTP_11
    assert isinstance(request.headers, Headers)
    assert len(request.headers) == 0
    assert isinstance(request.body, Empty)
    assert len(request.extensions) == 0


def test_request_converts_its_arguments() -> None:
    request = Request(
        "POST",
        "http://example.com/upload?x=1",
        headers=[("Content-Type", "text/plain")],
        body=Full(b"hello"),
        version=Version.HTTP_2,
    )
    assert request.method is Method.POST
    assert type(request.uri) is Uri
    assert request.uri.form is UriForm.ABSOLUTE
    assert request.uri.host == "example.com"
    assert request.headers.get("content-type") == "text/plain"
    assert isinstance(request.body, Full)
    assert request.version is Version.HTTP_2


def test_request_accepts_ready_made_parts() -> None:
    uri = Uri("/x")
    request = Request(Method("PURGE"), uri, headers={"a": "1"})
    assert request.method == "PURGE"
    assert request.uri is uri
    assert Request(uri=b"/bytes").uri.path == "/bytes"


def test_request_copies_given_headers() -> None:
    shared = Headers([("a", "1")])
    request = Request(headers=shared)
    request.headers.append("b", "2")
    assert shared.items() == [("a", "1")]
    assert request.headers.items() == [("a", "1"), ("b", "2")]


def test_request_uses_given_extensions() -> None:
    extensions = Extensions()
    extensions.insert(7)
    request = Request(extensions=extensions)
    assert request.extensions is extensions
    assert request.extensions[int] == 7


def test_extensions_are_made_once_on_first_use() -> None:
    request = Request()
    first = request.extensions
    first.insert("x")
    assert request.extensions is first
    replacement = Extensions()
    request.extensions = replacement
    assert request.extensions is replacement
    response = Response()
    assert response.extensions is response.extensions


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "GE T"}, InvalidMethod),
        ({"uri": "/a b"}, InvalidUri),
        ({"headers": [("a", "b\r\nc: d")]}, InvalidHeader),
        ({"headers": [("a b", "c")]}, InvalidHeader),
    ],
)
def test_request_rejects_invalid_parts(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Request(**kwargs)  # type: ignore[call-overload]


def test_request_from_parts_neither_converts_nor_copies() -> None:
    headers = Headers._from_trusted([(b"host", b"h")])
    uri = Uri._from_origin_trusted(b"/p?q")
    body = object()
    request = Request.from_parts(Method.GET, uri, Version.HTTP_10, headers, body)
    assert request.method is Method.GET
    assert request.uri is uri
    assert request.version is Version.HTTP_10
    assert request.headers is headers
    assert request.body is body
    assert len(request.extensions) == 0
    extensions = Extensions()
    assert (
        Request.from_parts(Method.GET, uri, Version.HTTP_11, headers, body, extensions).extensions
        is extensions
    )


def test_request_is_generic_in_its_body() -> None:
    request: Request[bytes] = Request[bytes](body=b"raw")
    assert request.body == b"raw"
    assert Request[Full].__origin__ is Request  # type: ignore[attr-defined]


def test_request_fields_are_assignable_but_fixed() -> None:
    request = Request()
    request.method = Method.HEAD
    request.body = Full(b"x")  # type: ignore[assignment]
    assert request.method is Method.HEAD
    with pytest.raises(AttributeError):
        request.other = 1  # type: ignore[attr-defined]


def test_request_repr() -> None:
    assert repr(Request("PUT", "http://h/a?b")) == "<Request PUT http://h/a?b HTTP/1.1>"


# -- Response -------------------------------------------------------------------


def test_response_defaults() -> None:
    response = Response()
    assert response.status is StatusCode.OK
    assert response.version is Version.HTTP_11
    assert len(response.headers) == 0
    assert isinstance(response.body, Empty)
    assert len(response.extensions) == 0


def test_response_converts_its_arguments() -> None:
    response = Response(
        404,
        headers={"Content-Type": "text/plain"},
        body=Full(b"missing"),
        version=Version.HTTP_2,
    )
    assert response.status is StatusCode.NOT_FOUND
    assert response.headers["content-type"] == "text/plain"
    assert isinstance(response.body, Full)
    assert response.version is Version.HTTP_2
    assert Response(StatusCode.NO_CONTENT).status is StatusCode.NO_CONTENT


def test_response_copies_given_headers() -> None:
    shared = Headers([("server", "hyper")])
    Response(headers=shared).headers.insert("server", "other")
    assert shared.items() == [("server", "hyper")]


@pytest.mark.parametrize("status", [99, 1000, 0])
def test_response_rejects_invalid_status(status: int) -> None:
    with pytest.raises(InvalidStatusCode):
        Response(status)


def test_response_rejects_invalid_header() -> None:
    with pytest.raises(InvalidHeader, match="'Location'"):
        Response(302, headers=[("Location", "/a\r\nSet-Cookie: evil=1")])


def test_response_from_parts_neither_converts_nor_copies() -> None:
    headers = Headers._from_trusted([(b"content-length", b"0")])
    body = object()
    response = Response.from_parts(StatusCode.CREATED, Version.HTTP_2, headers, body)
    assert response.status is StatusCode.CREATED
    assert response.version is Version.HTTP_2
    assert response.headers is headers
    assert response.body is body
    extensions = Extensions()
    assert (
        Response.from_parts(StatusCode.OK, Version.HTTP_11, headers, body, extensions).extensions
        is extensions
    )


def test_response_repr() -> None:
    assert repr(Response(404)) == "<Response 404 Not Found HTTP/1.1>"
    assert repr(Response(299)) == "<Response 299 HTTP/1.1>"


def test_response_slots() -> None:
    with pytest.raises(AttributeError):
        Response().other = 1  # type: ignore[attr-defined]


def test_each_message_gets_its_own_default_parts() -> None:
    a, b = Response(), Response()
    assert a.headers is not b.headers
    a.headers.append("x", "1")
    assert len(b.headers) == 0
    assert a.extensions is not b.extensions


@pytest.mark.parametrize("message", [Request("GET", "/"), Response(200)])
def test_extension_read_makes_no_map(message: Request[Empty] | Response[Empty]) -> None:
    class Marker:
        pass

    assert message.extension(Marker) is None
    assert message._extensions is None  # a read made no map
    marker = Marker()
    message.extensions.insert(marker)
    assert message.extension(Marker) is marker
