"""hyper_core.upgrade: on(), Upgraded, and the server connection's side of it.

What belongs here: the upgrade handshake between a connection and the code
that takes the raw IO, for requests (server) and responses (client), plus
the HTTP/1 server's use of it when upgrades are on, off, or declined. The
wire-level upgrade tests ported from hyper are in
``test_server_h1_ported.py``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hyper_core import upgrade
from hyper_core.body import Full, Incoming
from hyper_core.error import CanceledError, HyperError, UserError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_core.testing import memory_pipe
from hyper_core.upgrade import OnUpgrade, Parts, Upgraded, _attach_pending

pytestmark = pytest.mark.anyio


async def test_no_upgrade_available() -> None:
    request: Request[Any] = Request("GET", "/")
    with pytest.raises(UserError, match="no upgrade available"):
        await upgrade.on(request)


async def test_on_takes_the_upgrade_once() -> None:
    request: Request[Any] = Request("GET", "/")
    pending = _attach_pending(request)
    first = upgrade.on(request)
    second = upgrade.on(request)
    a, b = memory_pipe()
    async with a, b:
        pending.fulfil(a, b"ahead")
        upgraded = await first
        assert upgraded.io is a
        with pytest.raises(UserError, match="no upgrade available"):
            await second


async def test_upgraded_replays_read_ahead_then_reads_the_io() -> None:
    a, b = memory_pipe()
    async with a, b:
        upgraded = Upgraded(a, b"0123456789")
        assert await upgraded.receive(4) == b"0123"
        assert await upgraded.receive() == b"456789"
        await b.send(b"from the peer")
        assert await upgraded.receive() == b"from the peer"
        await upgraded.send(b"to the peer")
        await upgraded.send_many([b"in ", b"pieces"])
        assert await b.receive() == b"to the peerin pieces"
        await b.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await upgraded.receive()
        await upgraded.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await b.receive()


async def test_into_parts_gives_what_was_not_read() -> None:
    a, b = memory_pipe()
    async with a, b:
        upgraded = Upgraded(a, b"abcdef")
        assert await upgraded.receive(2) == b"ab"
        parts = upgraded.into_parts()
        assert isinstance(parts, Parts)
        assert parts.io is a
        assert parts.read_buf == b"cdef"


async def test_failed_upgrade_raises_its_error() -> None:
    response: Response[Any] = Response(101)
    pending = _attach_pending(response)
    on_upgrade = upgrade.on(response)
    pending.fail(CanceledError("nope"))
    pending.fulfil(memory_pipe()[0], b"")  # ignored: resolved once
    with pytest.raises(CanceledError, match="nope"):
        await on_upgrade
    assert pending.resolved


async def test_waiting_can_be_cancelled_and_resumed() -> None:
    request: Request[Any] = Request("CONNECT", "a.test:443")
    pending = _attach_pending(request)
    on_upgrade = upgrade.on(request)
    with anyio.move_on_after(0.01) as scope:
        await on_upgrade
    assert scope.cancelled_caught
    a, b = memory_pipe()
    async with a, b, anyio.create_task_group() as tg:
        results: list[Upgraded] = []

        async def wait() -> None:
            results.append(await on_upgrade)

        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        pending.fulfil(a, b"")
    assert results[0].io is a


# -- with the HTTP/1 server --------------------------------------------------------------

UPGRADE_REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: a.test\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n"
)


async def serve_one(
    service: Any, *, upgrades: bool, data: bytes
) -> tuple[list[OnUpgrade], BaseException | None, http1.Connection, bytes]:
    """Serve one connection that receives ``data``; return what the service took."""
    taken: list[OnUpgrade] = []
    server_io, client_io = memory_pipe()
    conn = http1.Builder(upgrades=upgrades).serve_connection(server_io, service(taken))
    error: BaseException | None = None
    async with client_io:
        await client_io.send(data)
        try:
            with anyio.fail_after(10):
                await conn
        except HyperError as exc:
            error = exc
        with anyio.move_on_after(0.1):
            received = await client_io.receive()
    return taken, error, conn, received


def switching(taken: list[OnUpgrade]) -> Any:
    async def service(request: Request[Incoming]) -> Response[Any]:
        taken.append(upgrade.on(request))
        return Response(101, headers={"upgrade": "echo", "connection": "upgrade"})

    return service


async def test_upgrade_on_a_connection_without_upgrades() -> None:
    taken, error, conn, received = await serve_one(
        switching, upgrades=False, data=UPGRADE_REQUEST + b"early"
    )
    assert error is None
    assert received.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    with pytest.raises(UserError, match="not built with upgrades"):
        await taken[0]
    assert conn.into_parts().read_buf == b"early"


async def test_without_shutdown_hands_back_the_io_after_a_101() -> None:
    taken: list[OnUpgrade] = []
    server_io, client_io = memory_pipe()
    async with client_io:
        conn = http1.Builder().serve_connection(server_io, switching(taken))
        await client_io.send(UPGRADE_REQUEST + b"early")
        with anyio.fail_after(10):
            parts = await conn.without_shutdown()
        assert parts.io is server_io
        assert parts.read_buf == b"early"
        await parts.io.send(b"raw bytes")
        data = b""
        with anyio.fail_after(10):
            while not data.endswith(b"raw bytes"):
                data += await client_io.receive()
        assert data.startswith(b"HTTP/1.1 101 ")
        await parts.io.aclose()


async def test_declined_upgrade_cancels_the_pending_one() -> None:
    def declining(taken: list[OnUpgrade]) -> Any:
        async def service(request: Request[Incoming]) -> Response[Full]:
            taken.append(upgrade.on(request))
            return Response(200, headers={"connection": "close"}, body=Full(b"no"))

        return service

    taken, error, _, received = await serve_one(declining, upgrades=True, data=UPGRADE_REQUEST)
    assert error is None
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(CanceledError, match="not an upgrade"):
        await taken[0]


async def test_requests_that_cannot_upgrade_have_no_pending_upgrade() -> None:
    def plain(taken: list[OnUpgrade]) -> Any:
        async def service(request: Request[Incoming]) -> Response[Full]:
            taken.append(upgrade.on(request))
            return Response(200, headers={"connection": "close"}, body=Full(b""))

        return service

    http10 = b"GET / HTTP/1.0\r\nUpgrade: echo\r\n\r\n"
    taken, error, _, _ = await serve_one(plain, upgrades=True, data=http10)
    assert error is None
    with pytest.raises(UserError, match="no upgrade available"):
        await taken[0]


async def test_upgraded_io_belongs_to_the_taker() -> None:
    async with anyio.create_task_group() as tg:
        taken: list[OnUpgrade] = []
        server_io, client_io = memory_pipe()
        conn = http1.Builder().serve_connection(server_io, switching(taken)).with_upgrades()
        async with client_io:
            await client_io.send(UPGRADE_REQUEST + b"ping")
            with anyio.fail_after(10):
                await conn
            upgraded = await taken[0]
            with pytest.raises(UserError, match="handed to the upgrade"):
                conn.into_parts()
            assert await upgraded.receive() == b"ping"
            await upgraded.send(b"pong")
            head = await client_io.receive()
            while not head.endswith(b"pong"):
                head += await client_io.receive()
            assert head.startswith(b"HTTP/1.1 101 ")
            await upgraded.aclose()
        tg.cancel_scope.cancel()
