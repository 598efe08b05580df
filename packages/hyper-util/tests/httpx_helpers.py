"""Helpers shared by the httpx transport tests: a test server and odd raw peers.

What belongs here: :func:`app` (one hyper service with the routes the tests
use: echo, redirects, cookies, auth, streaming, slow and silent answers),
:func:`running_server` (it, behind :func:`hyper_util.server.serve`, on
127.0.0.1 port 0, in the test's event loop), :func:`thread_server` (the
same in a thread of its own, for the synchronous tests), and
:func:`raw_peer` (an anyio listener running a handler on each connection,
for peers that misbehave on purpose).

Strategy: every route answers from the request alone, so the tests assert
what the server saw (method, target, headers, body digest, the client's
port: one port means one connection) against what they sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from anyio.from_thread import start_blocking_portal

from hyper_core import upgrade
from hyper_core.body import Body, Empty, Full, Incoming, StreamBody, collect
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_core.server.conn import http1
from hyper_util.rt import create_tcp_listener
from hyper_util.server import serve
from hyper_util.server.conn import auto

CREDENTIALS = ("user", "p@ss")


@dataclass
class State:
    """What the server shares between requests (per server)."""

    release: anyio.Event = field(default_factory=anyio.Event)
    arrived: int = 0
    gathered: int = 0
    gate: anyio.Event = field(default_factory=anyio.Event)


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> Response[Body]:
    body = json.dumps(value).encode()
    fields = {"content-type": "application/json", **(headers or {})}
    return Response(status, headers=fields, body=Full(body))


def _query(request: Request[Any]) -> dict[str, str]:
    pairs = (part.partition("=") for part in (request.uri.query or "").split("&") if part)
    return {name: value for name, _, value in pairs}


def make_app(state: State) -> Callable[[Request[Incoming]], Awaitable[Response[Body]]]:
    """The test service; ``state`` lets tests hold and release requests."""

    async def app(request: Request[Incoming]) -> Response[Body]:
        path = request.uri.path
        query = _query(request)
        if path == "/echo" or path.startswith("/echo/"):
            body = (await collect(request.body)).to_bytes()
            return _json(
                200,
                {
                    "method": str(request.method),
                    "target": request.uri.path_and_query,
                    "version": str(request.version),
                    "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw()],
                    "length": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                },
            )
        if path.startswith("/bytes/"):
            size = int(path.rsplit("/", 1)[1])
            return Response(200, body=Full(b"x" * size))
        if path == "/stream":
            count, size = int(query.get("count", "10")), int(query.get("size", "1000"))

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(count):
                    yield bytes([65 + i % 26]) * size

            return Response(200, body=StreamBody(chunks()))
        if path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                return _json(200, {"redirected": True})
            return Response(302, headers={"location": f"/redirect/{left - 1}"}, body=Empty())
        if path == "/cookies/set":
            cookies = [(b"set-cookie", f"{k}={v}; Path=/".encode()) for k, v in query.items()]
            return Response(200, headers=cookies, body=Full(b"set"))
        if path == "/cookies":
            return _json(200, {"cookie": request.headers.get("cookie")})
        if path == "/basic-auth":
            expected = "Basic " + base64.b64encode(":".join(CREDENTIALS).encode()).decode()
            if request.headers.get("authorization") != expected:
                return Response(
                    401, headers={"www-authenticate": 'Basic realm="test"'}, body=Empty()
                )
            return _json(200, {"authenticated": True})
        if path == "/challenge":
            # A two-step auth: a 401 with a nonce, then the nonce echoed back.
            await collect(request.body)
            if request.headers.get("authorization") != "Nonce 42":
                return Response(401, headers={"x-nonce": "42"}, body=Full(b"retry"))
            return _json(200, {"authenticated": True})
        if path == "/slow-head":
            await anyio.sleep(float(query.get("delay", "10")))
            return Response(200, body=Full(b"late"))
        if path == "/slow-body":

            async def stalls() -> AsyncIterator[bytes]:
                yield b"first"
                await anyio.sleep(float(query.get("delay", "10")))
                yield b"late"

            return Response(200, body=StreamBody(stalls()))
        if path == "/hold":
            state.arrived += 1
            await state.release.wait()
            return Response(200, body=Full(b"released"))
        if path == "/gather":
            # Answers only once ``n`` requests are in at the same time.
            state.gathered += 1
            if state.gathered >= int(query["n"]):
                state.gate.set()
            await state.gate.wait()
            return _json(200, {"gathered": state.gathered})
        if path == "/status":
            return Response(int(query["code"]), body=Full(b""))
        if path == "/ws-upgrade":
            return await _upgrade_echo(request)
        return Response(404, body=Full(b"not found"))

    return app


async def _upgrade_echo(request: Request[Incoming]) -> Response[Body]:
    """101 to a toy protocol: the server echoes each chunk it receives, uppercased."""
    pending = upgrade.on(request)

    async def later() -> None:
        upgraded = await pending
        async with upgraded:
            while True:
                try:
                    data = await upgraded.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                await upgraded.send(data.upper())

    _upgrade_tasks.start_soon(later)
    return Response(101, headers={"upgrade": "toy", "connection": "upgrade"}, body=Empty())


class _Spawner:
    """Where upgraded connections run: the running server's task group."""

    tg: anyio.abc.TaskGroup | None = None

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        assert self.tg is not None
        self.tg.start_soon(func)


_upgrade_tasks = _Spawner()


class CountingListener:
    """A listener that counts the connections it accepts (one per client connection)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.accepted = 0

    async def accept(self) -> Any:
        stream = await self.inner.accept()
        self.accepted += 1
        return stream

    async def aclose(self) -> None:
        await self.inner.aclose()

    def extra(self, attribute: Any, default: Any = None) -> Any:
        return self.inner.extra(attribute, default)


@dataclass
class Server:
    """A running test server: its base URL and how many connections it accepted."""

    base: str
    listener: CountingListener
    state: State

    @property
    def accepted(self) -> int:
        return self.listener.accepted


@asynccontextmanager
async def running_server(state: State | None = None) -> AsyncIterator[Server]:
    """Serve the test app on 127.0.0.1 (HTTP/1.1 and h2c on one port)."""
    state = state or State()
    stop = anyio.Event()
    listener = CountingListener(await create_tcp_listener("127.0.0.1", 0))
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        _upgrade_tasks.tg = tg
        await tg.start(
            lambda task_status: serve(
                make_app(state),
                listener=listener,  # type: ignore[arg-type]
                builder=auto.Builder(http1=http1.Builder(upgrades=True)),
                shutdown_event=stop,
                shutdown_timeout=1,
                handle_signals=False,
                task_status=task_status,
            )
        )
        yield Server(f"http://127.0.0.1:{port}", listener, state)
        stop.set()
        tg.cancel_scope.cancel()


@contextmanager
def thread_server() -> Iterator[tuple[Server, Any]]:
    """:func:`running_server` on an asyncio loop in a thread of its own, with its portal."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running_server()) as server,
    ):
        yield server, portal


@asynccontextmanager
async def raw_peer(handler: Callable[[IO], Awaitable[None]]) -> AsyncIterator[int]:
    """Run ``handler`` on each connection to a loopback listener; yield its port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def guarded(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with suppress(anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                await handler(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, guarded, tg)
        yield port
        tg.cancel_scope.cancel()


async def read_head(io: IO) -> bytes:
    """Read up to the end of a request head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await io.receive(65536)
        if not chunk:
            break
        data += chunk
    return data


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll ``predicate`` (state no event announces) until true, or fail after ``timeout``."""
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.005)
    assert predicate(), what
