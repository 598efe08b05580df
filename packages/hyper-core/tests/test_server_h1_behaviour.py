"""HTTP/1 server behaviours beyond hyper's own tests: errors, backpressure, draining, options.

What belongs here: what the issue asks of the server that ``tests/server.rs``
does not check: a service that raises or lies about its Content-Length,
streaming with backpressure in both directions, draining an unread request
body, pipelined responses staying in order, the Date cache, header case
options, ``writev``, ``into_parts``, and the ``ext`` values the server reads.

Strategy: most tests run over :func:`hyper_core.testing.memory_pipe`, whose
small, known buffer makes backpressure observable; the isolation test runs on
a real loopback socket (``serve_h1`` from ``conftest.py``). Every wait is
bounded.
"""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from hyper_core.body import Frame, Full, Incoming, StreamBody, collect
from hyper_core.error import BodyError, HyperError, UserError
from hyper_core.ext import HeaderCaseMap, InvalidReasonPhrase, ReasonPhrase
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_core.testing import memory_pipe

if TYPE_CHECKING:
    from conftest import ServeH1

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Any]]]
WAIT = 10.0


@dataclass
class Served:
    client: anyio.abc.ByteStream
    conn: http1.Connection
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    buf: bytearray = field(default_factory=bytearray)

    async def finished(self) -> BaseException | None:
        with anyio.fail_after(WAIT):
            await self.done.wait()
        return self.error

    async def read_all(self) -> bytes:
        with anyio.fail_after(WAIT):
            while True:
                try:
                    self.buf += await self.client.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    async def read_until(self, marker: bytes) -> bytes:
        with anyio.fail_after(WAIT):
            while marker not in self.buf:
                self.buf += await self.client.receive()
        end = self.buf.index(marker) + len(marker)
        data = bytes(self.buf[:end])
        del self.buf[:end]
        return data


@asynccontextmanager
async def serving(
    service: Service, *, max_buffer: int = 65536, **options: Any
) -> AsyncIterator[Served]:
    server_io, client_io = memory_pipe(max_buffer)
    failure: BaseException | None = None
    async with server_io, client_io, anyio.create_task_group() as tg:
        served = Served(
            client=client_io, conn=http1.Builder(**options).serve_connection(server_io, service)
        )

        async def run() -> None:
            try:
                await served.conn
            except Exception as exc:
                served.error = exc
            finally:
                served.done.set()

        tg.start_soon(run)
        try:
            yield served
        except BaseException as exc:
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


def get(target: bytes = b"/", *fields: bytes, close: bool = False, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: a.test", *fields]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def fields_of(response: bytes) -> dict[bytes, bytes]:
    head = response.split(b"\r\n\r\n", 1)[0]
    return {k.lower(): v for k, v in (line.split(b": ", 1) for line in head.split(b"\r\n")[1:])}


def stream(*chunks: bytes | Frame) -> StreamBody:
    async def gen() -> AsyncIterator[bytes | Frame]:
        for chunk in chunks:
            yield chunk

    return StreamBody(gen())


# -- a service that fails ---------------------------------------------------------------


async def test_service_exception_becomes_500_and_ends_the_connection() -> None:
    async def broken(req: Request[Incoming]) -> Response[Full]:
        raise RuntimeError("boom")

    async with serving(broken) as s:
        await s.client.send(get())
        response = await s.read_all()
        error = await s.finished()
    assert response.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert fields_of(response)[b"connection"] == b"close"
    assert isinstance(error, UserError)
    assert isinstance(error.__cause__, RuntimeError)


async def test_body_failing_mid_response_aborts_the_connection() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"first part"
        raise RuntimeError("the body broke")

    async def svc(req: Request[Incoming]) -> Response[StreamBody]:
        return Response(200, body=StreamBody(gen()))

    async with serving(svc) as s:
        await s.client.send(get())
        response = await s.read_all()
        error = await s.finished()
    assert b"a\r\nfirst part\r\n" in response
    assert not response.endswith(b"0\r\n\r\n")  # never passed off as complete
    assert isinstance(error, BodyError)
    assert isinstance(error.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("declared", "body", "message"),
    [
        ("3", Full(b"too long"), "longer than its Content-Length"),
        ("30", None, "shorter than its Content-Length"),
    ],
)
async def test_wrong_content_length_aborts_the_connection(
    declared: str, body: Any, message: str
) -> None:
    async def svc(req: Request[Incoming]) -> Response[Any]:
        return Response(200, headers={"content-length": declared}, body=body or stream(b"short"))

    async with serving(svc) as s:
        await s.client.send(get())
        response = await s.read_all()
        error = await s.finished()
    assert isinstance(error, UserError)
    assert message in str(error)
    assert b"too long" not in response


async def test_both_length_fields_from_the_service_is_an_error() -> None:
    async def svc(req: Request[Incoming]) -> Response[Any]:
        return Response(
            200, headers={"content-length": "3", "transfer-encoding": "chunked"}, body=stream(b"x")
        )

    async with serving(svc) as s:
        await s.client.send(get())
        assert await s.read_all() == b""
        assert isinstance(await s.finished(), UserError)


async def test_the_server_keeps_serving_other_connections(serve_h1: ServeH1) -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        if req.uri.path == "/boom":
            raise RuntimeError("boom")
        return Response(200, body=Full(b"fine"))

    async with serve_h1(svc) as server:
        bad = await anyio.connect_tcp("127.0.0.1", server.port)
        good = await anyio.connect_tcp("127.0.0.1", server.port)
        async with bad, good:
            await bad.send(get(b"/boom"))
            assert (await bad.receive()).startswith(b"HTTP/1.1 500 ")
            assert isinstance(await server.next_outcome(), UserError)
            await good.send(get(b"/", close=True))
            data = b""
            with anyio.fail_after(WAIT):
                while not data.endswith(b"fine"):
                    data += await good.receive()
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")


# -- backpressure ---------------------------------------------------------------------------


async def test_response_body_is_produced_only_as_the_client_reads() -> None:
    produced = 0
    chunk = b"x" * 4096

    async def gen() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(1000):  # 4 MB if nobody pushed back
            produced += 1
            yield chunk

    async def svc(req: Request[Incoming]) -> Response[StreamBody]:
        return Response(200, body=StreamBody(gen()))

    async with serving(svc, max_buffer=16 * 1024) as s:
        await s.client.send(get(close=True))
        await anyio.wait_all_tasks_blocked()
        # The client read nothing: the pipe holds 16 KiB, one chunk waits in send.
        assert produced <= 16 * 1024 // len(chunk) + 2
        total = len(await s.read_all())
    assert produced == 1000
    assert total > 1000 * len(chunk)


async def test_request_body_is_read_only_as_the_service_reads() -> None:
    gate = anyio.Event()
    got: list[bytes] = []

    async def svc(req: Request[Incoming]) -> Response[Full]:
        await gate.wait()
        got.append((await collect(req.body)).to_bytes())
        return Response(200, body=Full(b"done"))

    payload = b"y" * (1024 * 1024)
    async with serving(svc, max_buffer=16 * 1024) as s:
        sent = 0

        async def upload() -> None:
            nonlocal sent
            await s.client.send(get(b"/", b"Content-Length: %d" % len(payload), method=b"POST"))
            for start in range(0, len(payload), 4096):
                await s.client.send(payload[start : start + 4096])
                sent += 4096

        async with anyio.create_task_group() as tg:
            tg.start_soon(upload)
            await anyio.wait_all_tasks_blocked()
            # The service has not read: the upload is stuck at about what
            # the pipe and one server read (64 KiB) can hold.
            assert sent <= 16 * 1024 + 65536 + 8192
            gate.set()
        assert await s.read_until(b"done")
    assert got == [payload]


# -- after the response: draining, pipelining -------------------------------------------------


async def test_unread_body_is_drained_within_the_bound() -> None:
    seen: list[str] = []

    async def svc(req: Request[Incoming]) -> Response[Full]:
        seen.append(req.uri.path)
        return Response(200, body=Full(b"ok"))  # never reads the body

    body = b"z" * 1000
    async with serving(svc, max_drain_bytes=4096) as s:
        await s.client.send(get(b"/one", b"Content-Length: 1000", method=b"POST") + body)
        await s.client.send(get(b"/two", close=True))
        responses = await s.read_all()
    assert responses.count(b"HTTP/1.1 200 OK") == 2
    assert seen == ["/one", "/two"]


async def test_unread_body_over_the_bound_closes_the_connection() -> None:
    seen: list[str] = []

    async def svc(req: Request[Incoming]) -> Response[Full]:
        seen.append(req.uri.path)
        return Response(200, body=Full(b"ok"))

    async with serving(svc, max_drain_bytes=100) as s:
        await s.client.send(get(b"/one", b"Content-Length: 1000", method=b"POST") + b"z" * 1000)
        await s.client.send(get(b"/two"))
        responses = await s.read_all()
        assert await s.finished() is None
    assert responses.count(b"HTTP/1.1 200 OK") == 1
    assert seen == ["/one"]


async def test_unanswered_expect_continue_closes_instead_of_draining() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        return Response(417, body=Full(b""))

    async with serving(svc) as s:
        await s.client.send(
            get(b"/", b"Expect: 100-continue", b"Content-Length: 5", method=b"POST")
        )
        response = await s.read_all()  # closed: the body was never asked for
    assert response.startswith(b"HTTP/1.1 417 Expectation Failed\r\n")
    assert fields_of(response)[b"connection"] == b"close"


async def test_pipelined_responses_stay_in_request_order() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        if req.uri.path == "/slow":
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
        return Response(200, body=Full(req.uri.path.encode()))

    async with serving(svc) as s:
        await s.client.send(get(b"/slow") + get(b"/fast") + get(b"/last", close=True))
        data = await s.read_all()
    assert re.findall(rb"\r\n\r\n(/[a-z]+)", data) == [b"/slow", b"/fast", b"/last"]


# -- options -----------------------------------------------------------------------------------


async def test_date_header_added_unless_disabled_or_present() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        if req.uri.path == "/own":
            return Response(200, headers={"Date": "Mon, 01 Jan 2024 00:00:00 GMT"}, body=Full(b""))
        return Response(200, body=Full(b""))

    async with serving(svc) as s:
        await s.client.send(get(b"/") + get(b"/own", close=True))
        data = await s.read_all()
    dates = re.findall(rb"(?i)\r\ndate: ([^\r]+)", data)
    assert len(dates) == 2
    assert re.fullmatch(rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", dates[0])
    assert dates[1] == b"Mon, 01 Jan 2024 00:00:00 GMT"

    async with serving(svc, auto_date_header=False) as s:
        await s.client.send(get(close=True))
        assert b"date:" not in (await s.read_all()).lower()


async def test_title_case_headers() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        return Response(200, headers={"x-custom-header": "1"}, body=Full(b""))

    async with serving(svc, title_case_headers=True, auto_date_header=False) as s:
        await s.client.send(get(close=True))
        head = (await s.read_all()).split(b"\r\n\r\n")[0]
    assert head == (
        b"HTTP/1.1 200 OK\r\nX-Custom-Header: 1\r\nContent-Length: 0\r\nConnection: close"
    )


async def test_preserve_header_case_round_trip() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        case_map = req.extensions.get(HeaderCaseMap)
        assert case_map is not None
        assert case_map.get_all("x-weird") == [b"X-WeIrD"]
        response = Response(200, headers=[(b"x-weird", b"back")], body=Full(b""))
        response.extensions.insert(case_map)
        return response

    async with serving(svc, preserve_header_case=True) as s:
        await s.client.send(get(b"/", b"X-WeIrD: 1", close=True))
        data = await s.read_all()
    assert b"\r\nX-WeIrD: back\r\n" in data


@pytest.mark.parametrize("writev", [None, True, False])
async def test_writev_settings_write_the_same_bytes(writev: bool | None) -> None:
    async def svc(req: Request[Incoming]) -> Response[StreamBody]:
        return Response(200, body=stream(b"a" * 5000, b"b" * 10))

    async with serving(svc, writev=writev, auto_date_header=False) as s:
        await s.client.send(get(close=True))
        data = await s.read_all()
    assert data.endswith(b"1388\r\n" + b"a" * 5000 + b"\r\na\r\n" + b"b" * 10 + b"\r\n0\r\n\r\n")


async def test_without_shutdown_keeps_the_io_and_unread_bytes() -> None:
    async def svc(req: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"ok"))

    server_io, client_io = memory_pipe()
    async with client_io:
        conn = http1.Builder(keep_alive=False).serve_connection(server_io, svc)
        await client_io.send(get())
        with anyio.fail_after(WAIT):
            parts = await conn.without_shutdown()
        assert parts.io is server_io
        assert parts.read_buf == b""
        await parts.io.send(b"still open")
        data = b""
        with anyio.fail_after(WAIT):
            while not data.endswith(b"still open"):
                data += await client_io.receive()
        await parts.io.aclose()
        with pytest.raises(UserError):
            await conn  # a connection runs once


def test_builder_checks_its_options() -> None:
    with pytest.raises(ValueError, match="header_read_timeout"):
        http1.Builder(header_read_timeout=0)
    with pytest.raises(ValueError, match="max_headers"):
        http1.Builder(max_headers=0)
    with pytest.raises(ValueError, match="max_drain_bytes"):
        http1.Builder(max_drain_bytes=-1)
    assert "max_buf_size=417792" in repr(http1.Builder())


async def test_connection_errors_are_hyper_errors() -> None:
    async with serving(lambda req: _never()) as s:
        await s.client.send(b"NOT HTTP AT ALL\r\n\r\n")
        await s.read_all()
        assert isinstance(await s.finished(), HyperError)


async def _never() -> Response[Full]:
    raise AssertionError("never called")


# -- ext values the server reads ---------------------------------------------------------------


def test_reason_phrase() -> None:
    assert ReasonPhrase("Cool").as_bytes() == b"Cool"
    assert bytes(ReasonPhrase(b"Very \tCool")) == b"Very \tCool"
    assert ReasonPhrase(b"x") == ReasonPhrase("x") == b"x"
    assert str(ReasonPhrase(b"caf\xe9")) == "café"
    for bad in (b"new\nline", b"cr\r", "snow\u2603", b"nul\x00"):
        with pytest.raises(InvalidReasonPhrase):
            ReasonPhrase(bad)
    assert issubclass(InvalidReasonPhrase, ValueError)


def test_header_case_map() -> None:
    case_map = HeaderCaseMap.from_fields([(b"X-A", b"1"), (b"x-a", b"2"), (b"Content-Type", b"t")])
    assert len(case_map) == 3
    assert case_map.get_all("X-a") == [b"X-A", b"x-a"]
    fields = [(b"x-a", b"1"), (b"x-a", b"2"), (b"x-a", b"3"), (b"other", b"o")]
    assert case_map.apply(fields) == [
        (b"X-A", b"1"),
        (b"x-a", b"2"),
        (b"x-a", b"3"),
        (b"other", b"o"),
    ]
    assert HeaderCaseMap().apply(fields) is fields


# -- what an idle keep-alive connection holds -------------------------------------------


async def test_an_idle_connection_keeps_nothing_of_the_exchange_it_served() -> None:
    # Each idle keep-alive connection costs memory for as long as it stays
    # open: the request, its headers, the response and its body must be
    # freed once the answer is written, not when the next request comes.
    marker = "m" * 300

    async def service(request: Request[Incoming]) -> Response[Full]:
        return Response(200, headers={"x-marker": marker}, body=Full(b"y" * 1000))

    def leftovers() -> list[object]:
        gc.collect()
        return [
            obj
            for obj in gc.get_objects()
            if (isinstance(obj, Request) and marker in str(obj.uri))
            or (isinstance(obj, Response) and obj.headers.get("x-marker") == marker)
            or (isinstance(obj, Full) and obj.size_hint().exact == 1000)
        ]

    async with serving(service) as served:
        for _ in range(2):
            await served.client.send(get(b"/" + marker.encode(), b"X-Field: " + b"v" * 300))
            await served.read_until(b"y" * 1000)
            await anyio.wait_all_tasks_blocked()
            assert leftovers() == []
