"""HTTP/2 server connection: behaviour seen by a real h2 client, on both runtimes.

What belongs here: streams, bodies, flow control, trailers, errors, shutdown
and keep-alive of ``server.conn.http2``, driven by an h2-library client by
hand over an in-memory pipe (and a loopback socket where the transport
matters). Hostile frame sequences are in ``test_server_h2_robustness.py``,
real peers in ``test_server_h2_interop.py``. Cases ported from hyper's
tests carry hyper's test name.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from h2.connection import ConnectionInputs, ConnectionState

from hyper_core import upgrade
from hyper_core.body import Empty, Frame, Full, Incoming, StreamBody, channel, collect
from hyper_core.error import HyperError, ProtocolError, TimeoutError
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_core.server.conn import http2
from hyper_core.testing import FakeTimer, memory_pipe

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Any]]]


@dataclass
class Reply:
    """What the client saw on one stream."""

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    reset: int | None = None
    ended: bool = False

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


class Client:
    """An h2 client driven by hand: send frames, pump the socket, record replies."""

    def __init__(self, io: IO, *, window: int | None = None, auto_ack: bool = True) -> None:
        self.io = io
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        # h2 refuses every frame after a GOAWAY; RFC 9113 section 6.8 lets the
        # streams below last_stream_id finish, which is what these tests check.
        machine = self.h2.state_machine
        machine._transitions = dict(machine._transitions)
        for name in ConnectionInputs.__members__.values():
            machine._transitions.setdefault(
                (ConnectionState.CLOSED, name), (None, ConnectionState.CLOSED)
            )
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.auto_ack = auto_ack
        self.replies: dict[int, Reply] = {}
        self.goaways: list[tuple[int, int]] = []  # (error code, last stream id)
        self.pings_received = 0
        self.settings_seen = 0
        self.eof = False
        self._send_lock = anyio.Lock()
        self._pumping = False
        self._progress = anyio.Event()

    async def handshake(self) -> None:
        """Pump until the server's SETTINGS (preface and staged update) are applied."""
        with anyio.fail_after(5):
            while self.settings_seen < 1:
                await self.pump()
            await self.flush()
            with anyio.move_on_after(0.05):
                while True:
                    await self.pump()

    async def flush(self) -> None:
        async with self._send_lock:
            data = self.h2.data_to_send()
            if data:
                await self.io.send(data)

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
        authority: bytes = b"example.com",
    ) -> int:
        sid = self.h2.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":authority", authority),
            (b":path", path.encode()),
            *(headers or []),
        ]
        self.replies[sid] = Reply()
        self.h2.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            await self.send_body(sid, body, end=end)
        await self.flush()
        return sid

    async def send_body(self, sid: int, body: bytes, *, end: bool = True) -> None:
        """Send under the server's flow control, pumping while the window is shut."""
        view = body
        while view:
            n = min(
                len(view), self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size
            )
            if n <= 0:
                await self.flush()
                if (
                    min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
                    <= 0
                ):
                    await self.pump()  # a WINDOW_UPDATE may have come in while flushing
                continue
            try:
                self.h2.send_data(sid, view[:n])
            except h2.exceptions.StreamClosedError:
                return  # the server reset the stream: stop sending, as a client must
            view = view[n:]
        if end:
            self.h2.end_stream(sid)
        await self.flush()

    async def pump(self) -> None:
        """Read once and process what arrived (or wait for the task already reading)."""
        if self._pumping:
            await self._progress.wait()
            return
        self._pumping = True
        self._progress = anyio.Event()
        try:
            data = await self.io.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.eof = True
            return
        finally:
            self._pumping = False
            self._progress.set()
        for event in self.h2.receive_data(data):
            self.handle(event)
        await self.flush()

    def handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            reply = self.replies[event.stream_id]
            headers = list(event.headers or [])
            reply.status = int(dict(headers)[b":status"])
            reply.headers = headers
        elif isinstance(event, h2.events.DataReceived):
            self.replies[event.stream_id].data += event.data or b""
            if (
                self.auto_ack
                and event.flow_controlled_length
                and not self.replies[event.stream_id].done
            ):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.replies[event.stream_id].trailers = list(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded):
            self.replies[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.replies:
                self.replies[event.stream_id].reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways.append((int(event.error_code or 0), event.last_stream_id or 0))
        elif isinstance(event, h2.events.PingReceived):
            self.pings_received += 1
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_seen += 1

    async def wait(self, sid: int) -> Reply:
        with anyio.fail_after(10):
            while not self.replies[sid].done:
                await self.pump()
                if self.eof and not self.replies[sid].done:
                    raise AssertionError(f"connection closed before stream {sid} finished")
        return self.replies[sid]

    async def wait_eof(self) -> None:
        with anyio.fail_after(10):
            while not self.eof:
                await self.pump()


@dataclass
class Served:
    client: Client
    conn: http2.Connection
    outcome: list[BaseException | None]
    finished: anyio.Event


@asynccontextmanager
async def serve(
    service: Service, *, client_window: int | None = None, auto_ack: bool = True, **options: Any
) -> AsyncIterator[Served]:
    client_io, server_io = memory_pipe(1 << 20)
    conn = http2.Builder(**options).serve_connection(server_io, service)
    outcome: list[BaseException | None] = []
    finished = anyio.Event()

    async def run() -> None:
        try:
            await conn
        except HyperError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)
        finally:
            finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        client = Client(client_io, window=client_window, auto_ack=auto_ack)
        await client.flush()
        yield Served(client, conn, outcome, finished)
        tg.cancel_scope.cancel()


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, body=Full(b"Hello, World!"))


async def echo(request: Request[Incoming]) -> Response[Any]:
    """Stream the request body back as it arrives, trailers included."""
    body = request.body

    async def frames() -> AsyncIterator[Frame]:
        while (frame := await body.frame()) is not None:
            yield frame

    return Response(200, body=StreamBody(frames()))


# -- basics -------------------------------------------------------------------


async def test_get_1() -> None:
    async with serve(hello) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.status == 200
    assert bytes(reply.data) == b"Hello, World!"
    assert reply.header(b"date") is not None
    assert reply.header(b"content-length") == b"13"


async def test_http2_check_date_header_disabled() -> None:
    async with serve(hello, auto_date_header=False) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.header(b"date") is None


async def test_request_uri_is_absolute_form_from_pseudo_headers() -> None:
    seen: list[Request[Incoming]] = []

    async def record(request: Request[Incoming]) -> Response[Empty]:
        seen.append(request)
        return Response(204)

    async with serve(record) as s:
        await s.client.wait(await s.client.request("/a/b?x=1", authority=b"example.com:8080"))
        # No :authority: Host stands in for it (RFC 9113 section 8.3.1).
        sid = s.client.h2.get_next_available_stream_id()
        s.client.replies[sid] = Reply()
        s.client.h2.send_headers(
            sid,
            [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/h"), (b"host", b"h.test")],
            end_stream=True,
        )
        await s.client.flush()
        await s.client.wait(sid)
    assert str(seen[0].uri) == "http://example.com:8080/a/b?x=1"
    assert seen[0].uri.query == "x=1"
    assert str(seen[0].version) == "HTTP/2"
    assert str(seen[1].uri) == "http://h.test/h"


async def test_http2_auto_response_with_known_length() -> None:
    async with serve(hello) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.header(b"content-length") == b"13"


async def test_http2_auto_response_with_conflicting_lengths() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        return Response(200, headers={"content-length": "10"}, body=Full(b"0123456789"))

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.header(b"content-length") == b"10"


async def test_http2_implicit_empty_size_hint() -> None:
    async def svc(request: Request[Incoming]) -> Response[Empty]:
        return Response(200)

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.header(b"content-length") is None
    assert reply.ended
    assert not reply.data


async def test_get_strip_connection_headers_from_response() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        headers = {"connection": "close", "keep-alive": "1", "upgrade": "x", "x-kept": "yes"}
        return Response(200, headers=headers, body=Full(b"ok"))

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
    names = {n for n, _ in reply.headers}
    assert names.isdisjoint({b"connection", b"keep-alive", b"upgrade"})
    assert reply.header(b"x-kept") == b"yes"


async def test_head_response_sends_no_body() -> None:
    async with serve(hello) as s:
        reply = await s.client.wait(await s.client.request("/", method="HEAD"))
    assert reply.header(b"content-length") == b"13"
    assert not reply.data


# -- bodies, flow control, trailers --------------------------------------------


async def test_post_body_echoed_with_small_windows() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    async with serve(
        echo,
        client_window=16_384,
        initial_stream_window_size=16_384,
        initial_connection_window_size=65_535,
    ) as s:
        sid = await s.client.request("/echo", method="POST", end=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.client.send_body, sid, payload)
            reply = await s.client.wait(sid)
    assert reply.status == 200
    assert bytes(reply.data) == payload


async def test_large_response_waits_for_window_updates() -> None:
    big = b"z" * 3_000_000

    async def svc(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(big))

    # 16 KiB windows: ~180 WINDOW_UPDATE round trips (1 KiB made ~3,000,
    # which overran the 10 s wait on a loaded machine in asyncio debug mode).
    async with serve(svc, client_window=16_384) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert len(reply.data) == len(big)


async def test_slow_reader_never_gets_more_than_the_window() -> None:
    """The receive window is released only as the service consumes data."""
    window = 32_768
    taken = anyio.Event()
    proceed = anyio.Event()
    queued: list[int] = []

    async def svc(request: Request[Incoming]) -> Response[Full]:
        body = request.body
        first = await body.frame()
        assert first is not None
        taken.set()
        await proceed.wait()
        rest = await collect(body)
        return Response(200, body=Full(str(len(first.data_ref or b"") + len(rest.data)).encode()))

    async with serve(svc, initial_stream_window_size=window) as s:
        await s.client.handshake()
        sid = await s.client.request("/", method="POST", end=False)
        client = s.client
        # Push as much as the server allows, then check it stops at its window.
        sent = 0
        while client.h2.local_flow_control_window(sid) > 0:
            n = min(client.h2.local_flow_control_window(sid), 16_384)
            client.h2.send_data(sid, b"a" * n)
            sent += n
            await client.flush()
        await taken.wait()
        with anyio.move_on_after(0.2):
            await client.pump()
        queued.append(client.h2.local_flow_control_window(sid))
        proceed.set()
        await client.send_body(sid, b"b" * 100_000)
        reply = await client.wait(sid)
    assert sent == window
    assert queued[0] <= 16_384  # at most the one consumed frame came back
    assert int(reply.data) == window + 100_000


async def test_trailers_both_ways() -> None:
    async with serve(echo) as s:
        client = s.client
        sid = await client.request("/", method="POST", body=b"hello", end=False)
        client.h2.send_headers(sid, [(b"grpc-status", b"0")], end_stream=True)
        await client.flush()
        reply = await client.wait(sid)
    assert bytes(reply.data) == b"hello"
    assert reply.trailers == [(b"grpc-status", b"0")]


async def test_http2_responds_before_consuming_request_body() -> None:
    async with serve(hello) as s:
        sid = await s.client.request("/", method="POST", body=b"x" * 1000, end=False)
        reply = await s.client.wait(sid)
    assert reply.status == 200
    assert bytes(reply.data) == b"Hello, World!"
    assert reply.reset in (None, 0)


async def test_unread_bodies_do_not_leak_the_connection_window() -> None:
    async def ignore(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"ok"))

    async with serve(ignore, initial_connection_window_size=65_535) as s:
        for _ in range(8):  # 8 x 30 KB > the 64 KiB connection window
            reply = await s.client.wait(
                await s.client.request("/", method="POST", body=b"q" * 30_000)
            )
            assert reply.status == 200


async def test_settings_change_mid_transfer() -> None:
    big = b"s" * 500_000

    async def svc(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(big))

    async with serve(svc, client_window=0) as s:
        client = s.client
        sid = await client.request("/")
        with anyio.move_on_after(0.1):
            while True:
                await client.pump()
        assert not client.replies[sid].data  # window 0: nothing yet
        client.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 8192})
        await client.flush()
        reply = await client.wait(sid)
    assert len(reply.data) == len(big)


async def test_http2_parallel_many_streams() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        data = (await collect(request.body)).to_bytes()
        await anyio.sleep(0.01)
        return Response(200, body=Full(data[::-1]))

    async with serve(svc) as s:
        sids = [
            await s.client.request(f"/{i}", method="POST", body=f"body-{i}".encode() * 1000)
            for i in range(150)
        ]
        replies = [await s.client.wait(sid) for sid in sids]
    for i, reply in enumerate(replies):
        assert bytes(reply.data) == (f"body-{i}".encode() * 1000)[::-1]


# -- errors and cancellation ---------------------------------------------------


async def test_service_error_before_response_gives_500() -> None:
    async def boom(request: Request[Incoming]) -> Response[Full]:
        raise RuntimeError("boom")

    async with serve(boom) as s:
        reply = await s.client.wait(await s.client.request("/"))
        ok = await s.client.wait(await s.client.request("/", method="HEAD"))
    assert reply.status == 500
    assert ok.status == 500  # the connection keeps serving


async def test_http2_service_error_sends_reset_reason() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        raise ProtocolError("nope", error_code=0xC)  # INADEQUATE_SECURITY

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.reset == 0xC


async def test_http2_body_user_error_sends_reset_reason() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ProtocolError("body failed", error_code=0xC)

    async def svc(request: Request[Incoming]) -> Response[Any]:
        return Response(200, body=StreamBody(frames()))

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.status == 200
    assert reply.reset == 0xC


async def test_body_error_after_start_resets_internal_error() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("broken body")

    async def svc(request: Request[Incoming]) -> Response[Any]:
        return Response(200, body=StreamBody(frames()))

    async with serve(svc) as s:
        reply = await s.client.wait(await s.client.request("/"))
        second = await s.client.wait(await s.client.request("/"))
    assert reply.reset == 0x2  # INTERNAL_ERROR
    assert second.reset == 0x2


async def test_peer_reset_cancels_only_its_service_task() -> None:
    cancelled = anyio.Event()
    started = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/slow":
            started.set()
            try:
                await anyio.sleep(math.inf)
            finally:
                cancelled.set()
        return Response(200, body=Full(b"fast"))

    async with serve(svc) as s:
        slow = await s.client.request("/slow")
        await started.wait()
        s.client.h2.reset_stream(slow, 0x8)  # CANCEL
        await s.client.flush()
        with anyio.fail_after(5):
            await cancelled.wait()
        reply = await s.client.wait(await s.client.request("/fast"))
    assert bytes(reply.data) == b"fast"


async def test_peer_reset_mid_response_body_ends_the_body_producer() -> None:
    producer_done = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Any]:
        if request.uri.path == "/again":
            return Response(200, body=Full(b"again"))
        sender, body = channel()

        async def produce() -> None:
            try:
                while True:
                    await sender.send_data(b"x" * 1000)
            except HyperError:
                producer_done.set()

        tg.start_soon(produce)
        return Response(200, body=body)

    async with anyio.create_task_group() as tg, serve(svc, client_window=4096) as s:
        sid = await s.client.request("/")
        while not s.client.replies[sid].data:
            await s.client.pump()
        s.client.h2.reset_stream(sid, 0x8)
        await s.client.flush()
        with anyio.fail_after(5):
            await producer_done.wait()
        reply = await s.client.wait(await s.client.request("/again"))
        assert reply.status == 200
        tg.cancel_scope.cancel()


async def test_service_abandoning_request_body_midway() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        await request.body.frame()
        await request.body.aclose()
        return Response(200, body=Full(b"enough"))

    async with serve(svc) as s:
        sid = await s.client.request("/", method="POST", end=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(s.client.send_body, sid, b"y" * 200_000, end=False))
            reply = await s.client.wait(sid)
            tg.cancel_scope.cancel()
        assert bytes(reply.data) == b"enough"
        again = await s.client.wait(await s.client.request("/", method="POST", body=b"1"))
        assert again.status == 200


async def test_refused_stream_past_max_concurrent_streams() -> None:
    gate = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        await gate.wait()
        return Response(200, body=Full(b"ok"))

    async with serve(svc, max_concurrent_streams=2) as s:
        sids = [await s.client.request(f"/{i}") for i in range(3)]
        third = await s.client.wait(sids[2])
        gate.set()
        first, second = [await s.client.wait(sid) for sid in sids[:2]]
    assert third.reset == 0x7  # REFUSED_STREAM
    assert first.status == second.status == 200


# -- shutdown and keep-alive -----------------------------------------------------


async def test_graceful_shutdown_during_load_loses_nothing() -> None:
    calls: dict[str, int] = {}

    async def svc(request: Request[Incoming]) -> Response[Full]:
        calls[request.uri.path] = calls.get(request.uri.path, 0) + 1
        await anyio.sleep(0.05)
        return Response(200, body=Full(request.uri.path.encode()))

    async with serve(svc) as s:
        client = s.client
        sids = [await client.request(f"/{i}") for i in range(40)]
        s.conn.graceful_shutdown()
        # Streams opened after the first GOAWAY but before its PING came back
        # are still served; after the final GOAWAY they are refused.
        while len(client.goaways) < 2 and not client.eof:
            await client.pump()
        late = client.h2.get_next_available_stream_id()
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await client.request("/late")  # the server may already be gone
        await client.wait_eof()
        with anyio.fail_after(5):
            await s.finished.wait()
    assert s.outcome == [None]
    assert [code for code, _ in client.goaways] == [0, 0]
    last = client.goaways[-1][1]
    assert last >= sids[-1]
    for sid in sids:
        assert bytes(client.replies[sid].data) == f"/{(sid - 1) // 2}".encode()
    assert late > last
    assert late not in client.replies or client.replies[late].status is None  # never answered
    assert all(n == 1 for n in calls.values())
    assert "/late" not in calls


async def test_graceful_shutdown_before_any_bytes() -> None:
    async with serve(hello) as s:
        s.conn.graceful_shutdown()
        await s.client.wait_eof()
        with anyio.fail_after(5):
            await s.finished.wait()
    assert s.outcome == [None]


async def test_http2_detect_conn_eof_when_client_goes_away() -> None:
    gate = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        try:
            await anyio.sleep(math.inf)
        finally:
            gate.set()
        raise AssertionError("unreachable")

    async with serve(svc) as s:
        await s.client.request("/")
        while not gate.is_set():
            await anyio.sleep(0.01)
            if s.finished.is_set():
                break
            await s.client.io.aclose()
        with anyio.fail_after(5):
            await s.finished.wait()
    assert gate.is_set()


async def test_http2_keep_alive_detects_unresponsive_client() -> None:
    timer = FakeTimer(autojump=True)
    async with (
        timer,
        serve(hello, keep_alive_interval=1.0, keep_alive_timeout=1.0, timer=timer) as s,
    ):
        # The client never reads, so it never answers a PING.
        with anyio.fail_after(5):
            await s.finished.wait()
    assert isinstance(s.outcome[0], TimeoutError)


async def test_http2_keep_alive_count_server_pings() -> None:
    async with FakeTimer() as timer, serve(hello, keep_alive_interval=1.0, timer=timer) as s:
        for _ in range(5):
            await anyio.wait_all_tasks_blocked()
            timer.advance(1.0)
            with anyio.move_on_after(0.2):
                while True:
                    await s.client.pump()
        assert s.client.pings_received >= 3
        reply = await s.client.wait(await s.client.request("/"))
        assert reply.status == 200  # http2_keep_alive_with_responsive_client
        assert not s.finished.is_set()


async def test_window_stall_resets_the_stream() -> None:
    async def svc(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"w" * 100_000))

    timer = FakeTimer(autojump=True)
    async with timer, serve(svc, client_window=0, send_stall_timeout=5.0, timer=timer) as s:
        reply = await s.client.wait(await s.client.request("/"))
    assert reply.reset == 0x8  # CANCEL


# -- CONNECT ----------------------------------------------------------------------


async def _tunnel_echo(request: Request[Incoming], tg: anyio.abc.TaskGroup) -> Response[Empty]:
    async def pipe() -> None:
        io = await upgrade.on(request)
        data = await io.receive()
        assert data == b"Bread?"
        await io.send(b"Baguette!")
        await io.send_eof()
        await io.aclose()

    tg.start_soon(pipe)
    return Response(200)


async def test_h2_connect() -> None:
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            return await _tunnel_echo(request, tg)

        async with serve(svc) as s:
            client = s.client
            sid = client.h2.get_next_available_stream_id()
            client.replies[sid] = Reply()
            client.h2.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", b"x.test:443")])
            client.h2.send_data(sid, b"Bread?")
            await client.flush()
            reply = await client.wait(sid)
        assert reply.status == 200
        assert bytes(reply.data) == b"Baguette!"


async def test_extended_connect_carries_protocol() -> None:
    seen: list[object] = []
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            seen.append(request.extensions.get(http2.Protocol))
            return await _tunnel_echo(request, tg)

        async with serve(svc, enable_connect_protocol=True) as s:
            client = s.client
            while client.h2.remote_settings.enable_connect_protocol != 1:
                await client.pump()
            sid = client.h2.get_next_available_stream_id()
            client.replies[sid] = Reply()
            client.h2.send_headers(
                sid,
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"http"),
                    (b":path", b"/chat"),
                    (b":authority", b"x.test"),
                ],
            )
            client.h2.send_data(sid, b"Bread?")
            await client.flush()
            reply = await client.wait(sid)
        assert bytes(reply.data) == b"Baguette!"
    assert seen == [http2.Protocol("websocket")]


async def test_h2_connect_rejected_has_no_upgrade() -> None:
    errors: list[BaseException] = []
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Full]:
            async def later() -> None:
                try:
                    await upgrade.on(request)
                except HyperError as exc:
                    errors.append(exc)

            tg.start_soon(later)
            return Response(400, body=Full(b"no"))

        async with serve(svc) as s:
            sid = s.client.h2.get_next_available_stream_id()
            s.client.replies[sid] = Reply()
            s.client.h2.send_headers(
                sid, [(b":method", b"CONNECT"), (b":authority", b"x.test:443")], end_stream=True
            )
            await s.client.flush()
            reply = await s.client.wait(sid)
    assert reply.status == 400
    assert len(errors) == 1


# -- loopback ---------------------------------------------------------------------


async def test_loopback_concurrent_streams() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await http2.Builder().serve_connection(stream, echo)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        client = Client(stream)
        await client.flush()
        sids = [
            await client.request("/", method="POST", body=bytes([i]) * 50_000) for i in range(100)
        ]
        for i, sid in enumerate(sids):
            reply = await client.wait(sid)
            assert bytes(reply.data) == bytes([i]) * 50_000
        await stream.aclose()
        tg.cancel_scope.cancel()


def test_builder_rejects_out_of_range_options() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        http2.Builder(max_frame_size=1000)
    with pytest.raises(ValueError, match="keep_alive_interval"):
        http2.Builder(keep_alive_interval=0)


async def test_adaptive_window_grows_with_bandwidth_delay_product() -> None:
    payload = b"w" * 4_000_000
    windows: list[int] = []

    async def svc(request: Request[Incoming]) -> Response[Full]:
        data = (await collect(request.body)).to_bytes()
        return Response(200, body=Full(str(len(data)).encode()))

    async with serve(svc, adaptive_window=True) as s:
        client = s.client
        sid = await client.request("/", method="POST", end=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.send_body, sid, payload)
            reply = await client.wait(sid)
        windows.append(client.h2.remote_settings.initial_window_size)
    assert int(reply.data) == len(payload)
    assert windows[0] > 65_535


# -- more CONNECT cases ported from hyper's tests/server.rs ----------------------------


async def _connect(client: Client, authority: bytes = b"x.test:443") -> int:
    sid = client.h2.get_next_available_stream_id()
    client.replies[sid] = Reply()
    client.h2.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", authority)])
    await client.flush()
    return sid


async def test_h2_connect_large_body_and_empty_frames() -> None:
    """``h2_connect_large_body`` and ``h2_connect_empty_frames``."""
    big = bytes(range(256)) * 2000  # 512,000 bytes
    got: list[bytes] = []
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            async def pipe() -> None:
                io = await upgrade.on(request)
                received = bytearray()
                with contextlib.suppress(anyio.EndOfStream):
                    while True:
                        received += await io.receive()
                got.append(bytes(received))
                await io.send(bytes(received))
                await io.send_eof()
                await io.aclose()

            tg.start_soon(pipe)
            return Response(200)

        async with serve(svc) as s:
            client = s.client
            sid = await _connect(client)
            client.h2.send_data(sid, b"")  # empty DATA frames are ignored
            await client.flush()
            async with anyio.create_task_group() as inner:
                inner.start_soon(client.send_body, sid, big)
                reply = await client.wait(sid)
    assert got == [big]
    assert bytes(reply.data) == big


async def test_h2_connect_backpressure_respected() -> None:
    """A 1 KiB client window: all 60 KB still arrive, under flow control."""
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            async def pipe() -> None:
                io = await upgrade.on(request)
                await io.send(b"b" * 60_000)
                await io.send_eof()
                with contextlib.suppress(anyio.EndOfStream):
                    await io.receive()
                await io.aclose()

            tg.start_soon(pipe)
            return Response(200)

        async with serve(svc, client_window=1024) as s:
            await s.client.handshake()
            sid = await _connect(s.client)
            s.client.h2.end_stream(sid)
            await s.client.flush()
            reply = await s.client.wait(sid)
    assert len(reply.data) == 60_000


async def test_h2_connect_reset_during_backpressure() -> None:
    """A client reset while the tunnel writer waits for window fails the writer."""
    errors: list[BaseException] = []
    waiting = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            async def pipe() -> None:
                io = await upgrade.on(request)
                waiting.set()
                try:
                    await io.send(b"c" * 200_000)
                except anyio.BrokenResourceError as exc:
                    errors.append(exc)
                await io.aclose()

            tg.start_soon(pipe)
            return Response(200)

        async with serve(svc, client_window=0) as s:
            await s.client.handshake()
            sid = await _connect(s.client)
            await waiting.wait()
            await anyio.wait_all_tasks_blocked()
            s.client.h2.reset_stream(sid, 0x8)
            await s.client.flush()
            with anyio.fail_after(5):
                while not errors:  # noqa: ASYNC110 - filled by the tunnel task
                    await anyio.sleep(0.01)
    assert isinstance(errors[0], anyio.BrokenResourceError)


async def test_h2_connect_multiplex_resets() -> None:
    """``h2_connect_multiplex``: resets before the response cancel the upgrade."""
    outcomes: dict[str, list[str]] = {"canceled": [], "upgraded": []}
    gate = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            async def later() -> None:
                try:
                    io = await upgrade.on(request)
                except HyperError:
                    outcomes["canceled"].append(str(request.uri))
                    return
                outcomes["upgraded"].append(str(request.uri))
                await io.aclose()

            tg.start_soon(later)
            if request.uri.port == 1:
                await gate.wait()  # reset before we answer
            return Response(200)

        async with serve(svc) as s:
            client = s.client
            early = [await _connect(client, b"early%d.test:1" % i) for i in range(10)]
            late = [await _connect(client, b"late%d.test:2" % i) for i in range(10)]
            for sid in late:
                await client.wait(sid)
            for sid in early:
                client.h2.reset_stream(sid, 0x8)
            await client.flush()
            await anyio.wait_all_tasks_blocked()
            gate.set()
            with anyio.fail_after(5):
                while len(outcomes["canceled"]) + len(outcomes["upgraded"]) < 20:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
    assert len(outcomes["upgraded"]) == 10
    assert all(uri.startswith("late") for uri in outcomes["upgraded"])
    assert len(outcomes["canceled"]) == 10


async def test_get_allow_te_trailers_header() -> None:
    seen: list[str | None] = []

    async def svc(request: Request[Incoming]) -> Response[Empty]:
        seen.append(request.headers.get("te"))
        return Response(204)

    async with serve(svc) as s:
        await s.client.wait(await s.client.request("/", headers=[(b"te", b"trailers")]))
    assert seen == ["trailers"]


async def test_user_executor_runs_the_streams() -> None:
    spawned: list[str] = []
    async with anyio.create_task_group() as tg:

        class Recording:
            def spawn(self, fn: Any, *args: Any) -> None:
                spawned.append(getattr(fn, "__name__", "?"))
                tg.start_soon(fn, *args)

        async with serve(hello, executor=Recording()) as s:
            replies = [await s.client.wait(await s.client.request(f"/{i}")) for i in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert spawned == ["_serve_stream"] * 3


async def test_client_that_stops_reading_the_socket_is_closed() -> None:
    """The writer's stall timeout: the socket accepts nothing for send_stall_timeout."""

    async def svc(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"r" * 5_000_000))

    client_io, server_io = memory_pipe(65_536)
    timer = FakeTimer(autojump=True)
    outcome: list[BaseException | None] = []
    conn = http2.Builder(timer=timer, send_stall_timeout=10.0).serve_connection(server_io, svc)
    finished = anyio.Event()

    async def run() -> None:
        try:
            await conn
        except HyperError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)
        finally:
            finished.set()

    async with timer, anyio.create_task_group() as tg:
        tg.start_soon(run)
        client = Client(client_io, window=2**31 - 1)
        client.h2.increment_flow_control_window(2**31 - 1 - 65_535)
        await client.flush()
        await client.request("/")
        await client.pump()  # take the server's SETTINGS, then stop reading
        with anyio.fail_after(5):
            await finished.wait()
    assert isinstance(outcome[0], TimeoutError)


async def test_graceful_shutdown_after_the_end_is_harmless() -> None:
    async with serve(hello) as s:
        await s.client.wait(await s.client.request("/"))
        await s.client.io.aclose()
        with anyio.fail_after(5):
            await s.finished.wait()
        s.conn.graceful_shutdown()
    assert s.outcome == [None]


async def test_h2_connect_shutdown_while_send_backpressured() -> None:
    """Closing the tunnel while its writer waits for window does not hang."""
    outcome: list[str] = []
    async with anyio.create_task_group() as tg:

        async def svc(request: Request[Incoming]) -> Response[Empty]:
            async def pipe() -> None:
                io = await upgrade.on(request)
                async with anyio.create_task_group() as inner:

                    async def writer() -> None:
                        try:
                            await io.send(b"d" * 100_000)
                        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                            outcome.append("writer stopped")

                    inner.start_soon(writer)
                    await anyio.wait_all_tasks_blocked()
                    await io.aclose()
                outcome.append("closed")

            tg.start_soon(pipe)
            return Response(200)

        async with serve(svc, client_window=0) as s:
            await s.client.handshake()
            sid = await _connect(s.client)
            reply = await s.client.wait(sid)
    assert outcome == ["writer stopped", "closed"]
    assert reply.reset == 0x8  # CANCEL


async def test_client_reset_mid_upload_fails_the_request_body() -> None:
    errors: list[BaseException] = []
    got_some = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        try:
            async for _chunk in request.body:
                got_some.set()
        except HyperError as exc:
            errors.append(exc)
            raise
        return Response(200, body=Full(b"unexpected"))

    async with serve(svc) as s:
        sid = await s.client.request("/", method="POST", body=b"u" * 1000, end=False)
        await got_some.wait()
        s.client.h2.reset_stream(sid, 0x8)
        await s.client.flush()
        with anyio.fail_after(5):
            while not errors:  # noqa: ASYNC110 - filled by the service task
                await anyio.sleep(0.01)
        again = await s.client.wait(await s.client.request("/", method="POST", body=b"x"))
    assert isinstance(errors[0], ProtocolError)
    assert errors[0].error_code == 0x8
    assert again.status == 200
