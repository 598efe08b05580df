"""The auto server connection: version sniffing, ALPN, *_only, h2c upgrade, shutdown.

What belongs here: ``hyper_util.server.conn.auto`` driven by hyper-core's own
HTTP/1 and HTTP/2 clients over in-memory pipes, plus raw bytes where the
wire matters (one byte at a time, the h2c upgrade). Loopback and external
peers are in ``test_server_serve.py``.

Strategy: each test runs the server connection in a task of its own task
group and a client over the other end of ``memory_pipe``; every wait is
bounded by ``fail_after``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import h2.config
import h2.connection
import h2.events
import pytest

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http1 as client_h1
from hyper_core.client.conn import http2 as client_h2
from hyper_core.error import HeaderTimeoutError, HyperError, UserError
from hyper_core.http import Request, Response, Version
from hyper_core.rt import IO
from hyper_core.server.conn import http1, http2
from hyper_core.testing import FakeTimer, memory_pipe
from hyper_core.upgrade import Upgraded
from hyper_util.server.conn import auto

pytestmark = pytest.mark.anyio

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


async def app(request: Request[Incoming]) -> Response[Full]:
    body = (await collect(request.body)).to_bytes()
    text = f"{request.method} {request.uri.path_and_query} {request.version} {len(body)}"
    return Response(200, headers={"x-app": "yes"}, body=Full(text.encode()))


class Trickle:
    """Client-side IO that writes one byte per send (the server reads them one by one)."""

    def __init__(self, io: IO) -> None:
        self._io = io

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        return await self._io.receive(max_bytes)

    async def send(self, item: bytes, /) -> None:
        for i in range(len(item)):
            await self._io.send(item[i : i + 1])
            await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        await self._io.send_eof()

    async def aclose(self) -> None:
        await self._io.aclose()


async def run_server(
    conn: auto.Connection, outcome: list[BaseException | None], *, task_status: Any
) -> None:
    task_status.started()
    try:
        await conn
    except HyperError as exc:
        outcome.append(exc)
    else:
        outcome.append(None)


async def read_to_eof(io: IO) -> bytes:
    received = b""
    while True:
        try:
            received += await io.receive()
        except anyio.EndOfStream:
            return received


async def h1_get(io: IO, paths: Sequence[str]) -> list[tuple[int, bytes, Version]]:
    sender, connection = await client_h1.handshake(io)
    results = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        for path in paths:
            response = await sender.send_request(
                Request("POST", path, headers={"host": "test"}, body=Full(b"abc"))
            )
            body = (await collect(response.body)).to_bytes()
            results.append((int(response.status), body, response.version))
        await sender.aclose()
    return results


async def h2_get(io: IO, paths: Sequence[str]) -> list[tuple[int, bytes, Version]]:
    sender, connection = await client_h2.handshake(io)
    results: list[tuple[int, bytes, Version]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)

        async def one(path: str) -> None:
            response = await sender.send_request(Request("GET", f"http://test{path}"))
            body = (await collect(response.body)).to_bytes()
            results.append((int(response.status), body, response.version))

        async with anyio.create_task_group() as requests:
            for path in paths:
                requests.start_soon(one, path)
        await sender.aclose()
        tg.cancel_scope.cancel()
    return results


async def test_http1_and_http2_prior_knowledge_on_the_same_builder() -> None:
    builder = auto.Builder()
    for client, expected_version, method, n in (
        (h1_get, "HTTP/1.1", "POST", 3),
        (h2_get, "HTTP/2", "GET", 0),
    ):
        server_io, client_io = memory_pipe()
        conn = builder.serve_connection(server_io, app)
        outcome: list[BaseException | None] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(run_server, conn, outcome)
                results = await client(client_io, ["/a", "/b?x=1"])
        assert [status for status, _, _ in results] == [200, 200]
        assert sorted(body for _, body, _ in results) == [
            f"{method} /a {expected_version} {n}".encode(),
            f"{method} /b?x=1 {expected_version} {n}".encode(),
        ]
        assert [body.split()[2] for _, body, _ in results] == [expected_version.encode()] * 2
        assert conn.version is (Version.HTTP_2 if expected_version == "HTTP/2" else Version.HTTP_11)
        assert outcome == [None]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
async def test_bytes_arriving_one_at_a_time(protocol: str) -> None:
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            client = h1_get if protocol == "http1" else h2_get
            results = await client(Trickle(client_io), ["/one"])
    assert len(results) == 1
    status, body, _ = results[0]
    assert status == 200
    assert body.startswith(b"POST /one HTTP/1.1 3" if protocol == "http1" else b"GET /one HTTP/2 0")
    assert outcome == [None]


async def test_request_shorter_than_the_preface_then_eof() -> None:
    # "GET / HTTP/1.0\r\n\r\n" is 18 bytes: shorter than the preface, and the
    # client then shuts down its side. Nothing may be lost waiting for more.
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(b"GET / HTTP/1.0\r\n\r\n")
            received = b""
            while True:
                try:
                    received += await client_io.receive()
                except anyio.EndOfStream:
                    break
    assert received.startswith((b"HTTP/1.0 200 OK\r\n", b"HTTP/1.1 200 OK\r\n"))
    assert received.endswith(b"GET / HTTP/1.0 0")
    assert outcome == [None]


async def test_mismatch_at_the_last_preface_byte_is_http1() -> None:
    # 23 bytes of the preface and then something else: HTTP/1 gets every byte,
    # in order, and rejects the request line as malformed.
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(PREFACE[:23] + b"X")
            await client_io.send_eof()
            received = b""
            while True:
                try:
                    received += await client_io.receive()
                except anyio.EndOfStream:
                    break
    assert conn.version is Version.HTTP_11
    assert b"HTTP/2" not in received
    assert len(outcome) == 1
    assert isinstance(outcome[0], HyperError)


async def test_an_http1_request_sharing_the_preface_start_keeps_every_byte() -> None:
    # "PRI * HTTP/1.1" matches the preface for 11 bytes: all of them, and the
    # rest, must reach HTTP/1 in order.
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await Trickle(client_io).send(
                b"PRI /x HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
            )
            received = b""
            while True:
                try:
                    received += await client_io.receive()
                except anyio.EndOfStream:
                    break
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.endswith(b"PRI /x HTTP/1.1 2")
    assert outcome == [None]


async def test_http1_only_and_http2_only() -> None:
    with pytest.raises(ValueError, match="exclude"):
        auto.Builder(http1_only=True, http2_only=True)
    with pytest.raises(ValueError, match="h2c_upgrade"):
        auto.Builder(http1_only=True, h2c_upgrade=True)
    builder = auto.Builder(http2_only=True)
    assert builder.is_http2_available()
    assert not builder.is_http1_available()

    # http2_only serves HTTP/2 ...
    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            results = await h2_get(client_io, ["/x"])
    assert results[0][0] == 200
    # ... and refuses an HTTP/1 client (h2 rejects the preface).
    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app)
    outcome = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            received = await read_to_eof(client_io)
            assert not received.startswith(b"HTTP/1.1")
    assert isinstance(outcome[0], HyperError)

    # http1_only refuses an HTTP/2 client at the HTTP/1 level.
    server_io, client_io = memory_pipe()
    conn = auto.Builder(http1_only=True).serve_connection(server_io, app)
    outcome = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(PREFACE)
            assert await read_to_eof(client_io) == b""
    assert conn.version is Version.HTTP_11
    assert isinstance(outcome[0], HyperError)


async def test_alpn_chooses_without_sniffing() -> None:
    builder = auto.Builder()
    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app, alpn="h2")
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            assert (await h2_get(client_io, ["/alpn"]))[0][0] == 200
    assert conn.version is Version.HTTP_2

    # "http/1.1" never looks at the bytes: a preface is just a bad HTTP/1 request.
    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app, alpn=b"http/1.1")
    outcome = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(PREFACE)
            assert await read_to_eof(client_io) == b""
    assert conn.version is Version.HTTP_11
    assert isinstance(outcome[0], HyperError)

    with pytest.raises(ValueError, match="ALPN"):
        builder.serve_connection(server_io, app, alpn="spdy/3")

    # ALPN contradicting the builder: UserError, and the IO is closed.
    server_io, client_io = memory_pipe()
    with anyio.fail_after(10):
        with pytest.raises(UserError, match="http1_only"):
            await auto.Builder(http1_only=True).serve_connection(server_io, app, alpn="h2")
        with pytest.raises(anyio.EndOfStream):
            await client_io.receive()


async def test_per_version_options_are_used() -> None:
    # An http1 option (keep_alive=False) and an http2 option (the advertised
    # max_concurrent_streams) reach their connections.
    builder = auto.Builder(
        http1=http1.Builder(keep_alive=False),
        http2=http2.Builder(max_concurrent_streams=7),
    )
    assert "keep_alive=False" in repr(builder.http1)
    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            received = b""
            while True:
                try:
                    received += await client_io.receive()
                except anyio.EndOfStream:
                    break
    assert b"connection: close" in received.lower()

    server_io, client_io = memory_pipe()
    conn = builder.serve_connection(server_io, app)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, [])
            sender, connection = await client_h2.handshake(client_io)
            tg.start_soon(connection.serve)
            response = await sender.send_request(Request("GET", "http://test/"))
            await collect(response.body)
            assert sender.current_max_send_streams == 7
            await sender.aclose()


async def test_graceful_shutdown_while_sniffing_closes_after_the_grace() -> None:
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(auto.FIRST_REQUEST_GRACE + 5):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(b"PRI * HTTP")  # a partial preface: still undecided
            await anyio.wait_all_tasks_blocked()
            conn.graceful_shutdown()
        with pytest.raises(anyio.EndOfStream):
            await client_io.receive()
    assert outcome == [None]
    assert conn.version is None


async def read_to_end(client_io: Any) -> bytes:
    received = b""
    while True:
        try:
            received += await client_io.receive()
        except anyio.EndOfStream:
            return received


@pytest.mark.parametrize("when", ["before it runs", "while sniffing"])
async def test_graceful_shutdown_serves_a_first_request_arriving_within_the_grace(
    when: str,
) -> None:
    # A connection accepted just before the shutdown (workers being
    # replaced) has its request on the way: served, not reset.
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    if when == "before it runs":
        conn.graceful_shutdown()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await anyio.wait_all_tasks_blocked()
            if when == "while sniffing":
                conn.graceful_shutdown()
            await client_io.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            received = await read_to_end(client_io)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in received.lower()
    assert outcome == [None]


async def test_graceful_shutdown_before_it_runs() -> None:
    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, app)
    conn.graceful_shutdown()
    with anyio.fail_after(auto.FIRST_REQUEST_GRACE + 5):
        await conn
        with pytest.raises(anyio.EndOfStream):
            await client_io.receive()
    with pytest.raises(UserError):
        await conn


async def test_graceful_shutdown_on_http1_finishes_the_request() -> None:
    gate = anyio.Event()

    async def slow(request: Request[Incoming]) -> Response[Full]:
        await gate.wait()
        return Response(200, body=Full(b"done"))

    server_io, client_io = memory_pipe()
    conn = auto.Builder().serve_connection(server_io, slow)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await anyio.wait_all_tasks_blocked()
            conn.graceful_shutdown()
            gate.set()
            received = b""
            while True:
                try:
                    received += await client_io.receive()
                except anyio.EndOfStream:
                    break
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in received.lower()
    assert received.endswith(b"done")
    assert outcome == [None]


async def test_version_read_timeout() -> None:
    timer = FakeTimer(autojump=True)
    async with timer:
        server_io, client_io = memory_pipe()
        conn = auto.Builder(version_read_timeout=5, timer=timer).serve_connection(server_io, app)
        await client_io.send(b"PRI")
        start = timer.now()
        with anyio.fail_after(5), pytest.raises(HeaderTimeoutError):
            await conn
        assert timer.now() - start == pytest.approx(5)
        with pytest.raises(anyio.EndOfStream):
            await client_io.receive()


class Unreceiving:
    """Server-side IO with the ``unreceive`` capability (hyper-util's asyncio fast path has it)."""

    def __init__(self, io: IO) -> None:
        self._io = io
        self._back = b""
        self.given_back: list[bytes] = []

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        if self._back:
            data, self._back = self._back[:max_bytes], self._back[max_bytes:]
            return data
        return await self._io.receive(max_bytes)

    def unreceive(self, data: bytes) -> None:
        self.given_back.append(data)
        self._back = data + self._back

    async def send(self, item: bytes, /) -> None:
        await self._io.send(item)

    async def send_eof(self) -> None:
        await self._io.send_eof()

    async def aclose(self) -> None:
        await self._io.aclose()


WIRES = {
    "trickled": (True, b"POST /t HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"),
    "pipelined": (False, b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\n"),
    "preface start": (True, b"PRI /x HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"),
    "short": (False, b"GET / HTTP/1.0\r\n\r\n"),
}


async def _exchange(server_io: IO, client_io: IO, trickle: bool, wire: bytes) -> bytes:
    conn = auto.Builder().serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await (Trickle(client_io) if trickle else client_io).send(wire)
            await client_io.send_eof()
            received = await read_to_eof(client_io)
    assert outcome == [None]
    return b"\r\n".join(
        line for line in received.split(b"\r\n") if not line.lower().startswith(b"date:")
    )


@pytest.mark.parametrize("wire", WIRES, ids=str)
async def test_sniffed_bytes_given_back_or_rewound_alike(wire: str) -> None:
    # The one path: the bytes read to tell the version are handed back to
    # the stream when it can take them, else replayed by a rewind IO; HTTP/1
    # must see the same bytes either way.
    trickle, data = WIRES[wire]
    server_io, client_io = memory_pipe()
    rewound = await _exchange(server_io, client_io, trickle, data)
    server_io, client_io = memory_pipe()
    giving_back = Unreceiving(server_io)
    given_back = await _exchange(giving_back, client_io, trickle, data)
    assert given_back == rewound
    assert rewound.count(b" 200 OK") == (2 if wire == "pipelined" else 1)
    assert giving_back.given_back  # the stream took the sniffed bytes back


async def test_http2_on_a_stream_that_takes_sniffed_bytes_back() -> None:
    server_io, client_io = memory_pipe()
    giving_back = Unreceiving(server_io)
    conn = auto.Builder().serve_connection(giving_back, app)
    outcome: list[BaseException | None] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            results = await h2_get(client_io, ["/a"])
    assert results == [(200, b"GET /a HTTP/2 0", Version.HTTP_2)]
    assert giving_back.given_back[0].startswith(PREFACE)


async def test_rewind_replays_in_slices() -> None:
    # What the auto server wraps a sniffed connection in.
    server_io, client_io = memory_pipe()
    rewind = Upgraded(server_io, b"abcdef")
    assert await rewind.receive(4) == b"abcd"
    assert await rewind.receive() == b"ef"
    await client_io.send(b"gh")
    assert await rewind.receive() == b"gh"
    await rewind.send_many([b"1", b"2"])
    await rewind.send(b"3")
    await rewind.flush()
    received = b""
    while len(received) < 3:
        received += await client_io.receive()
    assert received == b"123"
    await client_io.send_eof()
    with pytest.raises(anyio.EndOfStream):
        await rewind.receive()
    await rewind.aclose()
    assert rewind.io is server_io


# -- h2c upgrade -------------------------------------------------------------


def h2c_client() -> tuple[h2.connection.H2Connection, bytes]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    assert settings is not None
    return client, settings


async def read_until(io: IO, marker: bytes, buf: bytes = b"") -> tuple[bytes, bytes]:
    while marker not in buf:
        buf += await io.receive()
    head, _, rest = buf.partition(marker)
    return head, rest


async def answer_until_closed(client: h2.connection.H2Connection, io: IO) -> None:
    # Acknowledge the server's shutdown PING so its GOAWAY dance ends quickly.
    while True:
        try:
            data = await io.receive()
        except anyio.EndOfStream:
            return
        client.receive_data(data)
        pending = client.data_to_send()
        if pending:
            await io.send(pending)


@pytest.mark.parametrize("body", [b"", b"payload"])
async def test_h2c_upgrade(body: bytes) -> None:
    server_io, client_io = memory_pipe()
    conn = auto.Builder(h2c_upgrade=True).serve_connection(server_io, app)
    outcome: list[BaseException | None] = []
    client, settings = h2c_client()
    method = b"POST" if body else b"GET"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(run_server, conn, outcome)
            await client_io.send(
                method + b" /up?q=1 HTTP/1.1\r\nhost: test\r\n"
                b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
                b"http2-settings: " + settings.rstrip(b"=") + b"\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body
            )
            head, rest = await read_until(client_io, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            assert b"upgrade: h2c" in head.lower()
            # RFC 7540 3.5: the client's preface follows the 101.
            await client_io.send(client.data_to_send())
            events: list[h2.events.Event] = list(client.receive_data(rest)) if rest else []
            response_body = b""
            status = None
            ended = False
            while not ended:
                await client_io.send(client.data_to_send())
                for event in events:
                    if isinstance(event, h2.events.ResponseReceived):
                        assert event.stream_id == 1
                        status = dict(event.headers)[b":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        assert event.stream_id == 1
                        response_body += event.data
                        client.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                if not ended:
                    events = list(client.receive_data(await client_io.receive()))
            # A second request on the same, now HTTP/2, connection.
            client.send_headers(
                3,
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", "test"),
                    (":path", "/two"),
                ],
                end_stream=True,
            )
            await client_io.send(client.data_to_send())
            second = b""
            while not second.endswith(b"0"):
                for event in client.receive_data(await client_io.receive()):
                    if isinstance(event, h2.events.DataReceived) and event.stream_id == 3:
                        second += event.data
            conn.graceful_shutdown()
            await answer_until_closed(client, client_io)
    assert status == b"200"
    assert response_body == f"{method.decode()} /up?q=1 HTTP/2 {len(body)}".encode()
    assert second == b"GET /two HTTP/2 0"
    assert conn.version is Version.HTTP_2
    assert outcome == [None]


async def test_h2c_upgrade_is_opt_in_and_skips_chunked_bodies() -> None:
    for builder, request in (
        (
            auto.Builder(),
            b"GET / HTTP/1.1\r\nhost: t\r\nconnection: Upgrade, HTTP2-Settings\r\n"
            b"upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        ),
        (
            auto.Builder(h2c_upgrade=True),
            b"POST / HTTP/1.1\r\nhost: t\r\nconnection: Upgrade, HTTP2-Settings\r\n"
            b"upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"
            b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            auto.Builder(h2c_upgrade=True),  # no HTTP2-Settings in Connection
            b"GET / HTTP/1.1\r\nhost: t\r\nconnection: Upgrade\r\n"
            b"upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        ),
    ):
        server_io, client_io = memory_pipe()
        conn = builder.serve_connection(server_io, app)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(run_server, conn, [])
                await client_io.send(request)
                head, _rest = await read_until(client_io, b"\r\n\r\n")
                conn.graceful_shutdown()
        assert head.startswith(b"HTTP/1.1 200 OK"), head
        assert conn.version is Version.HTTP_11


def test_settings_header_fixture_is_valid() -> None:
    # The literal HTTP2-Settings used above decodes to whole settings.
    assert len(base64.urlsafe_b64decode(b"AAMAAABkAAQAoAAAAAIAAAAA")) % 6 == 0


def test_public_names() -> None:
    import hyper_util.server
    import hyper_util.server.conn

    for module in (hyper_util.server, hyper_util.server.conn, auto):
        public = {n for n in dir(module) if not n.startswith("_")}
        assert set(module.__all__) <= public
    assert hyper_util.server.conn.auto is auto
