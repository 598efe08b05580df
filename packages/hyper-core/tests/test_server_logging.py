"""What the server connections log: application errors at ERROR, client faults at DEBUG.

What belongs here: log-capture tests of the ``hyper_core.server`` logger
for HTTP/1 and HTTP/2: a service that raises, returns no valid response or
whose response body fails gets exactly one ERROR record per failing request,
with the exception's traceback; what a client causes (a body cut short, a
reset, a malformed request) never reaches ERROR.

Strategy: real server connections over an in-memory pipe, driven by raw
HTTP/1 bytes or by hyper-core's own HTTP/2 client; pytest's ``caplog``
collects the records.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from hyper_core.body import Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import BodyWriteAbortedError, HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1, http2
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

LOGGER = "hyper_core.server"


class Boom(Exception):
    """The application's own failure."""


async def raises(request: Request[Incoming]) -> Response[Full]:
    raise Boom("the application failed")


async def returns_nothing(request: Request[Incoming]) -> Any:
    return None


async def body_fails(request: Request[Incoming]) -> Response[StreamBody]:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise Boom("the body failed")

    return Response(200, body=StreamBody(chunks()))


async def body_aborts(request: Request[Incoming]) -> Response[StreamBody]:
    # A producer that reports its own failure (as the ASGI adapter does) and
    # aborts the response on purpose.
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise BodyWriteAbortedError("the producer gave up and said why elsewhere")

    return Response(200, body=StreamBody(chunks()))


async def reads_body(request: Request[Incoming]) -> Response[Full]:
    data = await collect(request.body)
    return Response(200, body=Full(data.to_bytes()))


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def h1_exchange(service: Any, data: bytes, *, close: bool = True) -> bytes:
    """Send ``data`` to an HTTP/1 server connection; return all it answered."""
    client, server = memory_pipe()
    received = b""
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            with contextlib.suppress(HyperError):
                await http1.Builder().serve_connection(server, service)

        tg.start_soon(run)
        await client.send(data)
        if close:
            await client.send_eof()
        with anyio.fail_after(5):
            while True:
                try:
                    received += await client.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return received


GET = b"GET /boom?x=1 HTTP/1.1\r\nHost: example\r\n\r\n"


@pytest.mark.parametrize(
    ("service", "why"),
    [(raises, Boom), (returns_nothing, None), (body_fails, Boom)],
    ids=["raises", "no-response", "body-fails"],
)
async def test_http1_application_error_is_logged_once_at_error(
    caplog: pytest.LogCaptureFixture, service: Any, why: type[BaseException] | None
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    reply = await h1_exchange(service, GET)
    if service is not body_fails:
        assert reply.startswith(b"HTTP/1.1 500 ")
    records = errors(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.name == LOGGER
    assert "GET /boom?x=1 HTTP/1.1" in record.getMessage()
    assert record.exc_info is not None
    if why is not None:
        # The application's exception, with its traceback (itself or the cause).
        exc = record.exc_info[1]
        assert exc is not None
        assert isinstance(exc, why) or isinstance(exc.__cause__, why)
        assert "Boom" in caplog.text


async def test_http1_one_error_per_failing_request(caplog: pytest.LogCaptureFixture) -> None:
    # A failing request closes its HTTP/1 connection: three connections,
    # three records.
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for _ in range(3):
        await h1_exchange(raises, GET)
    assert len(errors(caplog)) == 3


@pytest.mark.parametrize(
    "data",
    [
        # The body is cut short: the service's read fails because of the client.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        # Broken chunked framing in the body.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        # A malformed request head.
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    ],
    ids=["body-cut-short", "bad-chunk", "bad-head"],
)
async def test_http1_client_faults_stay_below_error(
    caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await h1_exchange(reads_body, data)
    assert errors(caplog) == []


async def test_http1_deliberately_aborted_body_is_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    reply = await h1_exchange(body_aborts, GET)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert not reply.endswith(b"0\r\n\r\n")  # aborted, never completed
    assert errors(caplog) == []
    assert any("aborted by its body" in r.getMessage() for r in caplog.records)


async def test_http1_nothing_is_logged_for_a_good_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    reply = await h1_exchange(
        reads_body, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
    )
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert caplog.records == []


# -- HTTP/2 -------------------------------------------------------------------------


async def h2_statuses(service: Any, paths: list[str]) -> list[int | str]:
    """Send one GET per path on one HTTP/2 connection; return each status (or error)."""
    client_io, server_io = memory_pipe()
    results: list[int | str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(http2.Builder().serve_connection(server_io, service).serve)
        sender, connection = await client_http2.handshake(client_io)
        tg.start_soon(connection.serve)
        for path in paths:
            try:
                response = await sender.send_request(Request("GET", f"http://example{path}"))
                await collect(response.body)
                results.append(int(response.status))
            except HyperError as exc:
                results.append(type(exc).__name__)
        tg.cancel_scope.cancel()
    return results


@pytest.mark.parametrize(
    ("service", "expected"),
    [(raises, [500, 500, 500]), (returns_nothing, [500, 500, 500])],
    ids=["raises", "no-response"],
)
async def test_http2_application_error_is_logged_once_per_request(
    caplog: pytest.LogCaptureFixture, service: Any, expected: list[int]
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    statuses = await h2_statuses(service, ["/a", "/b?q", "/c"])
    assert statuses == expected
    records = errors(caplog)
    assert [r.getMessage().split(" from ")[0] for r in records] == [
        "service error on GET /a HTTP/2",
        "service error on GET /b?q HTTP/2",
        "service error on GET /c HTTP/2",
    ]
    assert all(r.exc_info is not None for r in records)


async def test_http2_response_body_failure_is_an_application_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    statuses = await h2_statuses(body_fails, ["/stream"])
    assert statuses == ["ProtocolError"]  # reset with INTERNAL_ERROR after the head
    records = errors(caplog)
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], Boom)


async def test_http2_deliberately_aborted_body_is_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    statuses = await h2_statuses(body_aborts, ["/stream"])
    assert statuses == ["ProtocolError"]  # the stream is reset all the same
    assert errors(caplog) == []
    assert any("aborted by its body" in r.getMessage() for r in caplog.records)


async def test_http2_client_reset_is_not_an_application_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The client resets the stream while the service reads its body: the
    # service fails, but because of the client.
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    reading = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Full]:
        reading.set()
        await collect(request.body)
        return Response(200, body=Full(b"never"))

    client_io, server_io = memory_pipe()
    async with anyio.create_task_group() as tg:
        tg.start_soon(http2.Builder().serve_connection(server_io, service).serve)
        sender, connection = await client_http2.handshake(client_io)
        tg.start_soon(connection.serve)

        async def endless() -> AsyncIterator[bytes]:
            yield b"start"
            await anyio.sleep_forever()

        with anyio.CancelScope() as scope:

            async def cancel_when_reading() -> None:
                await reading.wait()
                await anyio.sleep(0.05)
                scope.cancel()

            tg.start_soon(cancel_when_reading)
            await sender.send_request(
                Request("POST", "http://example/upload", body=StreamBody(endless()))
            )
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert reading.is_set()
    assert errors(caplog) == []
