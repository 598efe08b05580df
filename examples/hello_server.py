"""Hello, World! over HTTP/1.1: the smallest complete server.

Run it, then fetch from it::

    python examples/hello_server.py --port 8080
    python examples/client.py http://127.0.0.1:8080/

A server here is three pieces: a *service* (an async function from a request
to a response), a TCP listener, and, for each accepted connection,
``http1.Builder().serve_connection(stream, service)``, awaited in the
listener's task for that connection. hyper_core adds no accept loop of its
own: whatever gives you a byte stream (a TCP listener, a Unix socket, TLS)
can be served. The listener is hyper-util's
(:func:`hyper_util.rt.create_tcp_listener`), as hyper's own examples take
``TokioIo`` from hyper-util: its streams stop reading a socket while 1 MiB
waits to be read, so a client that sends without reading the answers is
held back by TCP instead of filling the server's memory (anyio's own
listener, on asyncio, reads whatever arrives).

``--backend trio`` runs the same code on trio instead of asyncio. The server
stops on Ctrl-C or SIGTERM and exits with status 0. ``echo_server.py`` and
``demo.py`` reuse :func:`serve` from here.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from hyper_core.body import Full, Incoming
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_core.service import Service
from hyper_util.rt import create_tcp_listener

# Only loopback: an example has no business listening on every interface.
HOST = "127.0.0.1"

# One Builder serves every connection: it holds options only (these are
# hyper's defaults: keep-alive on, 30 s to send a request head, ...).
BUILDER = http1.Builder()


async def hello(request: Request[Incoming]) -> Response[Full]:
    """Answer every request with the same 14 bytes.

    The request body is never read; the connection discards it (up to a
    bound) before the next request, so keep-alive survives a POST here too.
    """
    return Response(200, headers={"content-type": "text/plain"}, body=Full(b"Hello, World!\n"))


async def serve(
    service: Service[Any],
    port: int,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` over HTTP/1.1 on ``127.0.0.1:port`` until cancelled.

    Use it with ``port = await task_group.start(serve, service, 0)``: the
    port (the one the system picked, for port 0) is reported once the
    listener is accepting.
    """

    async def handle(stream: SocketStream) -> None:
        # serve_connection() closes the stream when it is done. It raises
        # HyperError when a connection ends badly (a malformed request, a
        # client that went silent, a service that raised): that is one bad
        # connection, so log it and keep serving the others. Letting it
        # escape would cancel the listener's task group, and with it the
        # whole server.
        try:
            await BUILDER.serve_connection(stream, service)
        except HyperError as exc:
            print(f"connection error: {exc!r}", file=sys.stderr)

    listener = await create_tcp_listener(HOST, port)
    async with listener:
        task_status.started(listener.extra(SocketAttribute.local_port))
        # One task per connection; cancelling serve() cancels them all.
        await listener.serve(handle)


async def stop_on_signal(
    scope: anyio.CancelScope, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Cancel ``scope`` at the first SIGINT (Ctrl-C) or SIGTERM.

    Handling the signals in the event loop, instead of letting Ctrl-C raise
    KeyboardInterrupt wherever the code happens to be, lets every connection
    close through its normal cancellation path, and SIGTERM (what service
    managers and ``kill`` send) gets the same clean exit.
    """
    if sys.platform == "win32":
        # No signal handlers in the event loop there: Ctrl-C raises
        # KeyboardInterrupt out of anyio.run() instead (caught below).
        task_status.started()
        return
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # Reported only once the handlers are installed, so a signal sent
        # after the "listening on" line is never lost to the default action.
        task_status.started()
        async for signum in signals:
            print(f"{signal.Signals(signum).name}: shutting down", file=sys.stderr)
            scope.cancel()
            return


async def run_server(service: Service[Any], port: int) -> None:
    """Serve until SIGINT or SIGTERM, printing the address once listening."""
    async with anyio.create_task_group() as tg:
        await tg.start(stop_on_signal, tg.cancel_scope)
        actual_port = await tg.start(serve, service, port)
        # A test (or a person) reads the port from this line; flush so it
        # leaves at once even when stdout is a pipe.
        print(f"listening on http://{HOST}:{actual_port}", flush=True)


def parse_args(description: str) -> argparse.Namespace:
    """The command line shared by the example servers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)"
    )
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="event loop to run on"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args("Answer every HTTP/1.1 request with 'Hello, World!'.")
    # KeyboardInterrupt only on Windows: elsewhere stop_on_signal() handles Ctrl-C.
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run_server, hello, args.port, backend=args.backend)
