"""Download receipts: know that a response was written, not just returned.

Run it::

    python examples/download_receipts.py            # asyncio
    python examples/download_receipts.py --backend trio

It starts a server on a free loopback port and downloads a 16 MiB file from
it three times: over HTTP/1.1, over HTTP/2, and once more over HTTP/1.1 by a
client that reads the first chunk and then hangs up. The server produces
each file through :func:`hyper_util.body.written_channel` and records a
receipt only when ``await sender.finish()`` returns, that is once the whole
response (head, body, end) was handed to the transport; a metrics hook
(:func:`hyper_core.ext.on_write`) on the same response counts bytes as they
are written. The client that hangs up gets no receipt: its producer learns
it from the :class:`~hyper_core.error.ClosedError` its wait raises, with the
byte count that did go out. Output, one line per download::

    receipt: download 1 over HTTP/1.1, 16777216 bytes written
    receipt: download 2 over HTTP/2, 16777216 bytes written
    no receipt: download 3 over HTTP/1.1 failed after 2621440 of 16777216 bytes

(the count of the failed one depends on the socket buffers). "Written"
means handed to the transport, not read by the peer: see the bodies guide.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import anyio
from anyio.abc import SocketAttribute

from hyper_core import ext
from hyper_core.body import Incoming
from hyper_core.client.conn import http1 as client_http1
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import ClosedError, HyperError
from hyper_core.http import Request, Response, Version
from hyper_util import rt
from hyper_util.body import WrittenSender, written_channel
from hyper_util.server.conn import auto

CHUNK = 64 * 1024
SIZE = 256 * CHUNK  # 16 MiB: far more than socket buffers hold


async def produce(sender: WrittenSender, number: int, version: str, counted: list[int]) -> None:
    """Write the file; print a receipt once all of it was written."""
    try:
        async with sender:
            for _ in range(SIZE // CHUNK):
                await sender.send_data(b"x" * CHUNK)
        await sender.finish()
    except ClosedError:
        print(
            f"no receipt: download {number} over {version} failed after "
            f"{counted[0]} of {SIZE} bytes",
            flush=True,
        )
    else:
        print(f"receipt: download {number} over {version}, {counted[0]} bytes written", flush=True)


async def main() -> None:
    downloads = 0
    producers_done = anyio.Event()
    finished = 0

    async def service(request: Request[Incoming]) -> Response[Any]:
        nonlocal downloads
        downloads += 1
        number = downloads
        sender, body = written_channel()
        response = Response(200, headers={"content-length": str(SIZE)}, body=body)
        sender.observe(response)
        counted = [0]  # the metrics hook's count of body bytes written

        def metrics(event: ext.WriteEvent) -> None:
            counted[0] = event.body_bytes

        ext.on_write(response, metrics)
        version = "HTTP/2" if request.version is Version.HTTP_2 else "HTTP/1.1"

        async def run() -> None:
            nonlocal finished
            await produce(sender, number, version, counted)
            finished += 1
            if finished == 3:
                producers_done.set()

        task_group.start_soon(run)
        return response

    async def handle(stream: Any) -> None:
        async with stream:
            with contextlib.suppress(HyperError):
                await auto.Builder().serve_connection(stream, service)

    listener = await rt.create_tcp_listener("127.0.0.1", 0)
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, handle)
        for handshake in (client_http1.handshake, client_http2.handshake):
            await download(port, handshake, read_all=True)
        await download(port, client_http1.handshake, read_all=False)
        with anyio.fail_after(10):
            await producers_done.wait()
        task_group.cancel_scope.cancel()


async def download(port: int, handshake: Any, *, read_all: bool) -> None:
    """Fetch the file; with ``read_all`` false, take one chunk and hang up."""
    # Read ahead at most one chunk: a client that stops reading is then
    # felt by the server after the socket buffers, not after megabytes.
    stream = await rt.connect_tcp("127.0.0.1", port, read_high_water=CHUNK)
    async with stream, anyio.create_task_group() as task_group:
        sender, connection = await handshake(stream)
        task_group.start_soon(connection.serve)
        request = Request("GET", f"http://127.0.0.1:{port}/file")
        request.headers["host"] = f"127.0.0.1:{port}"
        response = await sender.send_request(request)
        while await response.body.frame() is not None:
            if not read_all:
                break
        task_group.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    anyio.run(main, backend=parser.parse_args().backend)
