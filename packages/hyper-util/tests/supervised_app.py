"""A server under ``hyper_util.server.run_workers``, started as a process by test_server_workers.py.

Run as ``python supervised_app.py [options]``: binds 127.0.0.1 port 0 (or
``--uds PATH``) in the supervisor, prints ``listening on HOST:PORT`` (or
the path), then supervises ``--workers`` processes that each serve the
inherited socket with :func:`hyper_util.server.serve` on ``--backend``.

Routes: ``/`` answers with the worker's PID; ``/slow?SECONDS`` answers the
same after sleeping (a request in flight); ``/block?SECONDS`` blocks the
worker's whole event loop for that long, so another worker must take the
next connection. With ``--app-dir DIR`` the service comes from
``DIR/reload_app.py`` instead (imported in each worker, for ``--reload``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from functools import partial

import anyio

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_core.service import Service
from hyper_util.server import (
    EXIT_STARTUP_FAILED,
    bind_sockets,
    limit_requests,
    listen_on,
    run_workers,
    serve,
    worker_ready,
)

BACKENDS = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


@dataclass(frozen=True)
class Options:
    backend: str = "asyncio"
    max_requests: int | None = None
    shutdown_timeout: float = 10.0
    app_dir: str | None = None
    fail: str | None = None  # "startup": exit 3; "crash": exit 1 before ready


async def pid_service(request: Request[Incoming]) -> Response[Full]:
    seconds = float(request.uri.query or 0)
    if request.uri.path == "/slow":
        await anyio.sleep(seconds)
    elif request.uri.path == "/block":
        time.sleep(seconds)  # noqa: ASYNC251 - the loop stops: no accept in this worker
    return Response(200, body=Full(str(os.getpid()).encode()))


def work(options: Options, sockets: list[socket.socket]) -> int:
    if options.fail == "startup":
        return EXIT_STARTUP_FAILED
    if options.fail == "crash":
        return 1
    service: Service[Full] = pid_service
    if options.app_dir is not None:
        sys.path.insert(0, options.app_dir)
        service = importlib.import_module("reload_app").service

    async def main() -> None:
        shutdown = anyio.Event()
        served = service
        if options.max_requests is not None:
            served = limit_requests(service, options.max_requests, shutdown.set)
        listener = await listen_on(sockets)
        async with anyio.create_task_group() as tg:
            await tg.start(
                partial(
                    serve,
                    served,
                    listener=listener,
                    shutdown_event=shutdown,
                    shutdown_timeout=options.shutdown_timeout,
                )
            )
            worker_ready()

    backend, backend_options = BACKENDS[options.backend]
    anyio.run(main, backend=backend, backend_options=backend_options)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="asyncio")
    parser.add_argument("--max-requests", type=int)
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--stop-timeout", type=float, default=15.0)
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--uds")
    parser.add_argument("--app-dir")
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--fail", choices=["startup", "crash"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(process)d %(message)s", stream=sys.stderr)
    sockets = bind_sockets("127.0.0.1", 0, uds=args.uds)
    address = sockets[0].getsockname()
    where = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
    print(f"listening on {where}", flush=True)
    options = Options(
        backend=args.backend,
        max_requests=args.max_requests,
        shutdown_timeout=args.shutdown_timeout,
        app_dir=args.app_dir,
        fail=args.fail,
    )
    try:
        return run_workers(
            partial(work, options),
            sockets,
            workers=args.workers,
            reload=args.reload,
            reload_dirs=[args.app_dir] if args.app_dir else [],
            stop_timeout=args.stop_timeout,
            startup_timeout=args.startup_timeout,
        )
    finally:
        if args.uds:
            os.unlink(args.uds)


if __name__ == "__main__":
    sys.exit(main())
