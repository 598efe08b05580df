"""Wrong ASGI messages and failing applications: a clear log line, never a corrupt stream.

What belongs here: each kind of invalid message an app can send (a second
start, body before start, a bad status, header names or values with CR, LF
or NUL, a Content-Length the body contradicts, an unknown type), an app that
raises before and after its response started, and one that returns without
finishing. Before anything was sent the client gets a 500; after, HTTP/1
closes the connection and HTTP/2 resets the stream. Each case logs an ERROR
on ``hyper_util.asgi``, with the traceback when the app raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import pytest
from asgi_helpers import running

from hyper_util.asgi import Receive, Scope, Send

pytestmark = pytest.mark.anyio

Steps = Callable[[Send], Awaitable[None]]
START = {"type": "http.response.start", "status": 200, "headers": []}


def _app(steps: Steps) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await steps(send)

    return app


async def _second_start(send: Send) -> None:
    await send(START)
    await send(START)


async def _body_first(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"x"})


def _start_with(**fields: Any) -> Steps:
    async def steps(send: Send) -> None:
        await send({**START, **fields})
        await send({"type": "http.response.body", "body": b"x"})

    return steps


async def _length_short(send: Send) -> None:
    await send({**START, "headers": [(b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"12345"})


async def _length_long(send: Send) -> None:
    await send({**START, "headers": [(b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"12345"})


async def _unknown_type(send: Send) -> None:
    await send({"type": "http.response.bogus"})


async def _raises_before(send: Send) -> None:
    raise ValueError("boom before the response")


async def _returns_early(send: Send) -> None:
    return


async def _str_body(send: Send) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": "not bytes"})


BEFORE_ANYTHING_SENT = {
    "second-start": (_second_start, "http.response.start sent twice"),
    "body-before-start": (_body_first, "before http.response.start"),
    "status-99": (_start_with(status=99), "invalid status 99"),
    "status-600": (_start_with(status=600), "invalid status 600"),
    "status-str": (_start_with(status="200"), "invalid status '200'"),
    "header-value-crlf": (
        _start_with(headers=[(b"x-a", b"1\r\nx-injected: 2")]),
        "invalid value for header 'x-a': control character",
    ),
    "header-value-lf": (
        _start_with(headers=[(b"x-a", b"1\nx")]),
        "invalid value for header 'x-a': control character",
    ),
    "header-value-nul": (
        _start_with(headers=[(b"x-a", b"1\x00")]),
        "invalid value for header 'x-a': control character",
    ),
    "header-name-space": (_start_with(headers=[(b"x a", b"1")]), "invalid header name"),
    "header-name-crlf": (_start_with(headers=[(b"x\r\na", b"1")]), "invalid header name"),
    "header-not-bytes": (_start_with(headers=[("x-a", "1")]), "must be bytes"),
    "content-length-short": (_length_short, "contradicts content-length: 10"),
    "content-length-long": (_length_long, "contradicts content-length: 3"),
    "content-length-invalid": (
        _start_with(headers=[(b"content-length", b"abc")]),
        "invalid content-length",
    ),
    "unknown-type": (_unknown_type, "unexpected ASGI message type 'http.response.bogus'"),
    "body-not-bytes": (_str_body, "must be bytes"),
    "raises": (_raises_before, "exception in the ASGI application"),
    "returns-without-response": (_returns_early, "returned without starting a response"),
}


async def _h1_exchange(port: int) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in received:
                received += await sock.receive()
        return received


@pytest.mark.parametrize("case", sorted(BEFORE_ANYTHING_SENT))
async def test_nothing_sent_yet_means_500_and_an_error_log(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    steps, logged = BEFORE_ANYTHING_SENT[case]
    caplog.set_level(logging.ERROR, logger="hyper_util.asgi")
    async with running(_app(steps), lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        head = await _h1_exchange(port)
        events = await _h2_exchange(port)
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"x-injected" not in head
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert (b":status", b"500") in (response.headers or [])
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2, [r.getMessage() for r in errors]  # once per protocol
    assert all(logged in r.getMessage() for r in errors), [r.getMessage() for r in errors]
    if case == "raises":
        assert all(r.exc_info is not None for r in errors)
        assert all("boom before the response" in r.exc_text for r in errors if r.exc_text)


async def _raises_after(send: Send) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("boom after the head")


async def _returns_mid_stream(send: Send) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


async def _overruns_length(send: Send) -> None:
    await send({**START, "headers": [(b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    await send({"type": "http.response.body", "body": b"overflowing", "more_body": False})


AFTER_THE_HEAD = {
    "raises": (_raises_after, "exception in the ASGI application"),
    "returns-mid-stream": (_returns_mid_stream, "returned before its response was complete"),
    "content-length-overrun": (_overruns_length, "contradicts content-length: 10"),
}


@pytest.mark.parametrize("case", sorted(AFTER_THE_HEAD))
async def test_after_the_head_http1_closes_and_http2_resets(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    steps, logged = AFTER_THE_HEAD[case]
    caplog.set_level(logging.ERROR, logger="hyper_util.asgi")
    async with running(_app(steps), lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            with anyio.fail_after(5):
                while True:
                    try:
                        received += await sock.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break  # closed by the server: the message stays incomplete
        events = await _h2_exchange(port)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial" in received
    # Never a complete message: no last chunk, or fewer bytes than declared.
    assert not received.endswith(b"0\r\n\r\n")
    assert b"overflowing" not in received
    reset = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert len(reset) == 1
    assert not any(isinstance(e, h2.events.StreamEnded) for e in events)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert all(logged in r.getMessage() for r in errors)


async def _h2_exchange(port: int) -> list[h2.events.Event]:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")],
        end_stream=True,
    )
    events: list[h2.events.Event] = []
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        await sock.send(conn.data_to_send())
        with anyio.fail_after(5):
            while not any(
                isinstance(e, h2.events.StreamEnded | h2.events.StreamReset) for e in events
            ):
                events.extend(conn.receive_data(await sock.receive()))
                data = conn.data_to_send()
                if data:
                    await sock.send(data)
    return events


async def test_disconnect_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hyper_util.asgi")
    done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await send(START)
            while True:
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await anyio.sleep(0.01)
        finally:
            done.set()  # the ClientDisconnected propagates out of the app

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        sock = await anyio.connect_tcp("127.0.0.1", port)
        await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await sock.receive()
        await sock.aclose()
        with anyio.fail_after(5):
            await done.wait()
    # (asyncio's debug mode may warn of slow callbacks on a loaded machine.)
    ours = [r for r in caplog.records if r.name.startswith("hyper_util")]
    assert not [r for r in ours if r.levelno >= logging.WARNING]
