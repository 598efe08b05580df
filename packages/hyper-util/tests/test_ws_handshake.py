"""The WebSocket client's opening handshake as values: URL, request fields, response checks.

What belongs here: ``hyper_util.ws._handshake`` without I/O: which URLs are
WebSocket URLs and what they become, the exact fields of the HTTP/1.1 and
HTTP/2 requests (RFC 6455 section 4.1, RFC 8441 section 5), and every rule
the server's answer is held to (accept token, subprotocol, extensions).
The expected accept values are computed here from the RFC's recipe (and
RFC 6455's own example), not by the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from typing import Any

import pytest

from hyper_core.client.conn import http2
from hyper_core.error import InvalidUri, UserError
from hyper_core.http import Headers, Version
from hyper_util.client.legacy import HttpConnector
from hyper_util.ws import HandshakeError, close_code_name, connect
from hyper_util.ws._handshake import Offer, Target, check_response


def rfc_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


def test_rfc6455_example_accept() -> None:
    assert rfc_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("url", "secure", "host", "port", "uri", "host_header"),
    [
        ("ws://example.com", False, "example.com", 80, "http://example.com/", "example.com"),
        (
            "wss://example.com/a?b=1",
            True,
            "example.com",
            443,
            "https://example.com/a?b=1",
            "example.com",
        ),
        ("ws://h:8080/x", False, "h", 8080, "http://h:8080/x", "h:8080"),
        ("wss://h:443/", True, "h", 443, "https://h:443/", "h"),
        ("ws://h:443/", False, "h", 443, "http://h:443/", "h:443"),
        ("ws://[::1]:9000/p", False, "::1", 9000, "http://[::1]:9000/p", "[::1]:9000"),
        ("http://h/p", False, "h", 80, "http://h/p", "h"),
        ("HTTPS://h/p", True, "h", 443, "https://h/p", "h"),
        ("ws://h/p#fragment", False, "h", 80, "http://h/p", "h"),
    ],
)
def test_target(url: str, secure: bool, host: str, port: int, uri: str, host_header: str) -> None:
    target = Target(url)
    assert (target.secure, target.host, target.port) == (secure, host, port)
    assert str(target.uri) == uri
    assert target.host_header == host_header
    assert target.ws_url.startswith("wss://" if secure else "ws://")


@pytest.mark.parametrize("url", ["ftp://h/", "/path", "h:80", "ws:///p", "ws://h:99999/"])
def test_not_a_websocket_url(url: str) -> None:
    with pytest.raises(InvalidUri):
        Target(url)


def test_http1_request_fields_in_order() -> None:
    offer = Offer(subprotocols=["chat", "superchat"], headers={"Origin": "http://o.test"})
    request = offer.http1_request(Target("ws://h:8080/chat?room=1"))
    assert request.method == "GET"
    assert str(request.uri) == "/chat?room=1"
    assert request.version is Version.HTTP_11
    key = request.headers["sec-websocket-key"]
    assert len(base64.b64decode(key)) == 16
    assert request.headers.items() == [
        ("host", "h:8080"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", key),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat, superchat"),
        ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
        ("Origin", "http://o.test"),
    ]
    # A fresh key for every handshake (RFC 6455 section 4.1: randomly selected).
    assert Offer().key != Offer().key


def test_http1_request_keeps_a_callers_host() -> None:
    request = Offer(headers={"Host": "virtual.test"}).http1_request(Target("ws://127.0.0.1:1/"))
    assert request.headers.get_all("host") == ["virtual.test"]


def test_http2_request_is_an_extended_connect() -> None:
    offer = Offer(subprotocols=["chat"], per_message_deflate=False, headers={"x-a": "1"})
    request = offer.http2_request(Target("wss://h/ws?x=1"))
    assert request.method == "CONNECT"
    assert request.version is Version.HTTP_2
    assert str(request.uri) == "https://h/ws?x=1"  # :scheme https, :path /ws?x=1
    protocol = request.extensions.get(http2.Protocol)
    assert protocol is not None
    assert protocol.as_str() == "websocket"
    # RFC 8441 section 5: no key, no Upgrade, no Connection.
    assert request.headers.items() == [
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat"),
        ("x-a", "1"),
    ]


@pytest.mark.parametrize(
    "name", ["Upgrade", "connection", "Sec-WebSocket-Key", "sec-websocket-extensions"]
)
def test_callers_headers_cannot_take_the_handshakes_fields(name: str) -> None:
    with pytest.raises(UserError, match="handshake writes"):
        Offer(headers={name: "x"})


@pytest.mark.parametrize("subprotocols", [["a b"], ["chat,x"], [""], "chat"])
def test_subprotocols_must_be_tokens(subprotocols: list[str] | str) -> None:
    with pytest.raises(UserError):
        Offer(subprotocols=subprotocols)


def h101(offer: Offer, *extra: tuple[str, str]) -> Headers:
    return Headers(
        [
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Accept", rfc_accept(offer.key).decode()),
            *extra,
        ]
    )


def test_a_correct_101_with_subprotocol_and_deflate() -> None:
    offer = Offer(subprotocols=["chat", "other"])
    headers = h101(
        offer,
        ("Sec-WebSocket-Protocol", "other"),
        (
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        ),
    )
    subprotocol, extensions = check_response(offer, headers, http2_=False)
    assert subprotocol == "other"
    (deflate,) = extensions
    assert deflate is offer.deflate
    assert deflate.enabled()
    assert deflate.client_max_window_bits == 10
    assert deflate.server_no_context_takeover


def test_no_subprotocol_and_no_extension_chosen() -> None:
    offer = Offer(subprotocols=["chat"])
    assert check_response(offer, h101(offer), http2_=False) == (None, [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Upgrade": "h2c"}, "Upgrade"),
        ({"Connection": "keep-alive"}, "Connection"),
        ({"Sec-WebSocket-Accept": "AAAA"}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": None}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Protocol": "unknown"}, "not offered"),
        ({"Sec-WebSocket-Protocol": "chat, other"}, "several"),
        ({"Sec-WebSocket-Extensions": "x-custom"}, "not offered"),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate, permessage-deflate"},
            "not offered",
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits=8"},
            "parameters",
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=x"},
            "parameters",
        ),
    ],
)
def test_a_wrong_101_is_a_handshake_error(change: dict[str, str | None], message: str) -> None:
    offer = Offer(subprotocols=["chat", "other"])
    headers = h101(offer)
    for name, value in change.items():
        headers.remove(name)
        if value is not None:
            headers[name] = value
    with pytest.raises(HandshakeError, match=message):
        check_response(offer, headers, http2_=False)


def test_deflate_accepted_without_an_offer_is_refused() -> None:
    offer = Offer(per_message_deflate=False)
    with pytest.raises(HandshakeError, match="not offered"):
        check_response(
            offer, h101(offer, ("Sec-WebSocket-Extensions", "permessage-deflate")), http2_=False
        )


def test_http2_answer_needs_no_accept() -> None:
    offer = Offer(subprotocols=["chat"])
    headers = Headers([("sec-websocket-protocol", "chat")])
    assert check_response(offer, headers, http2_=True) == ("chat", [])


def test_close_code_names() -> None:
    assert close_code_name(1000) == "normal closure"
    assert close_code_name(1009) == "message too big"
    assert close_code_name(3001) == "registered"
    assert close_code_name(4321) == "private use"
    assert close_code_name(2000) == "unknown"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"open_timeout": 0}, ValueError),
        ({"close_timeout": -1}, ValueError),
        ({"max_message_size": 0}, ValueError),
        ({"max_queue": 0}, ValueError),
        ({"ping_interval": 0}, ValueError),
        ({"connector": HttpConnector(), "ssl_context": ssl.create_default_context()}, UserError),
        ({"headers": {"Sec-WebSocket-Protocol": "chat"}}, UserError),
    ],
)
def test_connect_checks_its_arguments_at_once(options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        connect("ws://127.0.0.1:9/", **options)
