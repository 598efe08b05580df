"""One port, several processes: ``hyper_util.server.run_workers``.

Run it, then fetch from it a few times::

    python examples/workers.py --port 8080 --workers 4
    curl http://127.0.0.1:8080/        # "Hello from worker 12345"

This process binds the socket once (``bind_sockets``) and supervises
``--workers`` worker processes; each one turns the inherited socket into a
listener (``listen_on``) and runs ``serve()`` on it, so all of them accept
connections on the same port and the kernel spreads the connections over
them. A worker that dies is replaced; ``kill -HUP`` replaces every worker
(each new one is serving before the old one stops); Ctrl-C or SIGTERM stops
them all, letting requests in flight finish. The workers are spawned, not
forked: ``work`` must be importable, and this file needs its ``if __name__
== "__main__":`` guard.

``--backend trio`` runs the workers on trio.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from functools import partial

import anyio

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_util.server import bind_sockets, listen_on, run_workers, serve, worker_ready

# Only loopback: an example has no business listening on every interface.
HOST = "127.0.0.1"


async def hello(request: Request[Incoming]) -> Response[Full]:
    """Say which worker process answered."""
    body = f"Hello from worker {os.getpid()}\n".encode()
    return Response(200, headers={"content-type": "text/plain"}, body=Full(body))


def work(backend: str, sockets: list[socket.socket]) -> None:
    """One worker: serve the inherited sockets until SIGTERM (from the supervisor)."""

    async def main() -> None:
        listener = await listen_on(sockets)
        async with anyio.create_task_group() as tg:
            # serve() stops gracefully on SIGTERM; start() returns once it accepts.
            await tg.start(partial(serve, hello, listener=listener))
            worker_ready()  # the supervisor now counts this worker as serving

    anyio.run(main, backend=backend)


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve 'Hello' from several processes.")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0 picks a free one)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    sockets = bind_sockets(HOST, args.port)
    port = sockets[0].getsockname()[1]
    print(f"listening on http://{HOST}:{port}", flush=True)
    return run_workers(partial(work, args.backend), sockets, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
