"""HTTP/2 client connection against a hand-driven h2 server (h2 library, server side).

What belongs here: the behaviour of ``hyper_core.client.conn.http2`` seen from
the wire: header mapping, bodies both ways under flow control, trailers,
multiplexing up to the server's limit, SETTINGS changes mid-transfer,
cancellation, stream resets, GOAWAY, keep-alive, CONNECT tunnels; and the
HTTP/2 client cases of hyper's tests, named after them.

Strategy: :class:`Peer` is an ``h2.connection.H2Connection`` in server mode
driven by the test over one end of a ``memory_pipe`` (or a loopback TCP
socket for the ``transport`` parametrized cases). It records every request,
reset and ping, and answers requests through a handler coroutine the test
gives, sending bodies under flow control like a real server would.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from h2.errors import ErrorCodes

from hyper_core import upgrade
from hyper_core.body import Frame, Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http2
from hyper_core.error import (
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ProtocolError,
    TimeoutError,
    UserError,
)
from hyper_core.ext import on_informational
from hyper_core.http import Headers, Request
from hyper_core.rt import IO, TaskGroupExecutor, receive_or_eof
from hyper_core.testing import FakeTimer, memory_pipe

pytestmark = pytest.mark.anyio

SETTINGS = h2.settings.SettingCodes


@dataclass
class PeerRequest:
    """A request as the server saw it."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)

    def pseudo(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)

    def names(self) -> list[bytes]:
        return [n for n, _ in self.headers]


Handler = Callable[["Peer", PeerRequest], Awaitable[None]]


class Peer:
    """A hand-driven HTTP/2 server on one IO (see the module docstring)."""

    def __init__(self, io: IO, settings: dict[int, int] | None = None) -> None:
        self.io = io
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        values: dict[h2.settings.SettingCodes, int] = {SETTINGS.MAX_CONCURRENT_STREAMS: 1000}
        for key, value in (settings or {}).items():
            values[SETTINGS(key)] = value
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values=values)
        self.requests: dict[int, PeerRequest] = {}
        self.resets: dict[int, int] = {}
        self.pings = 0
        self.handler: Handler | None = None
        self.hold_window = False  # do not return receive window (a stalled server)
        self.paused = False  # stop reading altogether (an unresponsive server)
        self.max_open = 0
        self.arrived = anyio.Event()  # set (and replaced) on each new request
        self.settings_acked = anyio.Event()  # the client has applied our SETTINGS
        self.error: h2.exceptions.ProtocolError | None = None
        self.last_event: h2.events.Event | None = None
        self._window_waiters: list[anyio.Event] = []
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None

    async def flush(self) -> None:
        async with self._lock:
            data = self.conn.data_to_send()
            if data:
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self.io.send(data)

    async def run(self) -> None:
        self.conn.initiate_connection()
        await self.flush()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            while True:
                if self.paused:
                    await anyio.sleep_forever()
                try:
                    data = await receive_or_eof(self.io)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    data = b""
                if not data:
                    tg.cancel_scope.cancel()
                    return
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    # Kept for the test to check; the client's frames after our
                    # GOAWAY also land here (h2 refuses them once CLOSED).
                    self.error = exc
                    await self.flush()
                    tg.cancel_scope.cancel()
                    return
                for event in events:
                    self._on_event(event)
                await self.flush()

    def _on_event(self, event: h2.events.Event) -> None:
        self.last_event = event
        if isinstance(event, h2.events.RequestReceived):
            assert event.headers is not None
            req = PeerRequest(event.stream_id, [(bytes(n), bytes(v)) for n, v in event.headers])
            self.requests[event.stream_id] = req
            self.max_open = max(self.max_open, self.conn.open_inbound_streams)
            self.arrived.set()
            self.arrived = anyio.Event()
        elif isinstance(event, h2.events.DataReceived):
            assert event.data is not None
            self.requests[event.stream_id].body += event.data
            if not self.hold_window and event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            assert event.headers is not None
            self.requests[event.stream_id].trailers = [
                (bytes(n), bytes(v)) for n, v in event.headers
            ]
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            req = self.requests[event.stream_id]
            req.ended.set()
            if self.handler is not None and self._tg is not None:
                self._tg.start_soon(self._handle, req)
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            self.resets[event.stream_id] = int(event.error_code)
            self._wake_senders()
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked.set()
        elif isinstance(event, h2.events.PingReceived):
            self.pings += 1
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._wake_senders()

    def _wake_senders(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for waiter in waiters:
            waiter.set()

    async def _handle(self, req: PeerRequest) -> None:
        assert self.handler is not None
        # The client may reset the stream while we answer: fine for these tests.
        with suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            await self.handler(self, req)

    async def respond(
        self,
        stream_id: int,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
        trailers: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
    ) -> None:
        fields = [(b":status", str(status).encode()), *(headers or [])]
        self.conn.send_headers(stream_id, fields, end_stream=end and not body and not trailers)
        await self.flush()
        if body or trailers:
            await self.send_body(stream_id, body, end=end, trailers=trailers)

    async def send_body(
        self,
        stream_id: int,
        data: bytes,
        *,
        end: bool = True,
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        offset = 0
        while offset < len(data):
            window = self.conn.local_flow_control_window(stream_id)
            size = min(window, self.conn.max_outbound_frame_size, len(data) - offset)
            if size <= 0:
                waiter = anyio.Event()
                self._window_waiters.append(waiter)
                await waiter.wait()
                continue
            self.conn.send_data(stream_id, data[offset : offset + size])
            offset += size
            await self.flush()
        if trailers is not None:
            self.conn.send_headers(stream_id, trailers, end_stream=True)
        elif end:
            self.conn.end_stream(stream_id)
        await self.flush()

    async def wait_requests(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.requests) < count:
                await self.arrived.wait()


async def echo(peer: Peer, req: PeerRequest) -> None:
    """Answer with the request body (and ``x-path`` = the request path)."""
    path = req.pseudo(b":path") or b""
    await peer.respond(req.stream_id, 200, [(b"x-path", path)], bytes(req.body))


@dataclass
class Setup:
    sender: http2.SendRequest
    connection: http2.Connection
    peer: Peer
    tg: anyio.abc.TaskGroup
    served: anyio.Event  # set when connection.serve() returned


@asynccontextmanager
async def h2_setup(
    handler: Handler | None = echo,
    *,
    server_settings: dict[int, int] | None = None,
    transport: str = "memory",
    **options: Any,
) -> AsyncIterator[Setup]:
    """A client connection and a :class:`Peer`, both running in a task group."""
    listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
    if transport == "memory":
        client_io, server_io = memory_pipe()
        client: IO = client_io
        server: IO = server_io
    else:
        multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        socket_listener = multi.listeners[0]
        assert isinstance(socket_listener, anyio.abc.SocketListener)
        listener = multi
        port = socket_listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server = await socket_listener.accept()
    peer = Peer(server, server_settings)
    peer.handler = handler
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.run)
            sender, connection = await http2.handshake(client, **options)
            served = anyio.Event()

            async def drive() -> None:
                await connection.serve()
                served.set()

            tg.start_soon(drive)
            # A server's SETTINGS apply once the client has read them (before
            # that, RFC 9113 defaults hold); tests start from the applied state.
            with anyio.fail_after(5):
                await peer.settings_acked.wait()
            yield Setup(sender, connection, peer, tg, served)
            tg.cancel_scope.cancel()
    finally:
        await server.aclose()
        if listener is not None:
            await listener.aclose()


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``predicate()`` is true."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def url(path: str = "/") -> str:
    return f"http://example.test{path}"


# --------------------------------------------------------------- requests


async def test_get_maps_uri_to_pseudo_headers_and_strips_connection_headers() -> None:
    async with h2_setup() as s:
        request = Request(
            "GET",
            url("/a/b?q=1"),
            headers=[
                ("Host", "example.test"),
                ("Connection", "keep-alive, x-hop"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("Upgrade", "foo"),
                ("Transfer-Encoding", "chunked"),
                ("X-Hop", "1"),
                ("TE", "trailers"),
                ("X-Custom", "Value"),
            ],
        )
        response = await s.sender.send_request(request)
        assert response.status == 200
        assert response.version.name == "HTTP_2"
        assert (await collect(response.body)).to_bytes() == b""
        req = s.peer.requests[1]
        assert req.headers[:4] == [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"example.test"),
            (b":path", b"/a/b?q=1"),
        ]
        names = req.names()
        for gone in (b"host", b"connection", b"keep-alive", b"proxy-connection", b"upgrade"):
            assert gone not in names
        assert b"transfer-encoding" not in names
        assert b"x-hop" not in names
        assert (b"te", b"trailers") in req.headers  # get_allow_te_trailers_header
        assert (b"x-custom", b"Value") in req.headers
        assert b"content-length" not in names  # an empty GET has none


async def test_authority_from_host_header_when_uri_is_origin_form() -> None:
    async with h2_setup() as s:
        response = await s.sender.send_request(Request("GET", "/x", headers={"host": "h.test:81"}))
        await response.body.aclose()
        req = s.peer.requests[1]
        assert req.pseudo(b":authority") == b"h.test:81"
        assert req.pseudo(b":path") == b"/x"
        assert b"host" not in req.names()


async def test_post_outgoing_length() -> None:
    # hyper integration.rs post_outgoing_length: content-length from an exact size hint.
    async with h2_setup() as s:
        response = await s.sender.send_request(
            Request("POST", url("/"), body=Full(b"foo bar baz !"))
        )
        assert (await collect(response.body)).to_bytes() == b"foo bar baz !"
        assert (b"content-length", b"13") in s.peer.requests[1].headers


async def test_post_chunked_strips_transfer_encoding_and_streams() -> None:
    # hyper integration.rs post_chunked: a user TE is stripped; unknown length, no CL.
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"foo", b"bar", b"baz"):
            yield part

    async with h2_setup() as s:
        request = Request(
            "POST", url(), headers={"transfer-encoding": "chunked"}, body=StreamBody(chunks())
        )
        response = await s.sender.send_request(request)
        assert (await collect(response.body)).to_bytes() == b"foobarbaz"
        names = s.peer.requests[1].names()
        assert b"transfer-encoding" not in names
        assert b"content-length" not in names


async def test_empty_delete_has_no_content_length_but_empty_post_has() -> None:
    async with h2_setup() as s:
        for method, expected in (("DELETE", None), ("POST", b"0"), ("HEAD", None)):
            response = await s.sender.send_request(Request(method, url()))
            await collect(response.body)
            req = s.peer.requests[max(s.peer.requests)]
            assert dict(req.headers).get(b"content-length") == expected, method


async def test_request_trailers_are_sent() -> None:
    async def frames() -> AsyncIterator[bytes | Frame]:
        yield b"hello"
        yield Frame.trailers(Headers({"Chunky-Trailer": "header data"}))

    async with h2_setup() as s:
        response = await s.sender.send_request(Request("POST", url(), body=StreamBody(frames())))
        await collect(response.body)
        req = s.peer.requests[1]
        assert bytes(req.body) == b"hello"
        assert req.trailers == [(b"chunky-trailer", b"header data")]


async def test_response_trailers_and_size_hint() -> None:
    async def handler(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(
            req.stream_id,
            200,
            [(b"content-length", b"5")],
            b"hello",
            trailers=[(b"grpc-status", b"0"), (b"x-t", b"2")],
        )

    async with h2_setup(handler) as s:
        response = await s.sender.send_request(Request("GET", url()))
        assert response.body.size_hint().exact == 5  # incoming_content_length
        assert not response.body.is_end_stream()
        collected = await collect(response.body)
        assert collected.to_bytes() == b"hello"
        assert collected.trailers is not None
        assert collected.trailers.get("grpc-status") == "0"
        assert response.body.trailers is not None
        assert response.body.trailers["x-t"] == "2"


async def test_http2_implicit_empty_response_body_is_end_stream() -> None:
    async def handler(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(req.stream_id, 204)

    async with h2_setup(handler) as s:
        response = await s.sender.send_request(Request("GET", url()))
        assert response.status == 204
        assert response.body.is_end_stream()
        assert response.body.size_hint().exact == 0


async def test_http2_responds_before_consuming_request_body_no_trailers() -> None:
    # hyper client.rs: the server answers (and resets NO_ERROR) before the body ends.
    forever = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await forever.wait()
        yield b"never"

    async def handler(peer: Peer, req: PeerRequest) -> None:
        raise AssertionError("the request never ends")

    async with h2_setup(handler) as s:

        async def answer_early() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 200, body=b"early")
            s.peer.conn.reset_stream(1, ErrorCodes.NO_ERROR)
            await s.peer.flush()

        s.tg.start_soon(answer_early)
        response = await s.sender.send_request(Request("POST", url(), body=StreamBody(endless())))
        assert (await collect(response.body)).to_bytes() == b"early"
        await eventually(lambda: not s.sender.active_streams)


async def test_http2_responds_before_consuming_request_body_with_trailers() -> None:
    forever = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield b"x"
        await forever.wait()
        yield b"never"

    async with h2_setup(None) as s:

        async def answer_early() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 200, trailers=[(b"grpc", b"0")])
            s.peer.conn.reset_stream(1, ErrorCodes.NO_ERROR)
            await s.peer.flush()

        s.tg.start_soon(answer_early)
        response = await s.sender.send_request(Request("POST", url(), body=StreamBody(endless())))
        collected = await collect(response.body)
        assert collected.to_bytes() == b""
        assert collected.trailers is not None
        assert collected.trailers["grpc"] == "0"


# ---------------------------------------------------------- multiplexing


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_many_concurrent_streams_on_one_connection(transport: str) -> None:
    # hyper integration.rs http2_parallel_10, with 150 streams and 8 KB bodies.
    async with h2_setup(transport=transport) as s:
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            body = bytes([i % 256]) * 8192
            response = await s.sender.send_request(Request("POST", url(f"/{i}"), body=Full(body)))
            assert response.headers["x-path"] == f"/{i}"
            results[i] = (await collect(response.body)).to_bytes()

        async with anyio.create_task_group() as tg:
            for i in range(150):
                tg.start_soon(one, i)
        assert results == {i: bytes([i % 256]) * 8192 for i in range(150)}
        assert len(s.peer.requests) == 150
        assert s.peer.max_open > 1  # really concurrent


async def test_requests_wait_for_a_slot_beyond_max_concurrent_streams() -> None:
    async def slow(peer: Peer, req: PeerRequest) -> None:
        await anyio.sleep(0.01)
        await echo(peer, req)

    async with h2_setup(slow, server_settings={SETTINGS.MAX_CONCURRENT_STREAMS: 5}) as s:

        async def one(i: int) -> None:
            response = await s.sender.send_request(Request("GET", url(f"/{i}")))
            await collect(response.body)

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(one, i)
        assert s.sender.current_max_send_streams == 5
        assert len(s.peer.requests) == 40
        assert s.peer.max_open <= 5
        assert s.sender.active_streams == 0


async def test_cancel_while_waiting_for_a_slot_opens_no_stream() -> None:
    release = anyio.Event()

    async def handler(peer: Peer, req: PeerRequest) -> None:
        if req.pseudo(b":path") == b"/first":
            await release.wait()
        await echo(peer, req)

    async with h2_setup(handler, server_settings={SETTINGS.MAX_CONCURRENT_STREAMS: 1}) as s:

        async def first() -> None:
            response = await s.sender.send_request(Request("GET", url("/first")))
            await collect(response.body)

        s.tg.start_soon(first)
        await s.peer.wait_requests(1)
        with anyio.move_on_after(0.05) as scope:
            await s.sender.send_request(Request("GET", url("/waits")))
        assert scope.cancelled_caught
        release.set()
        response = await s.sender.send_request(Request("GET", url("/third")))
        assert response.headers["x-path"] == "/third"
        assert [r.pseudo(b":path") for r in s.peer.requests.values()] == [b"/first", b"/third"]
        assert s.peer.resets == {}


async def test_initial_max_send_streams_applies_until_server_settings() -> None:
    client_io, server_io = memory_pipe()
    async with anyio.create_task_group() as tg:
        sender, connection = await http2.handshake(client_io, initial_max_send_streams=2)
        tg.start_soon(connection.serve)
        assert sender.current_max_send_streams == 2
        outcomes: list[type[BaseException]] = []

        async def one() -> None:
            with pytest.raises(HyperError) as info:
                await sender.send_request(Request("GET", url()))
            outcomes.append(type(info.value))

        async with anyio.create_task_group() as requests:
            for _ in range(4):
                requests.start_soon(one)
            await anyio.wait_all_tasks_blocked()
            assert sender.active_streams == 2  # two wait for a slot
            await server_io.aclose()
        # Two were sent and lost with the connection; two never left.
        assert sorted(t.__name__ for t in outcomes) == [
            "IncompleteMessageError",
            "IncompleteMessageError",
            "RequestNotProcessedError",
            "RequestNotProcessedError",
        ]


# ------------------------------------------------------ flow control


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_large_bodies_both_ways_with_small_windows(transport: str) -> None:
    size = 1024 * 1024 + 7
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    async with h2_setup(
        server_settings={SETTINGS.INITIAL_WINDOW_SIZE: 1000},
        transport=transport,
        initial_stream_window_size=4096,
        initial_connection_window_size=65_535,
        max_send_buf_size=8192,
    ) as s:

        async def one() -> None:
            response = await s.sender.send_request(Request("PUT", url(), body=Full(payload)))
            received = bytearray()
            async for chunk in response.body:
                received += chunk
            assert received == payload

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)


async def test_unread_response_body_is_bounded_by_the_stream_window() -> None:
    async def big(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(req.stream_id, 200, body=b"z" * 200_000)

    async with h2_setup(big, initial_stream_window_size=16_384) as s:
        response = await s.sender.send_request(Request("GET", url()))
        await anyio.sleep(0.05)
        await anyio.wait_all_tasks_blocked()
        # The server could send no more than one window while nobody reads.
        assert s.peer.conn.local_flow_control_window(1) == 0
        assert len((await collect(response.body)).to_bytes()) == 200_000


async def test_settings_change_mid_transfer() -> None:
    # The server lowers its stream window and max_concurrent_streams while
    # request bodies are streaming; every exchange still completes.
    size = 300_000
    payload = b"p" * size

    async with h2_setup() as s:

        async def one(i: int) -> None:
            response = await s.sender.send_request(
                Request("POST", url(f"/{i}"), body=Full(payload))
            )
            assert len((await collect(response.body)).to_bytes()) == size

        async def squeeze() -> None:
            await s.peer.wait_requests(3)
            s.peer.conn.update_settings(
                {SETTINGS.INITIAL_WINDOW_SIZE: 512, SETTINGS.MAX_CONCURRENT_STREAMS: 2}
            )
            await s.peer.flush()

        async with anyio.create_task_group() as tg:
            tg.start_soon(squeeze)
            for i in range(12):
                tg.start_soon(one, i)
        assert s.sender.current_max_send_streams == 2
        assert all(len(r.body) == size for r in s.peer.requests.values())


async def test_zero_window_then_release() -> None:
    # h2_connect_zero_window_then_release, for a request body: a server that
    # holds its window stalls the sender until it opens it again.
    async with h2_setup(server_settings={SETTINGS.INITIAL_WINDOW_SIZE: 0}) as s:

        async def send() -> None:
            response = await s.sender.send_request(Request("POST", url(), body=Full(b"a" * 5000)))
            assert (await collect(response.body)).to_bytes() == b"a" * 5000

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await s.peer.wait_requests(1)
            await anyio.sleep(0.02)
            assert bytes(s.peer.requests[1].body) == b""
            s.peer.conn.update_settings({SETTINGS.INITIAL_WINDOW_SIZE: 65_535})
            await s.peer.flush()


async def test_h2_idle_stream_does_not_pin_connection_window() -> None:
    # hyper client.rs: an idle streaming body reserves nothing, so another
    # stream may use the whole connection window.
    idle = anyio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"a"
        await idle.wait()

    async with h2_setup() as s:

        async def stalled_request() -> None:
            with pytest.raises(CanceledError):
                await s.sender.send_request(Request("POST", url("/a"), body=StreamBody(stalled())))

        s.tg.start_soon(stalled_request)
        big = b"b" * 300_000  # far more than the server's 64 KiB connection window
        response = await s.sender.send_request(Request("POST", url("/b"), body=Full(big)))
        assert (await collect(response.body)).to_bytes() == big


async def test_adaptive_window_grows_with_bandwidth_delay_product() -> None:
    async def big(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(req.stream_id, 200, body=b"w" * 2_000_000)

    async with h2_setup(big, adaptive_window=True) as s:
        assert s.peer.conn.remote_settings.initial_window_size == 65_535
        for _ in range(3):
            response = await s.sender.send_request(Request("GET", url()))
            assert len((await collect(response.body)).to_bytes()) == 2_000_000
        assert s.peer.conn.remote_settings.initial_window_size > 65_535


# ------------------------------------------------------ cancellation


async def test_h2_pipe_task_cancelled_on_response_future_drop() -> None:
    # Cancelling send_request resets that stream with CANCEL; others go on.
    async def handler(peer: Peer, req: PeerRequest) -> None:
        if req.pseudo(b":path") != b"/slow":
            await echo(peer, req)

    async with h2_setup(handler) as s:
        with anyio.move_on_after(0.05) as scope:
            await s.sender.send_request(Request("GET", url("/slow")))
        assert scope.cancelled_caught
        response = await s.sender.send_request(Request("GET", url("/fast")))
        assert response.headers["x-path"] == "/fast"
        assert s.peer.resets == {1: ErrorCodes.CANCEL}
        assert s.sender.active_streams == 0


async def test_cancel_mid_request_body_resets_only_that_stream() -> None:
    gate = anyio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"first"
        gate.set()
        await anyio.sleep_forever()
        yield b"never"

    async with h2_setup() as s:

        async def cancelled() -> None:
            with anyio.CancelScope() as scope:
                s.tg.start_soon(lambda: _cancel_when(gate, scope))
                await s.sender.send_request(Request("POST", url("/c"), body=StreamBody(trickle())))

        async def normal(i: int) -> None:
            response = await s.sender.send_request(Request("POST", url(f"/{i}"), body=Full(b"ok")))
            assert (await collect(response.body)).to_bytes() == b"ok"

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancelled)
            for i in range(5):
                tg.start_soon(normal, i)
        await eventually(lambda: s.peer.resets)
        (reset_id,) = s.peer.resets
        assert s.peer.resets[reset_id] == ErrorCodes.CANCEL
        assert bytes(s.peer.requests[reset_id].body) == b"first"
        assert s.sender.active_streams == 0


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_closing_response_body_mid_body_resets_stream() -> None:
    async def handler(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(req.stream_id, 200, body=b"a" * 10_000, end=False)

    async with h2_setup(handler) as s:
        response = await s.sender.send_request(Request("GET", url()))
        chunk = await response.body.frame()
        assert chunk is not None
        assert chunk.data_ref
        await response.body.aclose()
        await eventually(lambda: 1 in s.peer.resets)
        assert s.peer.resets[1] == ErrorCodes.CANCEL
        other = await s.sender.send_request(Request("GET", url()))
        assert other.status == 200


async def test_server_reset_mid_response_body_fails_only_that_body() -> None:
    async def handler(peer: Peer, req: PeerRequest) -> None:
        if req.pseudo(b":path") == b"/cut":
            await peer.respond(req.stream_id, 200, body=b"partial", end=False)
            peer.conn.reset_stream(req.stream_id, ErrorCodes.CANCEL)
            await peer.flush()
        else:
            await echo(peer, req)

    async with h2_setup(handler) as s:
        response = await s.sender.send_request(Request("GET", url("/cut")))
        with pytest.raises(ProtocolError) as info:
            await collect(response.body)
        assert info.value.error_code == ErrorCodes.CANCEL
        other = await s.sender.send_request(Request("POST", url("/ok"), body=Full(b"fine")))
        assert (await collect(other.body)).to_bytes() == b"fine"


async def test_connection_lost_mid_response_body_is_incomplete_message() -> None:
    # hyper client.rs dropped_conn_sends_incomplete_body_error, for HTTP/2.
    async def handler(peer: Peer, req: PeerRequest) -> None:
        await peer.respond(req.stream_id, 200, body=b"partial", end=False)
        await peer.io.aclose()

    async with h2_setup(handler) as s:
        response = await s.sender.send_request(Request("GET", url()))
        with pytest.raises(IncompleteMessageError):
            await collect(response.body)
        await eventually(s.served.is_set)
        assert s.sender.is_closed()


async def test_informational_responses_reach_the_callback() -> None:
    seen: list[int] = []

    async def handler(peer: Peer, req: PeerRequest) -> None:
        peer.conn.send_headers(req.stream_id, [(b":status", b"103"), (b"link", b"</s.css>")])
        await peer.respond(req.stream_id, 200, body=b"final")

    async with h2_setup(handler) as s:
        request = Request("GET", url())
        on_informational(request, lambda info: seen.append(info.status))
        response = await s.sender.send_request(request)
        assert response.status == 200
        assert (await collect(response.body)).to_bytes() == b"final"
        assert seen == [103]


async def test_body_error_is_user_error_and_resets_internal_error() -> None:
    # hyper client.rs test_body_panics, for HTTP/2.
    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        raise RuntimeError("body broke")

    async with h2_setup(None) as s:
        with pytest.raises(UserError) as info:
            await s.sender.send_request(Request("POST", url(), body=StreamBody(broken())))
        assert isinstance(info.value.__cause__, RuntimeError)
        await eventually(lambda: 1 in s.peer.resets)
        assert s.peer.resets[1] == ErrorCodes.INTERNAL_ERROR


# ----------------------------------------------------------- resets, GOAWAY


async def test_server_reset_is_protocol_error_with_code() -> None:
    # http2_service_error_sends_reset_reason, seen from the client.
    async def handler(peer: Peer, req: PeerRequest) -> None:
        peer.conn.reset_stream(req.stream_id, ErrorCodes.INADEQUATE_SECURITY)
        await peer.flush()

    async with h2_setup(handler) as s:
        with pytest.raises(ProtocolError) as info:
            await s.sender.send_request(Request("GET", url()))
        assert info.value.error_code == ErrorCodes.INADEQUATE_SECURITY
        assert not s.sender.is_closed()


async def test_refused_stream_is_retryable() -> None:
    async def handler(peer: Peer, req: PeerRequest) -> None:
        peer.conn.reset_stream(req.stream_id, ErrorCodes.REFUSED_STREAM)
        await peer.flush()

    async with h2_setup(handler) as s:
        with pytest.raises(http2.RequestNotProcessedError) as info:
            await s.sender.send_request(Request("GET", url()))
        assert info.value.retryable is True
        assert isinstance(info.value, CanceledError)


async def test_goaway_during_load_fails_only_streams_above_last_stream_id() -> None:
    answered: list[int] = []
    total = 60
    goaway_sent = anyio.Event()

    async def handler(peer: Peer, req: PeerRequest) -> None:
        await goaway_sent.wait()  # GOAWAY arrives while every request is in flight
        if req.stream_id <= 39:  # a real server drops what it refused
            answered.append(req.stream_id)
            await echo(peer, req)

    async with h2_setup(handler) as s:
        outcomes: dict[int, str] = {}

        async def one(i: int) -> None:
            try:
                response = await s.sender.send_request(
                    Request("POST", url(f"/{i}"), body=Full(b"%d" % i))
                )
                assert (await collect(response.body)).to_bytes() == b"%d" % i
                outcomes[i] = "ok"
            except http2.RequestNotProcessedError as exc:
                outcomes[i] = "retry" if exc.retryable else "not retryable"

        async def goaway() -> None:
            await s.peer.wait_requests(total)
            s.peer.conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id=39)
            # h2 (server side) refuses to send after its GOAWAY; let it answer
            # the streams it kept, as RFC 9113 section 6.8 allows.
            s.peer.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
            await s.peer.flush()
            goaway_sent.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(goaway)
            for i in range(total):
                tg.start_soon(one, i)
        assert len(outcomes) == total
        ok = [i for i, o in outcomes.items() if o == "ok"]
        assert len(ok) == 20  # streams 1, 3, ..., 39
        assert sorted(answered) == list(range(1, 40, 2))  # each answered once
        assert list(outcomes.values()).count("retry") == total - 20
        await eventually(s.served.is_set)  # the last kept stream done: the connection ends
        assert s.sender.is_closed()
        with pytest.raises(ClosedError):
            await s.sender.ready()
        with pytest.raises(CanceledError):
            await s.sender.send_request(Request("GET", url()))


async def test_goaway_and_kept_stream_frames_in_one_read() -> None:
    # The GOAWAY and the response of a stream it keeps arrive in one read: h2
    # alone would close at the GOAWAY and reject the frames after it within
    # the same receive_data ("the server broke the HTTP/2 protocol").
    async def handler(peer: Peer, req: PeerRequest) -> None:
        conn = peer.conn
        if req.stream_id == 1:
            return  # answered below, together with the GOAWAY
        conn.close_connection(ErrorCodes.NO_ERROR, last_stream_id=1)
        conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
        conn.send_headers(1, [(b":status", b"200")])
        conn.send_data(1, b"kept", end_stream=True)
        await peer.flush()  # GOAWAY, HEADERS and DATA in one write

    async with h2_setup(handler) as s:
        bodies: list[bytes] = []

        async def first() -> None:
            response = await s.sender.send_request(Request("GET", url("/1")))
            assert response.status == 200
            bodies.append((await collect(response.body)).to_bytes())

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await s.peer.wait_requests(1)
            with pytest.raises(http2.RequestNotProcessedError) as refused:
                await s.sender.send_request(Request("GET", url("/2")))
        assert refused.value.retryable
        assert bodies == [b"kept"]
        await eventually(s.served.is_set)


async def test_http2_detect_conn_eof() -> None:
    # After a server GOAWAY and no open stream, the connection ends.
    async with h2_setup(None) as s:
        s.peer.conn.close_connection(ErrorCodes.NO_ERROR)
        await s.peer.flush()
        await eventually(lambda: s.sender.is_closed())
        with pytest.raises(ClosedError):
            await s.sender.ready()


async def test_try_send_request_gives_back_unsent_request() -> None:
    # hyper client.rs test_try_send_request, for HTTP/2.
    async with h2_setup() as s:
        await s.sender.aclose()
        request = Request("POST", url(), body=Full(b"again"))
        with pytest.raises(http2.TrySendError) as info:
            await s.sender.try_send_request(request)
        assert info.value.request is request
        assert isinstance(info.value.error, CanceledError)


@pytest.mark.parametrize("sync", [False, True], ids=["aclose", "close"])
async def test_sender_aclose_ends_connection_with_goaway(sync: bool) -> None:
    client_io, server_io = memory_pipe()
    peer = Peer(server_io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(peer.run)
        sender, connection = await http2.handshake(client_io)
        peer.handler = echo
        served = anyio.Event()

        async def drive() -> None:
            await connection
            served.set()

        tg.start_soon(drive)
        response = await sender.send_request(Request("GET", url()))
        await collect(response.body)
        assert not served.is_set()
        if sync:
            sender.close()
        else:
            await sender.aclose()
        with anyio.fail_after(5):
            await served.wait()  # serve() returns once the GOAWAY is written
        await eventually(lambda: isinstance(peer.last_event, h2.events.ConnectionTerminated))


# ------------------------------------------------------------ keep-alive


async def test_http2_keep_alive_closes_open_streams() -> None:
    async with (
        FakeTimer(autojump=True) as timer,
        h2_setup(None, keep_alive_interval=1.0, keep_alive_timeout=1.0, timer=timer) as s,
    ):
        await s.peer.flush()
        await anyio.wait_all_tasks_blocked()
        s.peer.paused = True
        with pytest.raises(TimeoutError):
            await s.sender.send_request(Request("GET", url()))
        assert s.sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await s.sender.ready()
        assert isinstance(info.value.__cause__, TimeoutError)


async def test_http2_keep_alive_detects_unresponsive_server_while_idle() -> None:
    async with (
        FakeTimer(autojump=True) as timer,
        h2_setup(
            None,
            keep_alive_interval=1.0,
            keep_alive_timeout=1.0,
            keep_alive_while_idle=True,
            timer=timer,
        ) as s,
    ):
        await anyio.wait_all_tasks_blocked()
        s.peer.paused = True
        with anyio.fail_after(5):
            await s.served.wait()
        assert s.sender.is_closed()


async def test_http2_keep_alive_not_while_idle() -> None:
    timer = FakeTimer()
    async with h2_setup(None, keep_alive_interval=1.0, keep_alive_timeout=1.0, timer=timer) as s:
        for _ in range(4):
            timer.advance(1.0)
            await anyio.wait_all_tasks_blocked()
        assert s.peer.pings == 0
        assert not s.sender.is_closed()


async def test_http2_keep_alive_with_responsive_server() -> None:
    timer = FakeTimer()
    async with h2_setup(
        keep_alive_interval=1.0, keep_alive_timeout=1.0, keep_alive_while_idle=True, timer=timer
    ) as s:
        for _ in range(4):
            timer.advance(1.0)
            await anyio.sleep(0.01)
            await anyio.wait_all_tasks_blocked()
        assert s.peer.pings >= 2
        assert not s.sender.is_closed()
        response = await s.sender.send_request(Request("GET", url()))
        assert response.status == 200


# ----------------------------------------------------------- CONNECT


async def test_h2_connect() -> None:
    async with h2_setup(None) as s:

        async def serve_tunnel() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 200, end=False)
            await s.peer.send_body(1, b"Bread?", end=False)

        s.tg.start_soon(serve_tunnel)
        response = await s.sender.send_request(Request("CONNECT", "example.test:443"))
        assert response.status == 200
        req = s.peer.requests[1]
        assert req.headers == [(b":method", b"CONNECT"), (b":authority", b"example.test:443")]
        io = await upgrade.on(response)
        assert await io.receive() == b"Bread?"
        await io.send(b"Baguette!")
        await eventually(lambda: bytes(req.body) == b"Baguette!")
        await io.send_eof()
        with anyio.fail_after(5):
            await req.ended.wait()
        await io.aclose()


async def test_h2_connect_backpressure_respected() -> None:
    # A 1 KiB window: all 60 KB written into the tunnel still arrive.
    async with h2_setup(None, server_settings={SETTINGS.INITIAL_WINDOW_SIZE: 1024}) as s:

        async def answer() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 200, end=False)

        s.tg.start_soon(answer)
        response = await s.sender.send_request(Request("CONNECT", "example.test:443"))
        io = await upgrade.on(response)
        payload = bytes(range(256)) * 235  # 60,160 bytes
        await io.send(payload)
        await io.send_eof()
        req = s.peer.requests[1]
        with anyio.fail_after(5):
            await req.ended.wait()
        assert bytes(req.body) == payload
        await io.aclose()


async def test_h2_connect_rejected() -> None:
    async with h2_setup(None) as s:

        async def answer() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 400, body=b"no tunnel")

        s.tg.start_soon(answer)
        response = await s.sender.send_request(Request("CONNECT", "example.test:443"))
        assert response.status == 400
        with pytest.raises(UserError):
            await upgrade.on(response)
        assert (await collect(response.body)).to_bytes() == b"no tunnel"


async def test_extended_connect_sends_protocol() -> None:
    async with h2_setup(None, server_settings={SETTINGS.ENABLE_CONNECT_PROTOCOL: 1}) as s:

        async def answer() -> None:
            await s.peer.wait_requests(1)
            await s.peer.respond(1, 200, end=False)

        await s.peer.flush()
        await eventually(lambda: s.sender.is_extended_connect_protocol_enabled())
        s.tg.start_soon(answer)
        request = Request("CONNECT", url("/chat"))
        request.extensions.insert(http2.Protocol("websocket"))
        response = await s.sender.send_request(request)
        req = s.peer.requests[1]
        assert req.pseudo(b":protocol") == b"websocket"
        assert req.pseudo(b":path") == b"/chat"
        assert req.pseudo(b":scheme") == b"http"
        io = await upgrade.on(response)
        await io.aclose()


@pytest.mark.parametrize("enabled", [1, 0], ids=["enabled", "not-enabled"])
async def test_extended_connect_waits_for_the_servers_first_settings(enabled: int) -> None:
    # RFC 8441 section 3: the client may send :protocol only once the server's
    # SETTINGS said so. A request made right after the handshake waits for them
    # instead of failing (the server has not had a chance to speak yet).
    client_io, server_io = memory_pipe()
    peer = Peer(server_io, {SETTINGS.ENABLE_CONNECT_PROTOCOL: enabled})
    outcome: list[object] = []
    async with anyio.create_task_group() as tg:
        sender, connection = await http2.handshake(client_io)
        tg.start_soon(connection.serve)

        async def send() -> None:
            request = Request("CONNECT", url("/chat"))
            request.extensions.insert(http2.Protocol("websocket"))
            try:
                outcome.append((await sender.send_request(request)).status)
            except UserError as exc:
                outcome.append(exc)

        async def answer() -> None:
            await peer.wait_requests(1)
            await peer.respond(1, 200, end=False)

        tg.start_soon(send)
        await anyio.wait_all_tasks_blocked()
        assert outcome == []  # nothing from the server yet: it waits
        tg.start_soon(peer.run)
        if enabled:
            tg.start_soon(answer)
        await eventually(lambda: outcome)
        tg.cancel_scope.cancel()
    if enabled:
        assert outcome == [200]
    else:
        assert isinstance(outcome[0], UserError)
        assert "did not enable extended CONNECT" in str(outcome[0])
    await server_io.aclose()


async def test_extended_connect_before_settings_fails_when_the_connection_closes() -> None:
    client_io, server_io = memory_pipe()
    async with anyio.create_task_group() as tg:
        sender, connection = await http2.handshake(client_io)
        tg.start_soon(connection.serve)
        request = Request("CONNECT", url("/chat"))
        request.extensions.insert(http2.Protocol("websocket"))

        async def close_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            await server_io.aclose()  # the server leaves without a word

        tg.start_soon(close_soon)
        with anyio.fail_after(5), pytest.raises(HyperError):
            await sender.send_request(request)


async def test_extended_connect_needs_server_support_and_connect_with_body_fails() -> None:
    async with h2_setup(None) as s:
        request = Request("CONNECT", url("/chat"))
        request.extensions.insert(http2.Protocol("websocket"))
        with pytest.raises(UserError):
            await s.sender.send_request(request)
        with pytest.raises(UserError):
            await s.sender.send_request(Request("CONNECT", "h.test:443", body=Full(b"x")))
        assert not s.sender.is_closed()


async def test_request_sent_before_serve_starts_and_custom_executor() -> None:
    client_io, server_io = memory_pipe()
    peer = Peer(server_io)
    peer.handler = echo

    async def chunks() -> AsyncIterator[bytes]:
        yield b"streamed "
        yield b"body"

    async with anyio.create_task_group() as tg:
        tg.start_soon(peer.run)
        async with anyio.create_task_group() as pumps:
            sender, connection = await http2.handshake(client_io, executor=TaskGroupExecutor(pumps))
            result: list[bytes] = []

            async def early() -> None:
                response = await sender.send_request(
                    Request("POST", url(), body=StreamBody(chunks()))
                )
                result.append((await collect(response.body)).to_bytes())

            tg.start_soon(early)
            await anyio.wait_all_tasks_blocked()  # the request waits for a driver
            tg.start_soon(connection.serve)
            await eventually(lambda: result)
            assert result == [b"streamed body"]
            await sender.aclose()
        tg.cancel_scope.cancel()


async def test_builder_validates_options() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        http2.Builder(max_frame_size=100)
    with pytest.raises(ValueError, match="keep_alive_interval"):
        http2.Builder(keep_alive_interval=0)
    assert math.isfinite(http2.DEFAULT_KEEP_ALIVE_TIMEOUT)


async def test_incoming_type() -> None:
    async with h2_setup() as s:
        response = await s.sender.send_request(Request("GET", url()))
        assert isinstance(response.body, Incoming)
        await response.body.aclose()
