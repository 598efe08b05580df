"""``bind_sockets``, ``listen_on`` and ``limit_requests`` in one process, on every backend.

What belongs here: the pieces a worker uses, without the supervisor: sockets
bound by a blocking call serve through ``serve(listener=await
listen_on(sockets))`` on asyncio, uvloop and trio (TCP, a host name with
several addresses, a Unix socket, a file descriptor), and a
``limit_requests`` service ends ``serve`` after N requests. The supervisor
itself is tested with real processes in test_server_workers.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_util.server import (
    RELOAD_UNAVAILABLE,
    bind_sockets,
    limit_requests,
    listen_on,
    run_workers,
    serve,
)

pytestmark = pytest.mark.anyio


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, body=Full(f"{request.uri.path}".encode()))


async def serve_sockets(sockets: list[socket.socket], urls: list[str], **options: Any) -> None:
    """Serve ``sockets`` and GET each URL once (through httpx's ``transport``)."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        listener = await listen_on(sockets)
        await tg.start(
            partial(serve, hello, listener=listener, shutdown_event=stop, handle_signals=False)
        )
        for url in urls:
            uds = options.get("uds")
            transport = httpx.AsyncHTTPTransport(uds=uds)
            async with httpx.AsyncClient(transport=transport) as client:
                response = await client.get(url)
                assert response.status_code == 200
                assert response.text == httpx.URL(url).path
        stop.set()


async def test_tcp_port_zero() -> None:
    sockets = bind_sockets("127.0.0.1", 0)
    assert len(sockets) == 1
    host, port = sockets[0].getsockname()
    assert host == "127.0.0.1"
    assert port != 0
    assert sockets[0].getblocking()
    await serve_sockets(sockets, [f"http://127.0.0.1:{port}/tcp"])


async def test_a_name_binds_every_address_on_one_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine's "localhost" may have one address; the name "loopbacks"
    # resolves to both loopback addresses (real sockets, a substituted lookup).
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "loopbacks":
            return real(host, *args, **kwargs)
        return real("127.0.0.1", *args, **kwargs) + real("::1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    sockets = bind_sockets("loopbacks", 0)
    ports = {sock.getsockname()[1] for sock in sockets}
    assert len(ports) == 1
    hosts = {sock.getsockname()[0] for sock in sockets}
    assert hosts == {"127.0.0.1", "::1"}
    assert sockets[1].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    port = ports.pop()
    urls = [f"http://{h}:{port}/{i}" if ":" not in h else f"http://[{h}]:{port}/{i}"
            for i, h in enumerate(sorted(hosts))]  # fmt: skip
    await serve_sockets(sockets, urls)


async def test_unix_socket_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays behind
    sockets = bind_sockets(uds=path)
    assert sockets[0].getsockname() == str(path)
    await serve_sockets(sockets, ["http://localhost/unix"], uds=str(path))


async def test_inherited_file_descriptor() -> None:
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))  # bound, not yet listening: bind_sockets listens
    port = bound.getsockname()[1]
    sockets = bind_sockets(fd=bound.detach())
    await serve_sockets(sockets, [f"http://127.0.0.1:{port}/fd"])


def test_a_file_descriptor_that_is_no_stream_socket() -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError, match="not a stream socket"):
            bind_sockets(fd=udp.fileno())
        assert udp.fileno() != -1  # still the caller's


def test_a_taken_port_is_an_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            bind_sockets("127.0.0.1", taken.getsockname()[1])


async def test_listen_on_needs_a_socket() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await listen_on([])


async def test_limit_requests_ends_serve_after_n_requests() -> None:
    done = anyio.Event()
    sockets = bind_sockets("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]

    async def run(*, task_status: anyio.abc.TaskStatus[Any]) -> None:
        shutdown = anyio.Event()
        service = limit_requests(hello, 3, shutdown.set)
        listener = await listen_on(sockets)
        await serve(
            service,
            listener=listener,
            shutdown_event=shutdown,
            handle_signals=False,
            task_status=task_status,
        )
        done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
            await tg.start(run)
            for n in range(3):
                response = await client.get(f"http://127.0.0.1:{port}/{n}")
                assert response.text == f"/{n}"
            await done.wait()  # the third request ended it
    with pytest.raises(OSError, match=r"(?i)connect"):
        await anyio.connect_tcp("127.0.0.1", port)


def test_limit_requests_options() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_requests(hello, 0, lambda: None)
    with pytest.raises(ValueError, match="negative"):
        limit_requests(hello, 1, lambda: None, jitter=-1)


def test_run_workers_rejects_what_cannot_be_pickled() -> None:
    with socket.socket() as sock, pytest.raises(TypeError, match="picklable"):
        run_workers(lambda sockets: None, [sock])


def test_reload_without_watchfiles_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['watchfiles'] = None\n"
        "from hyper_util.server import run_workers\n"
        "try:\n"
        "    run_workers(print, [], reload=True)\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == RELOAD_UNAVAILABLE
    assert "pip install 'hyper-util[reload]'" in RELOAD_UNAVAILABLE


def test_reload_dirs_must_exist(tmp_path: Path) -> None:
    with socket.socket() as sock, pytest.raises(ValueError, match="not a directory"):
        run_workers(print, [sock], reload=True, reload_dirs=[tmp_path / "missing"])
