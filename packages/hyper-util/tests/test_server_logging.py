"""What ``serve()`` says: one startup line, application errors at ERROR, 500 in the access log.

What belongs here: log-capture tests of :func:`hyper_util.server.serve`
over real sockets (a failing service logs one ERROR with its traceback per
failing request, on HTTP/1.1 and HTTP/2, and its access record says 500;
client faults never reach ERROR), and the startup line: printed on stderr
by a process that set up no logging, once, and sent through logging
instead when logging is set up.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.abc
import pytest

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http1 as client_h1
from hyper_core.client.conn import http2 as client_h2
from hyper_core.http import Request, Response
from hyper_util.server import ACCESS_LOGGER, serve, startup_line
from hyper_util.server.conn import auto

pytestmark = pytest.mark.anyio


class Boom(Exception):
    """The application's failure."""


async def failing(request: Request[Incoming]) -> Response[Full]:
    if request.uri.path == "/ok":
        return Response(200, body=Full(b"ok"))
    raise Boom(f"failed on {request.uri.path}")


@asynccontextmanager
async def running(service: Any, **options: Any) -> AsyncIterator[tuple[str, int]]:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            partial(serve, service, port=0, handle_signals=False, shutdown_event=stop, **options)
        )
        yield address[0], address[1]
        stop.set()


async def get(host: str, port: int, paths: list[str], *, h2: bool) -> list[int]:
    statuses = []
    stream = await anyio.connect_tcp(host, port)
    handshake = client_h2.handshake if h2 else client_h1.handshake
    sender, connection = await handshake(stream)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        for path in paths:
            if not h2 and not sender.is_ready():
                break  # HTTP/1: a 500 for a failing service closes the connection
            request = Request("GET", f"http://{host}:{port}{path}")
            if not h2:
                request.headers["host"] = f"{host}:{port}"
            response = await sender.send_request(request)
            await collect(response.body)
            statuses.append(int(response.status))
        tg.cancel_scope.cancel()
    return statuses


@pytest.mark.parametrize("h2", [False, True], ids=["http1", "http2"])
async def test_service_error_is_logged_once_with_a_500_access_record(
    caplog: pytest.LogCaptureFixture, h2: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(failing, access_log=True) as (host, port):
        paths = ["/ok", "/boom"] if not h2 else ["/ok", "/boom", "/again"]
        with anyio.fail_after(10):
            statuses = await get(host, port, paths, h2=h2)
    assert statuses == [200, 500] if not h2 else [200, 500, 500]
    failures = len(statuses) - 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == failures, [r.getMessage() for r in errors]
    for record in errors:
        assert record.name == "hyper_core.server"
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], Boom)
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [getattr(r, "status", None) for r in access] == statuses
    # Nothing above DEBUG beyond the errors and the access records (and the
    # startup and shutdown notices at INFO). asyncio's debug mode (the test
    # backend's) warns of slow callbacks on a loaded machine: not ours.
    noisy = [
        r
        for r in caplog.records
        if logging.DEBUG < r.levelno < logging.ERROR and r.name not in (ACCESS_LOGGER, "asyncio")
    ]
    assert all(r.name == "hyper_util.server" for r in noisy), [r.getMessage() for r in noisy]


async def test_client_faults_are_not_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(failing) as (host, port):
        with anyio.fail_after(10):
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
                reply = b""
                while True:
                    try:
                        reply += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
    assert reply.startswith(b"HTTP/1.1 400 ")
    # asyncio's debug mode (the asyncio test backend) warns of slow callbacks
    # when the machine is loaded: not the server's words.
    ours = [r for r in caplog.records if r.name != "asyncio"]
    assert [r for r in ours if r.levelno >= logging.WARNING] == []


# -- the startup line --------------------------------------------------------------

SERVER_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from functools import partial
    import anyio
    from hyper_core.body import Full
    from hyper_core.http import Response
    from hyper_util.server import serve

    if sys.argv[1] == "logging":
        logging.basicConfig(level=logging.INFO, format="LOG %(name)s %(message)s")

    async def hello(request):
        return Response(200, body=Full(b"hi"))

    async def main():
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(partial(serve, hello, port=0, shutdown_event=stop,
                                   handle_signals=False))
            stop.set()

    anyio.run(main)
    """
)


def run_server_script(mode: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout, done.stderr


def test_startup_line_without_any_logging_setup() -> None:
    stdout, stderr = run_server_script("plain")
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("listening on http://127.0.0.1:")
    assert lines[0].endswith(" (HTTP/1.1 and HTTP/2 (h2c))")


def test_startup_line_goes_through_logging_when_it_is_set_up() -> None:
    _, stderr = run_server_script("logging")
    listening = [line for line in stderr.splitlines() if "listening on" in line]
    assert len(listening) == 1, stderr
    assert listening[0].startswith("LOG hyper_util.server listening on http://127.0.0.1:")


def test_startup_line_names_the_protocols_and_tls() -> None:
    plain = auto.Builder()
    assert startup_line(("127.0.0.1", 8000), plain, tls=False) == (
        "listening on http://127.0.0.1:8000 (HTTP/1.1 and HTTP/2 (h2c))"
    )
    assert startup_line(("::1", 8443, 0, 0), plain, tls=True) == (
        "listening on https://[::1]:8443 (HTTPS: ALPN h2 and http/1.1)"
    )
    assert startup_line("/tmp/s.sock", auto.Builder(http1_only=True), tls=False) == (
        "listening on unix:/tmp/s.sock (HTTP/1.1)"
    )
    assert startup_line(("127.0.0.1", 1), auto.Builder(http2_only=True), tls=True) == (
        "listening on https://127.0.0.1:1 (HTTPS: h2)"
    )


@pytest.mark.parametrize("announce", [True, False])
async def test_announce_option(caplog: pytest.LogCaptureFixture, announce: bool) -> None:
    caplog.set_level(logging.INFO, logger="hyper_util.server")
    async with running(failing, announce=announce) as (host, port):
        pass
    lines = [r.getMessage() for r in caplog.records if "listening on" in r.getMessage()]
    expected = [f"listening on http://{host}:{port} (HTTP/1.1 and HTTP/2 (h2c))"]
    assert lines == (expected if announce else [])
