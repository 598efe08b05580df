"""HTTP/2 server interop: real peers talk h2c with prior knowledge to our server.

What belongs here: curl (``--http2-prior-knowledge``), nghttp, h2load and
httpx (``http1=False, http2=True``) against ``server.conn.http2`` on a
loopback socket. A missing peer binary fails the test: these peers are part
of the project's test environment.

Strategy: the server listens on 127.0.0.1 port 0 inside the test's own task
group; external tools run through ``anyio.run_process`` with a timeout.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from hyper_core.body import Full, Incoming, collect
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http2

pytestmark = pytest.mark.anyio


async def app(request: Request[Incoming]) -> Response[Full]:
    body = (await collect(request.body)).to_bytes()
    if request.uri.path == "/echo":
        info = {
            "method": str(request.method),
            "uri": str(request.uri),
            "length": len(body),
            "version": str(request.version),
        }
        return Response(
            200, headers={"content-type": "application/json"}, body=Full(json.dumps(info).encode())
        )
    return Response(200, headers={"x-served-by": "hyper"}, body=Full(b"Hello, World!"))


@asynccontextmanager
async def listening(**options: Any) -> AsyncIterator[tuple[int, list[BaseException]]]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    errors: list[BaseException] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        try:
            await http2.Builder(**options).serve_connection(stream, app)
        except HyperError as exc:
            errors.append(exc)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port, errors
        tg.cancel_scope.cancel()


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is required for the interop tests and was not found"
    return path


async def run(*argv: str) -> str:
    with anyio.fail_after(30):
        result = await anyio.run_process(list(argv), check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


async def test_curl_http2_prior_knowledge() -> None:
    async with listening() as (port, errors):
        out = await run(
            tool("curl"), "-sS", "-i", "--http2-prior-knowledge", f"http://127.0.0.1:{port}/"
        )
        posted = await run(
            tool("curl"),
            "-sS",
            "--http2-prior-knowledge",
            "--data-binary",
            "x" * 100_000,
            f"http://127.0.0.1:{port}/echo?q=1",
        )
    assert out.startswith("HTTP/2 200")
    assert "x-served-by: hyper" in out
    assert out.endswith("Hello, World!")
    info = json.loads(posted)
    assert info == {
        "method": "POST",
        "uri": f"http://127.0.0.1:{port}/echo?q=1",
        "length": 100_000,
        "version": "HTTP/2",
    }
    assert not errors


async def test_nghttp() -> None:
    async with listening() as (port, errors):
        out = await run(tool("nghttp"), "-v", f"http://127.0.0.1:{port}/")
    assert "Hello, World!" in out
    assert ":status: 200" in out
    assert "GOAWAY" in out  # nghttp closes politely
    assert not errors


async def test_h2load_many_streams() -> None:
    async with listening() as (port, errors):
        out = await run(
            tool("h2load"), "-n", "2000", "-c", "4", "-m", "10", f"http://127.0.0.1:{port}/"
        )
    assert "2000 succeeded, 0 failed, 0 errored" in out
    assert "status codes: 2000 2xx" in out
    assert not errors


async def test_httpx_http2() -> None:
    responses: list[httpx.Response] = []
    async with (
        listening() as (port, errors),
        httpx.AsyncClient(http1=False, http2=True) as client,
        anyio.create_task_group() as tg,
    ):

        async def get(i: int) -> None:
            responses.append(await client.post(f"http://127.0.0.1:{port}/echo", content=b"a" * i))

        for i in range(50):
            tg.start_soon(get, i * 1000)
    assert len(responses) == 50
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert sorted(r.json()["length"] for r in responses) == [i * 1000 for i in range(50)]
    assert not errors
