"""Fixtures shared by the black-box HTTP/1 server suites: a real loopback server.

What belongs here: only what more than one test file needs to run an HTTP/1
server connection of ours on a real TCP socket. Protocol expectations live in
the test files.

Strategy: ``serve_h1(service, **builder_options)`` is an async context manager
that listens on 127.0.0.1 port 0 inside the *test's own* task group, so a
crash in the accept loop fails the test and leaving the block cancels every
connection still open. Each accepted socket is driven by
``http1.Builder(**options).serve_connection(stream, service)``; how that
connection ended (``None`` for a normal return, else the exception) is kept,
so a test can wait for the server side of its connection to finish and check
that no foreign exception (h11's, a bare ``AttributeError``...) escaped the
public API.
"""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.memory import MemoryObjectReceiveStream

from hyper_core.body import Body, Incoming
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1

# Test helper modules beside this file (h1_recording_io, h3_support) import by
# name: pytest's importlib mode does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]


@dataclass
class LoopbackServer:
    """A running server: where it listens and how its connections ended.

    Attributes:
        port: The TCP port on 127.0.0.1.
        accepted: How many connections were accepted so far.
        outcomes: One entry per finished connection, in finishing order:
            ``None`` when ``serve_connection`` returned, else what it raised.
    """

    port: int
    _finished: MemoryObjectReceiveStream[BaseException | None]
    accepted: int = 0
    outcomes: list[BaseException | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    async def next_outcome(self) -> BaseException | None:
        """Wait until one more server connection has finished; return how it ended."""
        return await self._finished.receive()

    def foreign_errors(self) -> list[BaseException]:
        """Exceptions that ended a connection and are not hyper-core errors."""
        return [e for e in self.outcomes if e is not None and not isinstance(e, HyperError)]


ServeH1 = Callable[..., AbstractAsyncContextManager[LoopbackServer]]


@asynccontextmanager
async def _serve_h1(service: Service, **options: Any) -> AsyncIterator[LoopbackServer]:
    send_finished, receive_finished = anyio.create_memory_object_stream[BaseException | None](
        math.inf
    )
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = LoopbackServer(
        port=listener.extra(SocketAttribute.local_port), _finished=receive_finished
    )

    async def handle(stream: SocketStream) -> None:
        server.accepted += 1
        outcome: BaseException | None = None
        async with stream:
            try:
                await http1.Builder(**options).serve_connection(stream, service)
            except Exception as exc:  # kept for the test to judge, never swallowed silently
                outcome = exc
        server.outcomes.append(outcome)
        send_finished.send_nowait(outcome)

    failure: Exception | None = None
    async with listener, send_finished, receive_finished, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        try:
            yield server
        except Exception as exc:
            # Re-raised below, outside the task group, so a failed assertion in
            # the test reads as itself rather than as an ExceptionGroup.
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


@pytest.fixture
def serve_h1() -> ServeH1:
    """``async with serve_h1(service, **http1_builder_options) as server: ...``."""
    return _serve_h1
