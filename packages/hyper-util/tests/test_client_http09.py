"""The pooled Client and HTTP/0.9: ``http09_responses`` passed to its HTTP/1 connections.

What belongs here: hyper's ``client_allows_http09_when_requested`` and
``client_always_rejects_http09`` as the pooled Client runs them (hyper runs
its ``test!`` cases through its legacy Client), and how the option meets an
``http1`` builder given explicitly.

Strategy: a raw TCP server on loopback reads the request head and answers
with bytes that have no status line, then closes, as a 0.9 server does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from hyper_core.body import collect
from hyper_core.client.conn import http1
from hyper_core.error import HyperError
from hyper_core.http import Request, Version
from hyper_core.proto.h1 import _codec
from hyper_util.client.legacy import Client, InvalidRequestError

pytestmark = pytest.mark.anyio

H11 = _codec.DEFAULT_IMPL == "h11"
REPLY = b"Mmmmh, baguettes."


@asynccontextmanager
async def http09_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers each connection's request with :data:`REPLY` and closes it."""
    heads: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        buf = b""
        async with stream:
            while b"\r\n\r\n" not in buf:
                buf += await stream.receive()
            heads.append(buf.partition(b"\r\n\r\n")[0])
            await stream.send(REPLY)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port, heads
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("how", ["client-option", "http1-builder"])
async def test_client_allows_http09_when_requested(how: str) -> None:
    if H11:
        with pytest.raises(ValueError, match="h11 codec"):
            Client(http09_responses=True)
        return
    client = (
        Client(http09_responses=True)
        if how == "client-option"
        else Client(http1=http1.Builder(http09_responses=True))
    )
    async with http09_server() as (port, heads), client:
        with anyio.fail_after(10):
            response = await client.get(f"http://127.0.0.1:{port}/")
            body = (await collect(response.body)).to_bytes()
        assert (response.status, response.version, len(response.headers)) == (
            200,
            Version.HTTP_09,
            0,
        )
        assert body == REPLY
        assert heads == [b"GET / HTTP/1.1\r\nhost: 127.0.0.1:%d" % port]
        # Read until the close: the connection is not pooled.
        assert client.statistics().idle_connections == 0


async def test_http09_responses_are_refused_by_default() -> None:
    async with http09_server() as (port, _), Client() as client:
        with anyio.fail_after(10), pytest.raises(HyperError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_client_always_rejects_http09() -> None:
    # An HTTP/0.9 *request* is never sent, option or not (hyper's message).
    async with http09_server() as (port, heads), Client() as client:
        request = Request("GET", f"http://127.0.0.1:{port}/", version=Version.HTTP_09)
        with pytest.raises(InvalidRequestError, match="unsupported HTTP version"):
            await client.request(request)
    assert heads == []


def test_http09_responses_with_an_http1_builder_is_refused() -> None:
    # The builder holds every HTTP/1 option: the flag goes there.
    with pytest.raises(ValueError, match="http09_responses"):
        Client(http09_responses=True, http1=http1.Builder())


def test_http09_responses_on_the_h11_codec_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_codec, "DEFAULT_IMPL", "h11")
    with pytest.raises(ValueError, match="h11 codec"):
        Client(http09_responses=True)
