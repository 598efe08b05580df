"""Our HTTP/2 client against our HTTP/2 server, end to end.

What belongs here: behaviours that need both halves of hyper-core's HTTP/2
at once, above all the graceful GOAWAY: the server announces shutdown while
many streams are mid-response, and the client must finish every stream the
server kept (at or below its last stream id) and fail the rest with the
retryable :class:`~hyper_core.client.conn.http2.RequestNotProcessedError`.

Strategy: ``http2.handshake`` on one end of an in-memory pipe (one
``send`` arrives as one ``receive``, so a GOAWAY and the DATA frames written
with it reach h2 in the same ``receive_data`` call, the case that used to
break the client) or of a loopback TCP connection, and
``http2.Builder().serve_connection`` on the other. Responses are streamed
slowly so they are still being written when the GOAWAY goes out.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import pytest

from hyper_core.body import Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_core.server.conn import http2 as server_http2
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

#: Requests in flight when the server shuts down, and requests sent after.
IN_FLIGHT = 40
LATE = 10
#: Each response: CHUNKS chunks of CHUNK bytes, a short sleep before each.
CHUNKS = 8
CHUNK = b"0123456789" * 30
CHUNK_DELAY = 0.005


async def _pair(transport: str) -> tuple[IO, IO, list[anyio.abc.AsyncResource]]:
    if transport == "memory":
        client_io, server_io = memory_pipe()
        return client_io, server_io, []
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    listener = multi.listeners[0]
    assert isinstance(listener, anyio.abc.SocketListener)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    accepted: list[anyio.abc.SocketStream] = []

    async def accept() -> None:
        accepted.append(await listener.accept())

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept)
        client_stream = await anyio.connect_tcp("127.0.0.1", port)
    return client_stream, accepted[0], [multi]


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_graceful_goaway_lets_kept_streams_finish_and_fails_the_rest_retryable(
    transport: str,
) -> None:
    served: dict[str, int] = {}
    started = 0
    all_started = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[StreamBody]:
        nonlocal started
        path = request.uri.path
        served[path] = served.get(path, 0) + 1
        started += 1
        if started == IN_FLIGHT:
            all_started.set()

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(CHUNKS):
                await anyio.sleep(CHUNK_DELAY)
                yield CHUNK

        return Response(200, body=StreamBody(chunks()))

    client_io, server_io, resources = await _pair(transport)
    server = server_http2.Builder().serve_connection(server_io, svc)
    server_outcome: list[BaseException | None] = []
    results: dict[str, bytes | BaseException] = {}

    async def run_server() -> None:
        try:
            await server
        except HyperError as exc:
            server_outcome.append(exc)
        else:
            server_outcome.append(None)

    async def fetch(sender: client_http2.SendRequest, path: str) -> None:
        try:
            response = await sender.send_request(Request("GET", f"http://test{path}"))
            results[path] = (await collect(response.body)).to_bytes()
        except HyperError as exc:
            results[path] = exc

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            sender, connection = await client_http2.handshake(client_io)
            tg.start_soon(connection.serve)
            async with anyio.create_task_group() as requests:
                for i in range(IN_FLIGHT):
                    requests.start_soon(fetch, sender, f"/kept/{i}")
                await all_started.wait()
                server.graceful_shutdown()
                # Sent while the shutdown is under way: each is either kept
                # (opened before the final GOAWAY) or refused, never lost.
                for i in range(LATE):
                    requests.start_soon(fetch, sender, f"/late/{i}")
    for resource in resources:
        await resource.aclose()

    assert server_outcome == [None]
    expected = CHUNK * CHUNKS
    for i in range(IN_FLIGHT):
        result = results[f"/kept/{i}"]
        assert result == expected, f"/kept/{i}: {result!r}"
    for i in range(LATE):
        path = f"/late/{i}"
        result = results[path]
        if isinstance(result, bytes):
            assert result == expected
            assert served[path] == 1
        else:
            assert isinstance(result, client_http2.RequestNotProcessedError), repr(result)
            assert path not in served  # safe to retry: the server never saw it
    assert all(count == 1 for count in served.values())


_LEAK: contextvars.ContextVar[str] = contextvars.ContextVar("_LEAK")


async def test_streams_on_one_connection_start_from_a_fresh_context() -> None:
    # The server reuses worker tasks between streams; a context variable a
    # service set (and never reset) must not be seen by a later stream.
    seen: list[str | None] = []

    async def svc(request: Request[Incoming]) -> Response[Full]:
        seen.append(_LEAK.get(None))
        _LEAK.set(request.uri.path)
        return Response(200, body=Full(b"ok"))

    client_io, server_io = memory_pipe()
    server = server_http2.Builder().serve_connection(server_io, svc)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            sender, connection = await client_http2.handshake(client_io)
            tg.start_soon(connection.serve)
            for i in range(5):  # one after another: each may go to the same worker
                response = await sender.send_request(Request("GET", f"http://test/{i}"))
                assert (await collect(response.body)).to_bytes() == b"ok"
            await sender.aclose()
            server.graceful_shutdown()
    assert seen == [None] * 5
