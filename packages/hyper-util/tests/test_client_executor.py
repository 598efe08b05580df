"""The pooled client's ``executor``: connection tasks run where the application says.

A recording executor (a ``TaskGroupExecutor`` over the test's own task
group, counting what it is given) shows that each connection's driver,
and on HTTP/2 the task streaming a request body, are spawned through it;
that requests work as without it; and that leaving the client ends those
tasks, so the application's task group can exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVarTuple, Unpack

import anyio
import anyio.abc
import pytest

from hyper_core.body import Body, Full, Incoming, StreamBody, collect
from hyper_core.http import Request, Response
from hyper_core.rt import Executor, TaskGroupExecutor
from hyper_core.server.conn import http1, http2
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import Client

pytestmark = pytest.mark.anyio

PosArgsT = TypeVarTuple("PosArgsT")


class Recording:
    """Spawns into a task group, keeping the name of each function it was given."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._inner = TaskGroupExecutor(tg)
        self.spawned: list[str] = []

    def spawn(self, fn: Callable[[Unpack[PosArgsT]], Awaitable[Any]], /, *args: *PosArgsT) -> None:
        self.spawned.append(getattr(fn, "__name__", repr(fn)))
        self._inner.spawn(fn, *args)


def _is_executor(recording: Recording) -> Executor:
    return recording  # checked by mypy


async def echo(request: Request[Incoming]) -> Response[Body]:
    return Response(200, body=Full((await collect(request.body)).data))


@asynccontextmanager
async def serve(*, h2: bool) -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        builder: Any = http2.Builder() if h2 else http1.Builder()
        with suppress(Exception):
            await builder.serve_connection(stream, echo)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield f"http://127.0.0.1:{port}/"
        tg.cancel_scope.cancel()


async def chunks() -> AsyncIterator[bytes]:
    yield b"streamed "
    yield b"body"


@pytest.mark.parametrize("h2", [False, True], ids=["http1", "http2"])
async def test_connection_tasks_run_through_the_executor(h2: bool) -> None:
    async with serve(h2=h2) as url:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as app_tasks:
                executor = Recording(app_tasks)
                async with Client(executor=executor, http2_only=h2, timer=FakeTimer()) as client:
                    for _ in range(3):
                        response = await client.post(url, b"data")
                        assert (await collect(response.body)).data == b"data"
                    response = await client.post(url, StreamBody(chunks()))
                    assert (await collect(response.body)).data == b"streamed body"
                    drivers = executor.spawned.count("_drive")
                    assert drivers == client.statistics().connections_opened >= 1
                    if h2:  # the streamed request body went out from an executor task
                        assert len(executor.spawned) > drivers
                # Leaving the client ended every task it spawned: this exits.
            assert client.statistics().open_connections == 0


async def test_leaving_the_client_cuts_off_an_exchange_in_flight() -> None:
    async with serve(h2=False) as url:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as app_tasks:
                client = Client(executor=Recording(app_tasks), timer=FakeTimer())
                async with client:
                    response = await client.post(url, b"x" * 1_000_000)
                    # The body is not read: the connection is still in use.
                assert client.statistics().open_connections == 0
                with pytest.raises(Exception):  # noqa: B017,PT011 - whichever error the cut gives
                    await collect(response.body)
