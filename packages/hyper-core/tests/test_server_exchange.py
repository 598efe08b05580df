"""ext.send_informational and ext.on_client_gone on HTTP/1 and HTTP/2 server connections.

What belongs here: the two hooks a service has on its exchange while it
runs: writing 1xx heads (103 Early Hints) before the final response, and
learning that the client went away. HTTP/1 over a real loopback socket (the
``serve_h1`` fixture), HTTP/2 with the h2 library as the client over an
in-memory pipe; each checks the bytes or events the client sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import h2.config
import h2.connection
import h2.events
import pytest

from hyper_core import ext
from hyper_core.body import Empty, Frame, Full, Incoming, StreamBody
from hyper_core.error import UserError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http2
from hyper_core.testing import memory_pipe

if TYPE_CHECKING:
    from conftest import ServeH1

pytestmark = pytest.mark.anyio

HINTS = {"link": "</style.css>; rel=preload; as=style"}


async def _exchange_h1(port: int, request: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        await sock.send(request)
        received = b""
        with anyio.fail_after(5):
            while b"\r\n\r\nok" not in received:
                try:
                    received += await sock.receive()
                except anyio.EndOfStream:
                    break
        return received


async def test_h1_early_hints_before_the_final_response(serve_h1: ServeH1) -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        await ext.send_informational(request, 103, HINTS)
        await ext.send_informational(request, 103, {"link": "</app.js>; rel=preload"})
        return Response(200, body=Full(b"ok"))

    async with serve_h1(service) as server:
        raw = await _exchange_h1(server.port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    first, second, final = raw.split(b"\r\n\r\n", 2)
    assert first == b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style"
    assert second == b"HTTP/1.1 103 Early Hints\r\nlink: </app.js>; rel=preload"
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\nok")


async def test_h1_no_informational_response_to_http10(serve_h1: ServeH1) -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        await ext.send_informational(request, 103, HINTS)
        return Response(200, body=Full(b"ok"))

    async with serve_h1(service) as server:
        raw = await _exchange_h1(server.port, b"GET / HTTP/1.0\r\n\r\n")
    # The h11 codec answers HTTP/1.0 as HTTP/1.1 (its documented difference).
    assert raw.startswith((b"HTTP/1.0 200 OK\r\n", b"HTTP/1.1 200 OK\r\n"))
    assert b"103" not in raw


async def test_h1_informational_after_the_final_head_is_refused(serve_h1: ServeH1) -> None:
    errors: list[BaseException] = []

    async def service(request: Request[Incoming]) -> Response[Any]:
        async def chunks() -> Any:
            yield b"o"
            try:
                await ext.send_informational(request, 103, HINTS)
            except UserError as exc:
                errors.append(exc)
            yield b"k"

        return Response(200, body=StreamBody(chunks()))

    async with serve_h1(service) as server:
        raw = await _exchange_h1(
            server.port, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"103" not in raw
    assert len(errors) == 1
    assert "final response has started" in str(errors[0])


@pytest.mark.parametrize("status", [99, 101, 200, 204])
async def test_informational_status_must_be_1xx_not_101(status: int) -> None:
    request: Request[Any] = Request()
    with pytest.raises(UserError, match="1xx"):
        await ext.send_informational(request, status)


async def test_hooks_need_a_server_request() -> None:
    request: Request[Any] = Request()
    with pytest.raises(UserError, match="server connection"):
        await ext.send_informational(request, 103)
    with pytest.raises(UserError, match="server connection"):
        ext.on_client_gone(request, lambda: None)


async def test_h1_client_gone_while_the_service_runs(serve_h1: ServeH1) -> None:
    gone = anyio.Event()
    registered = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Full]:
        ext.on_client_gone(request, gone.set)
        registered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with serve_h1(service) as server:
        sock = await anyio.connect_tcp("127.0.0.1", server.port)
        await sock.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        with anyio.fail_after(5):
            await registered.wait()
            await sock.aclose()
            await gone.wait()
            await server.next_outcome()


async def test_h1_client_gone_while_a_streamed_body_waits(serve_h1: ServeH1) -> None:
    gone = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Any]:
        ext.on_client_gone(request, gone.set)

        async def chunks() -> Any:
            yield b"first"
            await gone.wait()  # the body produces nothing more until the client leaves
            yield b"never written"

        return Response(200, body=StreamBody(chunks()))

    async with serve_h1(service) as server:
        sock = await anyio.connect_tcp("127.0.0.1", server.port)
        await sock.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        with anyio.fail_after(5):
            received = b""
            while b"first" not in received:
                received += await sock.receive()
            await sock.aclose()
            await gone.wait()
            await server.next_outcome()


async def test_h1_client_gone_not_called_after_a_complete_response(serve_h1: ServeH1) -> None:
    calls: list[str] = []

    async def service(request: Request[Incoming]) -> Response[Full]:
        ext.on_client_gone(request, lambda: calls.append("gone"))
        await anyio.lowlevel.checkpoint()
        return Response(200, body=Full(b"ok"))

    async with serve_h1(service) as server:
        raw = await _exchange_h1(
            server.port, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        assert raw.endswith(b"ok")
        with anyio.fail_after(5):
            await server.next_outcome()
    assert calls == []


async def _read_response(sock: Any, received: bytes, body: bytes) -> bytes:
    """Read until one response ending in ``body`` is in; the bytes after it."""
    with anyio.fail_after(5):
        while body not in received:
            received += await sock.receive()
    head, _, rest = received.partition(body)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), received
    return rest


async def _echo_after_a_wait(request: Request[Incoming]) -> Response[Full]:
    # Suspends with the request read whole (the reader task watches), then
    # answers with the path and what it read of the body.
    await anyio.lowlevel.checkpoint()
    data = b""
    while (frame := await request.body.frame()) is not None:
        if frame.data_ref is not None:
            data += frame.data_ref
    return Response(200, body=Full(request.uri.path.encode() + b":" + data + b";"))


async def test_h1_reader_task_serves_later_reads(serve_h1: ServeH1) -> None:
    # The reader task started by the first slow service stays for the
    # connection: its reads feed the next request head, a body sent in
    # pieces afterwards, and requests pipelined while a service waited.
    async with serve_h1(_echo_after_a_wait) as server:
        sock = await anyio.connect_tcp("127.0.0.1", server.port)
        await sock.send(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        rest = await _read_response(sock, b"", b"/a:;")
        await sock.send(b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nfirst")
        await anyio.sleep(0.05)
        await sock.send(b"-last")
        rest = await _read_response(sock, rest, b"/b:first-last;")
        await sock.send(
            b"GET /c HTTP/1.1\r\nhost: x\r\n\r\n"
            b"POST /d HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"
            b"GET /e HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        rest = await _read_response(sock, rest, b"/c:;")
        rest = await _read_response(sock, rest, b"/d:abc;")
        rest = await _read_response(sock, rest, b"/e:;")
        assert rest == b""
        await sock.aclose()
        with anyio.fail_after(5):
            await server.next_outcome()


async def test_h1_client_gone_on_a_later_request(serve_h1: ServeH1) -> None:
    # The reader task, parked after the first request's watch, watches again.
    gone = anyio.Event()
    registered = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/first":
            await anyio.lowlevel.checkpoint()
            return Response(200, body=Full(b"one;"))
        ext.on_client_gone(request, gone.set)
        registered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with serve_h1(service) as server:
        sock = await anyio.connect_tcp("127.0.0.1", server.port)
        await sock.send(b"GET /first HTTP/1.1\r\nhost: x\r\n\r\n")
        await _read_response(sock, b"", b"one;")
        await sock.send(b"GET /second HTTP/1.1\r\nhost: x\r\n\r\n")
        with anyio.fail_after(5):
            await registered.wait()
            await sock.aclose()
            await gone.wait()
            await server.next_outcome()


# -- HTTP/2 -------------------------------------------------------------------


class _H2Client:
    def __init__(self, io: Any) -> None:
        self.io = io
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.events: list[h2.events.Event] = []

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            await self.io.send(data)

    async def request(self, path: bytes = b"/") -> int:
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            sid,
            [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", path)],
            end_stream=True,
        )
        await self.flush()
        return sid

    async def pump_until(self, done: Any) -> None:
        with anyio.fail_after(5):
            while not done():
                data = await self.io.receive()
                self.events.extend(self.h2.receive_data(data))
                await self.flush()


async def _with_h2(service: Any, client_code: Any) -> None:
    server_io, client_io = memory_pipe()
    client = _H2Client(client_io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(http2.Builder().serve_connection(server_io, service).serve)
        await client.flush()
        await client_code(client)
        tg.cancel_scope.cancel()


async def test_h2_early_hints_before_the_final_response() -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        await ext.send_informational(request, 103, HINTS)
        return Response(200, body=Full(b"ok"))

    async def client_code(client: _H2Client) -> None:
        sid = await client.request()
        await client.pump_until(
            lambda: any(isinstance(e, h2.events.StreamEnded) for e in client.events)
        )
        heads = [
            e
            for e in client.events
            if isinstance(e, h2.events.InformationalResponseReceived | h2.events.ResponseReceived)
        ]
        assert [type(e) for e in heads] == [
            h2.events.InformationalResponseReceived,
            h2.events.ResponseReceived,
        ]
        assert heads[0].stream_id == sid
        assert (b":status", b"103") in (heads[0].headers or [])
        assert (b"link", b"</style.css>; rel=preload; as=style") in (heads[0].headers or [])
        assert (b":status", b"200") in (heads[1].headers or [])

    await _with_h2(service, client_code)


async def test_h2_client_reset_calls_client_gone() -> None:
    gone = anyio.Event()
    registered = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Empty]:
        ext.on_client_gone(request, gone.set)
        registered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def client_code(client: _H2Client) -> None:
        sid = await client.request()
        with anyio.fail_after(5):
            await registered.wait()
            client.h2.reset_stream(sid, 8)
            await client.flush()
            await gone.wait()

    await _with_h2(service, client_code)


async def test_h2_client_gone_when_the_stream_body_waits_and_the_connection_drops() -> None:
    gone = anyio.Event()
    started = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Any]:
        ext.on_client_gone(request, gone.set)

        async def chunks() -> Any:
            started.set()
            yield Frame.data(b"x")
            await anyio.sleep_forever()

        return Response(200, body=StreamBody(chunks()))

    server_io, client_io = memory_pipe()
    client = _H2Client(client_io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(http2.Builder().serve_connection(server_io, service).serve)
        await client.flush()
        await client.request()
        with anyio.fail_after(5):
            await started.wait()
            await client_io.aclose()
            await gone.wait()
        tg.cancel_scope.cancel()
