"""The HTTP/1 client API and its behaviours beyond hyper's own tests.

What is here: ``SendRequest`` readiness and closing, cancellation, the
``try_send_request`` contract, streaming with backpressure in both
directions, full duplex, early responses, what an unread or closed response
body does to the connection, upgrades through ``upgrade.on``, the options
(header case, read sizes, limits), and a client connection of ours talking
to a server connection of ours. Raw-bytes peers run over an in-memory pipe
(small buffers make backpressure visible); the ported hyper tests and the
loopback-TCP variants are in ``test_client_h1_wire.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import anyio
import pytest
from anyio.abc import ByteStream

import hyper_core.client
import hyper_core.client.conn
from hyper_core import ext, upgrade
from hyper_core.body import (
    Body,
    Empty,
    Frame,
    Full,
    Incoming,
    SizeHint,
    StreamBody,
    channel,
    collect,
)
from hyper_core.client.conn import TrySendError, http1
from hyper_core.error import (
    BodyWriteAbortedError,
    CanceledError,
    ClosedError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.http import Headers, Request, Response, Version
from hyper_core.server.conn import http1 as server_http1
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

T = TypeVar("T")
OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class RawPeer:
    """A fake server speaking raw bytes over the server end of a pipe."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False

    async def _fill(self) -> None:
        try:
            self.buf += await self.stream.receive()
        except anyio.EndOfStream:
            self.eof = True

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n and not self.eof:
            await self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf and not self.eof:
            await self._fill()
        end = self.buf.find(marker)
        end = len(self.buf) if end < 0 else end + len(marker)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    async def read_to_eof(self) -> bytes:
        while not self.eof:
            await self._fill()
        out = bytes(self.buf)
        self.buf.clear()
        return out


class Outcome(Generic[T]):
    """The result of a call run in a background task, re-raised where awaited."""

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    async def run(self, fn: Callable[[], Awaitable[T]]) -> None:
        try:
            self._value = await fn()
        except Exception as exc:
            self._error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def get(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class Client:
    def __init__(
        self, sender: http1.SendRequest, peer: RawPeer, tg: anyio.abc.TaskGroup, io: ByteStream
    ) -> None:
        self.sender = sender
        self.peer = peer
        self.tg = tg
        self.io = io
        self.served = anyio.Event()

    def start(self, fn: Callable[[], Awaitable[T]]) -> Outcome[T]:
        outcome: Outcome[T] = Outcome()
        self.tg.start_soon(outcome.run, fn)
        return outcome

    def send(self, request: Request[Any]) -> Outcome[Response[Incoming]]:
        return self.start(lambda: self.sender.send_request(request))


@asynccontextmanager
async def client(
    *,
    max_buffer: int = 65536,
    io_wrapper: Callable[[ByteStream], Any] | None = None,
    **options: Any,
) -> AsyncIterator[Client]:
    client_io, server_io = memory_pipe(max_buffer)
    async with client_io, server_io:
        io = io_wrapper(client_io) if io_wrapper is not None else client_io
        sender, connection = await http1.handshake(io, **options)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                c = Client(sender, RawPeer(server_io), tg, client_io)

                async def drive() -> None:
                    await connection.with_upgrades()
                    c.served.set()

                tg.start_soon(drive)
                yield c
                await sender.aclose()
                tg.cancel_scope.cancel()


async def answer(c: Client, request: Request[Any], reply: bytes) -> Response[Incoming]:
    outcome = c.send(request)
    await c.peer.read_until(b"\r\n\r\n")
    await c.peer.stream.send(reply)
    return await outcome.get()


def counting_stream(chunks: int, size: int, pulled: list[int]) -> StreamBody:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(chunks):
            pulled.append(i)
            yield bytes([i % 251]) * size

    return StreamBody(gen())


# -- the public surface ------------------------------------------------------------


def test_public_names() -> None:
    assert sorted(http1.__all__) == [
        "Builder",
        "Connection",
        "DEFAULT_MAX_BUF_SIZE",
        "DEFAULT_MAX_HEADERS",
        "DEFAULT_MAX_HEADER_NAME_SIZE",
        "DEFAULT_MAX_HEADER_VALUE_SIZE",
        "DEFAULT_MAX_INFORMATIONAL_RESPONSES",
        "DEFAULT_MAX_REASON_SIZE",
        "Parts",
        "SendRequest",
        "TrySendError",
        "UpgradeableConnection",
        "handshake",
    ]
    for name in http1.__all__:
        assert getattr(http1, name) is not None
    assert {"TrySendError", "http1"} <= set(hyper_core.client.conn.__all__)
    for name in hyper_core.client.conn.__all__:
        assert getattr(hyper_core.client.conn, name) is not None
    assert hyper_core.client.__all__ == ["conn"]
    assert http1.TrySendError is TrySendError


@pytest.mark.parametrize(
    "options",
    [{"max_buf_size": 8191}, {"max_headers": 0}, {"read_buf_exact_size": 0}],
)
def test_builder_rejects_bad_limits(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="at least"):
        http1.Builder(**options)


async def test_connection_cannot_be_driven_twice() -> None:
    async with client() as c:
        await anyio.wait_all_tasks_blocked()  # the fixture's task drives it already
        second = http1.Connection(c.sender._dispatcher)
        with pytest.raises(UserError, match="already being driven"):
            await second.serve()


async def test_into_parts_refused_while_driven() -> None:
    async with client() as c:
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(UserError, match="being driven"):
            http1.Connection(c.sender._dispatcher).into_parts()


# -- readiness, keep-alive, closing ------------------------------------------------


@pytest.mark.parametrize("sync", [False, True], ids=["aclose", "close"])
async def test_keep_alive_reuses_the_connection_for_every_body_kind(sync: bool) -> None:
    bodies: list[Body] = [Empty(), Full(b"abc"), StreamBody(_one(b"xyz")), Full(b"")]
    async with client() as c:
        for body in bodies:
            assert c.sender.is_ready()
            outcome = c.send(Request("POST", "/", body=body))
            head = await c.peer.read_until(b"\r\n\r\n")
            if b"chunked" in head:
                await c.peer.read_until(b"0\r\n\r\n")
            elif b"content-length: 3" in head:
                assert await c.peer.read_exact(3) == b"abc"
            await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            response = await outcome.get()
            assert (await collect(response.body)).to_bytes() == b"ok"
        assert c.sender.is_ready()
        if sync:
            c.sender.close()
        else:
            await c.sender.aclose()
        assert c.sender.is_closed()
        await c.served.wait()
        assert await c.peer.read_to_eof() == b""  # closed, nothing more written


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_ready_waits_for_the_body_to_be_read() -> None:
    async with client() as c:
        response = await answer(c, Request(), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
        assert not c.sender.is_ready()
        waiter = c.start(c.sender.ready)
        await anyio.wait_all_tasks_blocked()
        assert not waiter.done
        with pytest.raises(CanceledError, match="connection was not ready"):
            await c.sender.send_request(Request())
        await c.peer.stream.send(b"llo")
        assert (await collect(response.body)).to_bytes() == b"hello"
        await waiter.get()
        assert c.sender.is_ready()


async def test_closing_an_unfinished_body_closes_the_connection() -> None:
    async with client() as c:
        response = await answer(c, Request(), b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhe")
        await response.body.aclose()
        assert c.sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await c.sender.ready()
        assert "closed before its end" in str(info.value.__cause__)
        with pytest.raises(CanceledError, match="connection was not ready"):
            await c.sender.send_request(Request())
        await c.served.wait()
        assert await c.peer.read_to_eof() == b""


async def test_closing_a_body_already_received_keeps_the_connection() -> None:
    async with client() as c:
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        outcome = c.send(Request())
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(reply)
        response = await outcome.get()
        await anyio.wait_all_tasks_blocked()
        # The head and the body arrived in one read: nothing left to fetch.
        await response.body.aclose()
        assert c.sender.is_ready()
        response = await answer(c, Request(), OK_EMPTY)
        assert response.status == 200


async def test_server_closing_an_idle_connection_closes_it() -> None:
    async with client() as c:
        await answer(c, Request(), OK_EMPTY)
        await c.peer.stream.send_eof()
        await c.served.wait()
        assert c.sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await c.sender.ready()
        assert info.value.__cause__ is None  # a normal close


async def test_unsolicited_bytes_on_an_idle_connection_close_it() -> None:
    async with client() as c:
        await answer(c, Request(), OK_EMPTY)
        assert c.sender.is_ready()
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await c.served.wait()
        assert c.sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await c.sender.ready()
        assert isinstance(info.value.__cause__, ParseError)


async def test_connection_close_request_ends_the_connection() -> None:
    async with client() as c:
        response = await answer(c, Request(headers={"connection": "close"}), OK_EMPTY)
        assert response.status == 200
        await c.served.wait()
        assert c.sender.is_closed()


async def test_http10_response_without_keep_alive_ends_the_connection() -> None:
    async with client() as c:
        response = await answer(c, Request(), b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert response.version is Version.HTTP_10
        assert (await collect(response.body)).to_bytes() == b"ok"
        await c.served.wait()
        assert c.sender.is_closed()


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_keep_the_connection(status: int) -> None:
    async with client() as c:
        # A Content-Length on a 304 describes the resource, not this message.
        reply = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status
        response = await answer(c, Request(), reply)
        assert response.status == status
        assert response.body.is_end_stream()
        assert c.sender.is_ready()
        assert (await answer(c, Request(), OK_EMPTY)).status == 200


async def test_reason_phrase_only_when_not_canonical() -> None:
    async with client() as c:
        response = await answer(c, Request(), OK_EMPTY)
        assert ext.ReasonPhrase not in response.extensions
        response = await answer(
            c, Request(), b"HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n\r\n"
        )
        assert response.extensions[ext.ReasonPhrase] == b"Gone Fishing"


async def test_send_request_waits_for_the_connection_to_be_driven() -> None:
    client_io, server_io = memory_pipe()
    async with client_io, server_io, anyio.create_task_group() as tg:
        sender, connection = await http1.handshake(client_io)
        outcome: Outcome[Response[Incoming]] = Outcome()
        tg.start_soon(outcome.run, lambda: sender.send_request(Request()))
        await anyio.wait_all_tasks_blocked()
        assert not outcome.done
        peer = RawPeer(server_io)
        assert peer.buf == b""
        tg.start_soon(connection.serve)
        assert await peer.read_until(b"\r\n\r\n") == b"GET / HTTP/1.1\r\n\r\n"
        await server_io.send(OK_EMPTY)
        assert (await outcome.get()).status == 200
        async with sender:
            pass
        assert sender.is_closed()


# -- cancellation and errors -------------------------------------------------------


async def test_cancelled_send_request_closes_the_connection() -> None:
    async with client() as c:
        with anyio.move_on_after(0.05) as scope:
            await c.sender.send_request(Request())
        assert scope.cancelled_caught
        assert c.sender.is_closed()
        with pytest.raises(CanceledError, match="connection was not ready"):
            await c.sender.send_request(Request())
        await c.served.wait()
        assert await c.peer.read_to_eof() == b"GET / HTTP/1.1\r\n\r\n"


async def test_cancelled_connection_task_fails_the_waiting_request() -> None:
    client_io, server_io = memory_pipe()
    async with client_io, server_io, anyio.create_task_group() as tg:
        sender, connection = await http1.handshake(client_io)
        scope = anyio.CancelScope()

        async def drive() -> None:
            with scope:
                await connection

        tg.start_soon(drive)
        outcome: Outcome[Response[Incoming]] = Outcome()
        tg.start_soon(outcome.run, lambda: sender.send_request(Request()))
        peer = RawPeer(server_io)
        await peer.read_until(b"\r\n\r\n")
        scope.cancel()
        with pytest.raises(CanceledError):
            await outcome.get()
        assert await peer.read_to_eof() == b""


async def test_try_send_request_after_writing_gives_no_request_back() -> None:
    async with client() as c:
        request = Request()
        outcome = c.start(lambda: c.sender.try_send_request(request))
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send_eof()  # the server closes without answering
        with pytest.raises(TrySendError) as info:
            await outcome.get()
        assert info.value.written
        assert info.value.request is None
        assert isinstance(info.value.error, IncompleteMessageError)
        assert info.value.__cause__ is info.value.error
        assert str(info.value) == str(info.value.error)


async def test_try_send_request_when_busy_gives_the_request_back() -> None:
    async with client() as c:
        first = c.send(Request())
        await c.peer.read_until(b"\r\n\r\n")
        second = Request("POST", "/again", body=Full(b"x"))
        with pytest.raises(TrySendError) as info:
            await c.sender.try_send_request(second)
        assert info.value.request is second
        assert isinstance(info.value.error, CanceledError)
        await c.peer.stream.send(OK_EMPTY)
        assert (await first.get()).status == 200


async def test_body_shorter_than_its_content_length() -> None:
    async with client() as c:
        request = Request(
            "POST", "/", headers={"content-length": "10"}, body=StreamBody(_one(b"abc"))
        )
        outcome = c.send(request)
        with pytest.raises(BodyWriteAbortedError):
            await outcome.get()
        # No sign of an end was written after the three bytes.
        assert (await c.peer.read_to_eof()).endswith(b"\r\n\r\nabc")


async def test_body_longer_than_its_content_length() -> None:
    async with client() as c:
        request = Request(
            "POST", "/", headers={"content-length": "2"}, body=StreamBody(_one(b"abc"))
        )
        outcome = c.send(request)
        with pytest.raises(UserError, match="longer than its Content-Length"):
            await outcome.get()
        assert (await c.peer.read_to_eof()).endswith(b"\r\n\r\n")


async def test_failing_informational_callback_fails_the_request() -> None:
    def callback(response: ext.InformationalResponse) -> None:
        raise RuntimeError("no thanks")

    async with client() as c:
        request = Request()
        ext.on_informational(request, callback)
        outcome = c.send(request)
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK_EMPTY)
        with pytest.raises(UserError) as info:
            await outcome.get()
        assert isinstance(info.value.__cause__, RuntimeError)


async def test_informational_responses_without_end_fail_promptly() -> None:
    # A server that answers with 1xx responses forever: the request fails
    # after the 16th, long before any outer timeout would end it.
    async with client() as c:
        seen: list[int] = []
        request = Request()
        ext.on_informational(request, lambda r: seen.append(r.status))
        outcome = c.send(request)
        await c.peer.read_until(b"\r\n\r\n")

        async def flood() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                while True:
                    await c.peer.stream.send(b"HTTP/1.1 102 Processing\r\n\r\n" * 4)

        c.tg.start_soon(flood)
        with anyio.fail_after(5), pytest.raises(ParseError, match="informational") as info:
            await outcome.get()
        assert info.value.status_hint is None
        assert seen == [102] * http1.DEFAULT_MAX_INFORMATIONAL_RESPONSES
        assert c.sender.is_closed()


@pytest.mark.parametrize(("limit", "sent", "ok"), [(2, 2, True), (2, 3, False), (0, 1, False)])
async def test_max_informational_responses_option(limit: int, sent: int, ok: bool) -> None:
    async with client(max_informational_responses=limit) as c:
        outcome = c.send(Request())
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(b"HTTP/1.1 103 Early Hints\r\n\r\n" * sent + OK_EMPTY)
        if ok:
            assert (await outcome.get()).status == 200
        else:
            with pytest.raises(ParseError, match=f"more than {limit} informational"):
                await outcome.get()


async def test_no_informational_limit_when_none() -> None:
    async with client(max_informational_responses=None) as c:
        seen: list[int] = []
        request = Request()
        ext.on_informational(request, lambda r: seen.append(r.status))
        response = await answer(c, request, b"HTTP/1.1 100 Continue\r\n\r\n" * 100 + OK_EMPTY)
        assert response.status == 200
        assert len(seen) == 100


def test_max_informational_responses_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="max_informational_responses"):
        http1.Builder(max_informational_responses=-1)


#: What an HTTP/2 server writes first: its SETTINGS frame (RFC 9113 section
#: 3.4), here MAX_CONCURRENT_STREAMS=100, then (to an HTTP/1 request) GOAWAY.
H2_SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"
H2_GOAWAY = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + b"\x00" * 7 + b"\x01"


async def test_http2_only_server_answering_the_request_is_named() -> None:
    async with client() as c:
        outcome = c.send(Request(headers={"host": "x"}))
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(H2_SETTINGS + H2_GOAWAY)
        with pytest.raises(ParseError, match="the server speaks HTTP/2 only") as info:
            await outcome.get()
        assert info.value.status_hint is None
        assert c.sender.is_closed()


async def test_http2_only_server_greeting_first_is_named() -> None:
    # The SETTINGS frame arrives before any request: the idle connection
    # closes, and a request then says why (as the cause of "not ready").
    async with client() as c:
        await c.peer.stream.send(H2_SETTINGS)
        with anyio.fail_after(5):
            while not c.sender.is_closed():  # noqa: ASYNC110 - the connection task closes it
                await anyio.sleep(0.01)
        with pytest.raises(CanceledError) as info:
            await c.sender.send_request(Request(headers={"host": "x"}))
        assert isinstance(info.value.__cause__, ParseError)
        assert "the server speaks HTTP/2 only" in str(info.value.__cause__)


async def test_a_response_starting_with_nul_in_its_body_is_not_taken_for_http2() -> None:
    async with client() as c:
        response = await answer(
            c, Request(headers={"host": "x"}), OK_EMPTY[:-4] + b"\r\nX: y\r\n\r\n"
        )
        assert response.status == 200
        c2 = c.send(Request(headers={"host": "x"}))
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + H2_SETTINGS[:9])
        second = await c2.get()
        assert (await collect(second.body)).to_bytes() == H2_SETTINGS[:9]


async def test_several_informational_responses_are_skipped() -> None:
    async with client() as c:
        seen: list[tuple[int, str | None]] = []
        request = Request()
        ext.on_informational(request, lambda r: seen.append((r.status, r.headers.get("link"))))
        response = await answer(
            c,
            request,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
            + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
        assert response.status == 200
        assert seen == [(100, None), (103, "</s.css>")]
        assert (await collect(response.body)).to_bytes() == b"ok"


async def test_cancelled_body_read_loses_nothing() -> None:
    async with client() as c:
        response = await answer(c, Request(), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        with anyio.move_on_after(0.05) as scope:
            await response.body.frame()  # nothing has come yet
        assert scope.cancelled_caught
        await c.peer.stream.send(b"0123456789")
        assert (await collect(response.body)).to_bytes() == b"0123456789"
        assert c.sender.is_ready()


async def test_expect_continue_is_not_waited_on() -> None:
    async with client() as c:
        request = Request("POST", "/", headers={"expect": "100-continue"}, body=Full(b"payload"))
        outcome = c.send(request)
        head = await c.peer.read_until(b"\r\n\r\n")
        assert b"expect: 100-continue" in head
        # The body follows at once, before any 100 Continue.
        assert await c.peer.read_exact(7) == b"payload"
        await c.peer.stream.send(b"HTTP/1.1 100 Continue\r\n\r\n" + OK_EMPTY)
        assert (await outcome.get()).status == 200


class BrokenSendIO:
    """An IO whose writes fail, as a reset connection's do."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        raise anyio.BrokenResourceError

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_failed_head_write_is_a_closed_error() -> None:
    async with client(io_wrapper=BrokenSendIO) as c:
        request = Request()
        with pytest.raises(TrySendError) as info:
            await c.sender.try_send_request(request)
        assert isinstance(info.value.error, ClosedError)
        assert isinstance(info.value.error.__cause__, anyio.BrokenResourceError)
        assert info.value.written  # writing had started: not known to be safe to retry
        await c.served.wait()
        assert c.sender.is_closed()


# -- streaming and backpressure ----------------------------------------------------


async def test_request_body_streams_with_backpressure() -> None:
    pulled: list[int] = []
    chunks, size = 256, 4096  # 1 MiB through a 4 KiB pipe
    async with client(max_buffer=4096) as c:
        outcome = c.send(Request("POST", "/", body=counting_stream(chunks, size, pulled)))
        assert b"transfer-encoding: chunked" in await c.peer.read_until(b"\r\n\r\n")
        await anyio.wait_all_tasks_blocked()
        # The server reads nothing: the producer is paused after a few chunks.
        assert len(pulled) < 8
        expected = b"".join(b"1000\r\n" + bytes([i % 251]) * size + b"\r\n" for i in range(chunks))
        expected += b"0\r\n\r\n"
        assert await c.peer.read_exact(len(expected)) == expected
        assert len(pulled) == chunks
        await c.peer.stream.send(OK_EMPTY)
        assert (await outcome.get()).status == 200


async def test_response_body_is_pulled_by_its_reader() -> None:
    total = 4 * 1024 * 1024
    sent = 0
    async with client(max_buffer=65536) as c:
        outcome = c.send(Request())
        await c.peer.read_until(b"\r\n\r\n")

        async def produce() -> None:
            nonlocal sent
            await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            block = bytes(range(256)) * 64  # 16 KiB
            while sent < total:
                await c.peer.stream.send(block)
                sent += len(block)

        c.tg.start_soon(produce)
        response = await outcome.get()
        assert response.body.size_hint().exact == total
        await anyio.wait_all_tasks_blocked()
        # Nobody reads the body: the server is held back by the pipe, and the
        # client holds at most one read of it (max_buf_size bounds reads).
        assert sent <= 2 * 65536
        digest = hashlib.sha256()
        async for chunk in response.body:
            digest.update(chunk)
        assert digest.digest() == hashlib.sha256((bytes(range(256)) * 64) * 256).digest()
        assert c.sender.is_ready()


async def test_full_duplex_streams() -> None:
    async with client(max_buffer=1024) as c:
        tx, body = channel()
        outcome = c.send(Request("POST", "/echo", body=body))
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        response = await outcome.get()  # the head arrives while the body is still open
        for i in range(20):
            piece = b"ping %d" % i
            await tx.send_data(piece)
            # The server reads one chunk and echoes it in one chunk.
            size_line = await c.peer.read_until(b"\r\n")
            data = await c.peer.read_exact(int(size_line, 16) + 2)
            await c.peer.stream.send(size_line + data)
            frame = await response.body.frame()
            assert frame is not None
            assert frame.data_ref == piece
        await tx.aclose()
        assert await c.peer.read_until(b"\r\n\r\n") == b"0\r\n\r\n"
        await c.peer.stream.send(b"0\r\n\r\n")
        assert await response.body.frame() is None
        await anyio.wait_all_tasks_blocked()
        assert c.sender.is_ready()


async def test_request_body_failing_after_the_response_head() -> None:
    async with client() as c:
        tx, body = channel()
        outcome = c.send(Request("POST", "/duplex", body=body))
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        )
        response = await outcome.get()
        frame = await response.body.frame()
        assert frame is not None
        assert frame.data_ref == b"abc"
        tx.abort()  # the request body fails while the response is being read
        with pytest.raises(IncompleteMessageError) as info:
            await response.body.frame()
        assert isinstance(info.value.__cause__, UserError)
        await c.served.wait()
        assert c.sender.is_closed()


async def test_early_response_while_the_request_body_is_still_going() -> None:
    async with client(max_buffer=4096) as c:
        tx, body = channel()
        outcome = c.send(Request("POST", "/upload", body=body))
        await c.peer.read_until(b"\r\n\r\n")
        await tx.send_data(b"x" * 1000)
        await c.peer.stream.send(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbig!"
        )
        await c.peer.stream.send_eof()
        response = await outcome.get()
        assert response.status == 413
        assert (await collect(response.body)).to_bytes() == b"big!"
        # The connection is not reusable after a `Connection: close` answer;
        # it ends once the request body ends.
        assert not c.sender.is_ready()
        await tx.aclose()
        await c.served.wait()
        assert c.sender.is_closed()


async def test_the_connection_ending_stops_a_request_body_still_being_written() -> None:
    # The body never ends and the server leaves without answering: the
    # connection task stops the body's writer (waiting on the body) and ends.
    async with client() as c:
        tx, body = channel()
        outcome = c.send(Request("POST", "/upload", body=body))
        await c.peer.read_until(b"\r\n\r\n")
        await tx.send_data(b"x" * 100)
        await c.peer.stream.aclose()
        with pytest.raises(IncompleteMessageError):
            await outcome.get()
        with anyio.fail_after(5):
            await c.served.wait()
        assert c.sender.is_closed()
        assert tx.is_closed  # the stopped writer released the body


# -- options -----------------------------------------------------------------------


class RecordingIO:
    """Records the sizes the connection asks for."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.asked: list[int] = []

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.asked.append(max_bytes)
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _download(c: Client, size: int) -> None:
    outcome = c.send(Request())
    await c.peer.read_until(b"\r\n\r\n")

    async def produce() -> None:
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            await c.peer.stream.send(b"z" * 65536)

    c.tg.start_soon(produce)
    response = await outcome.get()
    assert len((await collect(response.body)).to_bytes()) == size


async def test_read_buf_exact_size() -> None:
    ios: list[RecordingIO] = []

    def wrap(inner: ByteStream) -> RecordingIO:
        ios.append(RecordingIO(inner))
        return ios[-1]

    async with client(max_buffer=1 << 20, io_wrapper=wrap, read_buf_exact_size=1000) as c:
        await _download(c, 1 << 20)
    assert set(ios[0].asked) == {1000}


async def test_adaptive_read_size_grows_up_to_max_buf_size() -> None:
    ios: list[RecordingIO] = []

    def wrap(inner: ByteStream) -> RecordingIO:
        ios.append(RecordingIO(inner))
        return ios[-1]

    async with client(max_buffer=1 << 20, io_wrapper=wrap, max_buf_size=65536) as c:
        await _download(c, 4 << 20)
    asked = ios[0].asked
    # 8 KiB first, doubling after each read that filled it, capped at max_buf_size.
    assert asked[0] == 8192
    assert set(asked) <= {8192, 16384, 32768, 65536}
    assert asked.index(65536) < 10
    assert asked.count(65536) > len(asked) // 2


async def test_max_headers_option() -> None:
    async with client(max_headers=3) as c:
        outcome = c.send(Request())
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")
        with pytest.raises(ParseError, match="more than 3"):
            await outcome.get()


async def test_preserve_header_case() -> None:
    async with client(preserve_header_case=True) as c:
        request = Request(headers={"x-custom": "1"})
        request.extensions.insert(ext.HeaderCaseMap(["X-CUSTOM"]))
        outcome = c.send(request)
        assert await c.peer.read_until(b"\r\n\r\n") == b"GET / HTTP/1.1\r\nX-CUSTOM: 1\r\n\r\n"
        await c.peer.stream.send(b"HTTP/1.1 200 OK\r\nCONTENT-length: 0\r\n\r\n")
        response = await outcome.get()
        case_map = response.extensions.get(ext.HeaderCaseMap)
        assert case_map is not None
        assert case_map.get_all("content-length") == [b"CONTENT-length"]


async def test_header_case_map_ignored_without_the_option() -> None:
    async with client() as c:
        request = Request(headers={"x-custom": "1"})
        request.extensions.insert(ext.HeaderCaseMap(["X-CUSTOM"]))
        outcome = c.send(request)
        assert await c.peer.read_until(b"\r\n\r\n") == b"GET / HTTP/1.1\r\nx-custom: 1\r\n\r\n"
        await c.peer.stream.send(OK_EMPTY)
        response = await outcome.get()
        assert ext.HeaderCaseMap not in response.extensions


# -- upgrades ----------------------------------------------------------------------


async def test_upgrade_hands_over_the_io_with_read_ahead() -> None:
    async with client() as c:
        request = Request(headers={"upgrade": "echo", "connection": "upgrade"})
        outcome = c.send(request)
        await c.peer.read_until(b"\r\n\r\n")
        await c.peer.stream.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\nhi there"
        )
        response = await outcome.get()
        assert response.status == 101
        upgraded = await upgrade.on(response)
        assert await upgraded.receive() == b"hi there"  # read ahead, replayed
        await upgraded.send(b"ping")
        assert await c.peer.read_exact(4) == b"ping"
        await c.peer.stream.send(b"pong")
        assert await upgraded.receive() == b"pong"
        assert c.sender.is_closed()
        await c.served.wait()
        await upgraded.aclose()


async def test_refused_upgrade_is_a_normal_response() -> None:
    async with client() as c:
        request = Request(headers={"upgrade": "echo", "connection": "upgrade"})
        response = await answer(
            c, request, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno"
        )
        assert response.status == 400
        with pytest.raises(UserError, match="no upgrade available"):
            await upgrade.on(response)
        assert (await collect(response.body)).to_bytes() == b"no"
        assert c.sender.is_ready()


# -- our client, our server --------------------------------------------------------


@asynccontextmanager
async def our_server(
    service: Callable[[Request[Incoming]], Awaitable[Response[Any]]],
) -> AsyncIterator[http1.SendRequest]:
    client_io, server_io = memory_pipe(16384)
    async with client_io, server_io:
        sender, connection = await http1.handshake(client_io)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(connection.serve)

                async def run_server() -> None:
                    await server_http1.Builder().serve_connection(server_io, service)

                tg.start_soon(run_server)
                yield sender
                await sender.aclose()


async def test_against_our_server_keep_alive_and_streaming_echo() -> None:
    requests_seen: list[str] = []

    async def service(request: Request[Incoming]) -> Response[Any]:
        requests_seen.append(request.uri.path)
        if request.uri.path == "/echo":

            async def echo() -> AsyncIterator[bytes]:
                async for chunk in request.body:
                    yield chunk

            return Response(200, body=StreamBody(echo()))
        if request.uri.path == "/trailers":

            async def with_trailers() -> AsyncIterator[bytes | Frame]:
                yield b"body"
                yield Frame.trailers(Headers({"x-checksum": "abc"}))

            return Response(
                200, headers={"trailer": "x-checksum"}, body=StreamBody(with_trailers())
            )
        return Response(200, body=Full(b"hello " + request.uri.path.encode()))

    payload = bytes(range(256)) * 4096  # 1 MiB

    async def upload() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 10_000):
            yield payload[i : i + 10_000]

    async with our_server(service) as sender:
        for path in ("/a", "/b", "/c"):
            response = await sender.send_request(Request("GET", path, headers={"host": "x"}))
            assert (await collect(response.body)).to_bytes() == b"hello " + path.encode()
        response = await sender.send_request(
            Request("POST", "/echo", headers={"host": "x"}, body=StreamBody(upload()))
        )
        assert response.headers["transfer-encoding"] == "chunked"
        assert (await collect(response.body)).to_bytes() == payload
        response = await sender.send_request(
            Request("GET", "/trailers", headers={"host": "x", "te": "trailers"})
        )
        collected = await collect(response.body)
        assert collected.to_bytes() == b"body"
        assert collected.trailers is not None
        assert collected.trailers["x-checksum"] == "abc"
        assert sender.is_ready()
    assert requests_seen == ["/a", "/b", "/c", "/echo", "/trailers"]


async def test_size_hint_of_a_chunked_body_is_unknown() -> None:
    async with client() as c:
        response = await answer(
            c, Request(), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert response.body.size_hint() == SizeHint()
        assert not response.body.is_end_stream()
        await c.peer.stream.send(b"3\r\nabc\r\n0\r\n\r\n")
        assert (await collect(response.body)).to_bytes() == b"abc"
        assert response.body.size_hint().exact == 0
