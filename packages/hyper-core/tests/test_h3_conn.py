"""Our HTTP/3 client against our HTTP/3 server over the in-memory QUIC double.

What belongs here: HTTP/3 behaviour that does not need UDP or TLS, so it is
exact and quick on every backend: many concurrent streams, trailers both
ways, resets by either side, GOAWAY during requests, the idle timeout,
flow control (a slow reader holds its sender), limits (431, rejected
streams) and protocol errors from a hand-driven peer (bytes in, codes out).
The same behaviours over real UDP and aioquic are in ``test_h3_quic.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from h3_support import Served, h3

from hyper_core.body import Body, Full, Incoming, StreamBody, channel, collect
from hyper_core.client.conn import http3 as client_http3
from hyper_core.error import HyperError, ProtocolError, UserError
from hyper_core.http import Headers, Request, Response, Version
from hyper_core.proto.h3._frames import encode_frame, encode_settings, encode_varint
from hyper_core.proto.h3._qpack import encode_field_section
from hyper_core.rt import QuicStreamReset
from hyper_core.server.conn import http3 as server_http3
from hyper_core.testing import MemoryQuicConnection, quic_pair
from hyper_core.upgrade import on as on_upgrade

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]
ErrorCode = server_http3.ErrorCode


async def echo(request: Request[Incoming]) -> Response[Body]:
    body = await collect(request.body)
    headers = Headers({"x-method": str(request.method), "x-path": request.uri.path_and_query})
    trailers = body.trailers
    if trailers is not None:
        for name, value in trailers.items():
            headers.append(f"x-trailer-{name}", value)
    return Response(200, headers=headers, body=Full(body.to_bytes()))


async def test_request_and_response_carry_head_body_and_version() -> None:
    async with h3(echo) as (sender, served):
        response = await sender.send_request(
            Request("POST", "https://example.com/a?b=c", headers={"x-h": "1"}, body=Full(b"abc"))
        )
        assert response.status == 200
        assert response.version is Version.HTTP_3
        assert response.headers["x-method"] == "POST"
        assert response.headers["x-path"] == "/a?b=c"
        assert response.headers["content-length"] == "3"
        assert "date" in response.headers
        assert (await collect(response.body)).to_bytes() == b"abc"
    assert served.error is None


async def test_many_concurrent_streams_beyond_the_stream_limit() -> None:
    active = 0
    peak = 0

    async def slow(request: Request[Incoming]) -> Response[Body]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.01)
        active -= 1
        return Response(200, body=Full(request.uri.path_and_query.encode()))

    results: dict[int, bytes] = {}
    async with h3(slow, max_streams=16) as (sender, _):

        async def one(i: int) -> None:
            response = await sender.send_request(Request("GET", f"https://h/{i}"))
            results[i] = (await collect(response.body)).to_bytes()

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert results == {i: f"/{i}".encode() for i in range(200)}
    assert 1 < peak <= 16  # concurrent, and within QUIC's stream credit


async def test_trailers_both_ways() -> None:
    async def with_trailers(request: Request[Incoming]) -> Response[Body]:
        body = await collect(request.body)
        trailers = body.trailers
        assert trailers is not None
        send, out = channel()

        async def produce() -> None:
            async with send:
                await send.send_data(body.to_bytes())
                await send.send_trailers(Headers({"checksum": trailers["sum"]}))

        tg.start_soon(produce)
        return Response(200, body=out)

    async def request_body() -> AsyncIterator[bytes]:
        yield b"part1"
        yield b"part2"

    async with anyio.create_task_group() as tg, h3(with_trailers) as (sender, _):
        send, body = channel()

        async def upload() -> None:
            async with send:
                await send.send_data(b"x" * 100)
                await send.send_trailers(Headers({"sum": "abc123"}))

        tg.start_soon(upload)
        response = await sender.send_request(Request("POST", "https://h/t", body=body))
        collected = await collect(response.body)
        assert collected.to_bytes() == b"x" * 100
        assert collected.trailers is not None
        assert collected.trailers["checksum"] == "abc123"
        del request_body


async def test_client_closing_a_response_early_resets_the_stream() -> None:
    stopped = anyio.Event()

    async def endless(request: Request[Incoming]) -> Response[Body]:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"z" * 4096
            finally:
                stopped.set()

        return Response(200, body=StreamBody(chunks()))

    async with h3(endless) as (sender, served):
        response = await sender.send_request(Request("GET", "https://h/"))
        assert len(await response.body.__anext__()) > 0
        await response.body.aclose()
        with anyio.fail_after(5):
            await stopped.wait()  # the server's writer saw STOP_SENDING and stopped
        # The connection is fine: another request works.
        other = await sender.send_request(Request("GET", "https://h/"))
        await other.body.aclose()
    assert served.error is None


async def test_service_failure_after_the_head_resets_with_internal_error() -> None:
    async def broken(request: Request[Incoming]) -> Response[Body]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            raise RuntimeError("boom")

        return Response(200, body=StreamBody(chunks()))

    async def raises(request: Request[Incoming]) -> Response[Body]:
        raise RuntimeError("before the head")

    async with h3(broken) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        with pytest.raises(ProtocolError) as info:
            await collect(response.body)
        assert info.value.error_code == ErrorCode.H3_INTERNAL_ERROR
    async with h3(raises) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        assert response.status == 500
        assert (await collect(response.body)).to_bytes() == b""


async def test_graceful_shutdown_finishes_in_flight_and_rejects_later_requests() -> None:
    release = anyio.Event()
    started = 0

    async def waits(request: Request[Incoming]) -> Response[Body]:
        nonlocal started
        started += 1
        await release.wait()
        return Response(200, body=Full(b"done"))

    async with h3(waits) as (sender, served):
        results: list[object] = []

        async def one() -> None:
            try:
                response = await sender.send_request(Request("GET", "https://h/"))
                results.append((await collect(response.body)).to_bytes())
            except HyperError as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
            with anyio.fail_after(5):
                while started < 10:  # noqa: ASYNC110 - counted by the service tasks
                    await anyio.sleep(0.01)
            assert served.connection is not None
            served.connection.graceful_shutdown()
            await anyio.sleep(0.05)
            late = None
            try:
                await sender.send_request(Request("GET", "https://h/late"))
            except HyperError as exc:
                late = exc
            assert isinstance(late, client_http3.RequestNotProcessedError)
            release.set()
        assert results == [b"done"] * 10
        with anyio.fail_after(5):
            await served.done.wait()
    assert served.error is None


async def test_idle_timeout_closes_the_connection_gracefully() -> None:
    async with h3(echo, server={"idle_timeout": 0.1}) as (sender, served):
        response = await sender.send_request(Request("GET", "https://h/"))
        await collect(response.body)
        with anyio.fail_after(5):
            await served.done.wait()
        await anyio.sleep(0.01)
        assert sender.is_closed()
    assert served.error is None


async def test_slow_reader_holds_the_sender_within_the_window() -> None:
    produced = 0

    async def big(request: Request[Incoming]) -> Response[Body]:
        async def chunks() -> AsyncIterator[bytes]:
            nonlocal produced
            for _ in range(1000):
                produced += 16384
                yield b"b" * 16384

        return Response(200, body=StreamBody(chunks()))

    async with h3(big, stream_window=65536) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        await anyio.sleep(0.2)  # the client reads nothing meanwhile
        # The window (64 KiB) and one chunk in flight: far from the 16 MiB body.
        assert produced <= 65536 + 3 * 16384
        total = 0
        async for chunk in response.body:
            total += len(chunk)
        assert total == 1000 * 16384


async def test_slow_service_holds_an_upload_within_the_window() -> None:
    read = anyio.Event()
    sent = 0

    async def lazy(request: Request[Incoming]) -> Response[Body]:
        await read.wait()
        body = await collect(request.body)
        return Response(200, body=Full(str(len(body.to_bytes())).encode()))

    async def upload() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(256):
            sent += 8192
            yield b"u" * 8192

    async with h3(lazy, stream_window=65536) as (sender, _):
        async with anyio.create_task_group() as tg:
            result: list[bytes] = []

            async def send() -> None:
                response = await sender.send_request(
                    Request("POST", "https://h/", body=StreamBody(upload()))
                )
                result.append((await collect(response.body)).to_bytes())

            tg.start_soon(send)
            await anyio.sleep(0.2)
            assert sent <= 65536 + 2 * 8192
            read.set()
        assert result == [str(256 * 8192).encode()]


async def test_oversized_header_section_is_answered_431() -> None:
    async with h3(echo, server={"max_field_section_size": 1000}) as (sender, served):
        response = await sender.send_request(
            Request("GET", "https://h/", headers={"x-big": "v" * 2000})
        )
        assert response.status == 431
        assert (await collect(response.body)).to_bytes() == b""
        ok = await sender.send_request(Request("GET", "https://h/"))
        assert ok.status == 200
        await collect(ok.body)
    assert served.error is None


async def test_extended_connect_tunnel() -> None:
    async def tunnel(request: Request[Incoming]) -> Response[Body]:
        assert request.method == "CONNECT"
        protocol = request.extensions.get(server_http3.Protocol)
        assert protocol is not None
        assert protocol.as_str() == "websocket"

        async def relay() -> None:
            upgraded = await on_upgrade(request)
            async with upgraded:
                data = await upgraded.receive()
                await upgraded.send(data.upper())
                await upgraded.send_eof()

        tg.start_soon(relay)
        return Response(200, body=Full(b""))

    async with (
        anyio.create_task_group() as tg,
        h3(tunnel, server={"enable_connect_protocol": True}) as (sender, _),
    ):
        # Sent at once: the request waits for the server's SETTINGS (RFC 9220 section 3).
        request = Request("CONNECT", "https://h/chat")
        request.extensions.insert(client_http3.Protocol("websocket"))
        response = await sender.send_request(request)
        assert response.status == 200
        assert sender.is_extended_connect_protocol_enabled()
        upgraded = await on_upgrade(response)
        async with upgraded:
            await upgraded.send(b"hello")
            assert await upgraded.receive() == b"HELLO"
            with pytest.raises(anyio.EndOfStream):
                await upgraded.receive()


async def test_extended_connect_needs_the_server_setting() -> None:
    async with h3(echo) as (sender, _):
        request = Request("CONNECT", "https://h/chat")
        request.extensions.insert(client_http3.Protocol("websocket"))
        with pytest.raises(UserError):
            await sender.send_request(request)


# -- a hand-driven client: bytes in, codes out ----------------------------------------


@asynccontextmanager
async def raw_peer(
    service: Service = echo,
) -> AsyncIterator[tuple[MemoryQuicConnection, Served]]:
    client_quic, server_quic = quic_pair()
    served = Served()

    async def run_server() -> None:
        try:
            await server_http3.Builder().serve_connection(server_quic, service)
        except Exception as exc:
            served.error = exc
        finally:
            served.done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        control = await client_quic.open_unidirectional_stream()
        await control.send(encode_varint(0) + encode_settings({}))
        yield client_quic, served
        tg.cancel_scope.cancel()


def headers_frame(fields: list[tuple[bytes, bytes]]) -> bytes:
    return encode_frame(0x1, encode_field_section(fields))


GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"h"), (b":path", b"/")]


async def test_malformed_request_resets_only_its_stream() -> None:
    async with raw_peer() as (client, served):
        bad = await client.open_stream()
        await bad.send(headers_frame([(b":method", b"GET"), (b"Upper", b"x")]))
        await bad.send_eof()
        with pytest.raises(QuicStreamReset) as info:
            await bad.receive()
        assert info.value.error_code == ErrorCode.H3_MESSAGE_ERROR
        good = await client.open_stream()
        await good.send(headers_frame(GET))
        await good.send_eof()
        assert (await good.receive())[:1] == b"\x01"  # a HEADERS frame: the response
    assert served.error is None


async def test_data_before_headers_is_a_connection_error() -> None:
    async with raw_peer() as (client, served):
        stream = await client.open_stream()
        await stream.send(encode_frame(0x0, b"early"))
        with anyio.fail_after(5):
            closed = await client.wait_closed()
            await served.done.wait()
        assert closed.error_code == ErrorCode.H3_FRAME_UNEXPECTED
        assert isinstance(served.error, ProtocolError)
        assert served.error.error_code == ErrorCode.H3_FRAME_UNEXPECTED


async def test_control_stream_must_start_with_settings() -> None:
    client_quic, server_quic = quic_pair()
    async with anyio.create_task_group() as tg:
        served = Served()

        async def run_server() -> None:
            try:
                await server_http3.Builder().serve_connection(server_quic, echo)
            except Exception as exc:
                served.error = exc
            served.done.set()

        tg.start_soon(run_server)
        control = await client_quic.open_unidirectional_stream()
        await control.send(encode_varint(0) + encode_frame(0x7, encode_varint(0)))
        with anyio.fail_after(5):
            await served.done.wait()
        assert isinstance(served.error, ProtocolError)
        assert served.error.error_code == ErrorCode.H3_MISSING_SETTINGS
