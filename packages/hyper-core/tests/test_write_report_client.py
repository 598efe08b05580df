"""ext.on_write on client connections: the request's head, body and end, counted.

HTTP/1.1 against a raw loopback server, so the head size reported is checked
against the bytes that arrived; HTTP/2 against our server (the frame-level
behaviour of the HTTP/2 writer is pinned by the server-side tests, which
share its write marks).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from write_support import Recorder, serve

from hyper_core import ext
from hyper_core.body import Frame, Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http1, http2
from hyper_core.ext import WriteStage
from hyper_core.http import Request, Response

pytestmark = pytest.mark.anyio

HEAD, DATA, FINISHED = WriteStage.HEAD, WriteStage.DATA, WriteStage.FINISHED


async def _h1_exchange(request: Request[Any], answer_after: bytes) -> bytes:
    """Send ``request`` with our HTTP/1 client to a raw server; return what it received."""
    received = bytearray()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            while not received.endswith(answer_after):
                received.extend(await stream.receive())
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        sender, connection = await http1.handshake(stream)
        tg.start_soon(connection.serve)
        with anyio.fail_after(5):
            response = await sender.send_request(request)
            await collect(response.body)
        await stream.aclose()
        tg.cancel_scope.cancel()
    return bytes(received)


def _post(body: Any) -> Request[Any]:
    request = Request("POST", "http://127.0.0.1/up", body=body)
    request.headers["host"] = "127.0.0.1"
    return request


async def test_h1_request_with_a_full_body_reports_exact_counts() -> None:
    recorder = Recorder()
    request = _post(Full(b"hello"))
    ext.on_write(request, recorder)
    received = await _h1_exchange(request, b"hello")
    await recorder.wait_for(lambda: recorder.ended)
    assert recorder.stages == [HEAD, DATA, FINISHED]
    assert recorder.events[0].head_bytes == received.index(b"\r\n\r\n") + 4
    assert recorder.events[-1].body_bytes == 5


async def test_h1_chunked_request_reports_payload_not_framing() -> None:
    async def frames() -> AsyncIterator[Frame]:
        yield Frame.data(b"abc")
        yield Frame.data(b"defgh")

    recorder = Recorder()
    request = _post(StreamBody(frames()))
    ext.on_write(request, recorder)
    received = await _h1_exchange(request, b"0\r\n\r\n")
    await recorder.wait_for(lambda: recorder.ended)
    assert b"transfer-encoding: chunked" in received.lower()
    assert recorder.stages == [HEAD, DATA, DATA, FINISHED]
    assert [e.body_bytes for e in recorder.events] == [0, 3, 8, 8]


async def test_h1_request_without_a_body_reports_head_then_end() -> None:
    recorder = Recorder()
    request = Request("GET", "http://127.0.0.1/", body=Full(b""))
    request.headers["host"] = "127.0.0.1"
    ext.on_write(request, recorder)
    received = await _h1_exchange(request, b"\r\n\r\n")
    await recorder.wait_for(lambda: recorder.ended)
    assert recorder.stages == [HEAD, FINISHED]
    assert recorder.events[0].head_bytes == len(received)


async def test_h2_request_reports_headers_data_and_end() -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full((await collect(request.body)).to_bytes()))

    recorder = Recorder()
    request = _post(Full(b"hello"))
    ext.on_write(request, recorder)
    async with serve(service, "h2") as port, anyio.create_task_group() as tg:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        sender, connection = await http2.handshake(stream)
        tg.start_soon(connection.serve)
        with anyio.fail_after(5):
            response = await sender.send_request(request)
            assert (await collect(response.body)).to_bytes() == b"hello"
        await recorder.wait_for(lambda: recorder.ended)
        await stream.aclose()
        tg.cancel_scope.cancel()
    assert recorder.stages == [HEAD, DATA, FINISHED]
    assert recorder.events[0].head_bytes > 9  # a HEADERS frame: 9-byte header plus HPACK
    assert recorder.events[-1].body_bytes == 5
