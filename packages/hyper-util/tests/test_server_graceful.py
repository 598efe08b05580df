"""Graceful shutdown: ``GracefulShutdown`` on its own and ``serve()`` under load.

What belongs here: that requests in flight when the shutdown starts all
complete with full responses (HTTP/1.1 and HTTP/2), that new connections are
refused once it started, that the deadline is honoured (a service that never
finishes is cancelled), and the ``GracefulShutdown`` API (count, watch after
shutdown, the result of the wait).

Strategy: real loopback servers and httpx clients for the load tests;
in-memory pipes and a fake timer for the API tests.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from hyper_core.body import Full, Incoming, StreamBody
from hyper_core.http import Request, Response
from hyper_core.testing import FakeTimer, memory_pipe
from hyper_util.server import GracefulShutdown, serve
from hyper_util.server.conn import auto

pytestmark = pytest.mark.anyio


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is required for the interop tests and was not found"
    return path


async def run_tool(*argv: str) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process(list(argv), check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


BIG = 200_000  # bytes per streamed response: several writes, several HTTP/2 DATA frames


async def test_in_flight_requests_complete_and_new_connections_are_refused(
    tmp_path: Path,
) -> None:
    arrived = 0
    all_arrived = anyio.Event()
    release = anyio.Event()
    n = 20

    async def slow(request: Request[Incoming]) -> Response[Any]:
        nonlocal arrived
        arrived += 1
        if arrived == n:
            all_arrived.set()
        await release.wait()

        async def chunks() -> Any:
            for _ in range(BIG // 10_000):
                yield b"x" * 10_000
                await anyio.lowlevel.checkpoint()

        return Response(200, body=StreamBody(chunks()))

    stop = anyio.Event()
    served = anyio.Event()
    results: list[tuple[int, str, bytes]] = []

    async def run(*, task_status: Any) -> None:
        await serve(
            slow,
            port=0,
            handle_signals=False,
            shutdown_event=stop,
            shutdown_timeout=None,
            task_status=task_status,
        )
        served.set()

    with anyio.fail_after(30):
        async with (
            anyio.create_task_group() as tg,
            httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as h1,
        ):
            host, port = await tg.start(run)
            url = f"http://{host}:{port}/"
            # HTTP/2 through curl, its streams multiplexed on one connection:
            # httpx (httpcore) fails every open stream when a GOAWAY arrives,
            # even a graceful one that lets them finish, so it cannot show
            # in-flight streams completing.

            async def fetch_h1() -> None:
                r = await h1.get(url)
                results.append((r.status_code, r.http_version, r.content))

            async def fetch_h2(count: int) -> None:
                files = [tmp_path / f"body{i}" for i in range(count)]
                out = await run_tool(
                    tool("curl"),
                    "-sS",
                    "--http2-prior-knowledge",
                    "--parallel",
                    "--parallel-immediate",
                    "-w",
                    "%{http_code} %{http_version}\\n",
                    *[arg for f in files for arg in ("-o", str(f), url)],
                )
                for line, file in zip(out.splitlines(), files, strict=True):
                    status, version = line.split()
                    results.append((int(status), f"HTTP/{version}", file.read_bytes()))

            async with anyio.create_task_group() as clients:
                clients.start_soon(fetch_h2, n // 2)
                for _ in range(n // 2):
                    clients.start_soon(fetch_h1)
                await all_arrived.wait()
                stop.set()
                # New connections are refused while the old ones still run.
                for _ in range(200):
                    try:
                        probe = await anyio.connect_tcp(host, port)
                    except OSError:
                        break
                    await probe.aclose()
                    await anyio.sleep(0.01)
                else:
                    pytest.fail("the listener still accepts connections after shutdown")
                assert not served.is_set()
                release.set()
            await served.wait()
    assert len(results) == n
    assert {version for _, version, _ in results} == {"HTTP/1.1", "HTTP/2"}
    for status, _, content in results:
        assert status == 200
        assert content == b"x" * BIG


async def test_deadline_cancels_a_service_that_never_finishes() -> None:
    started = anyio.Event()
    cancelled = anyio.Event()

    async def forever(request: Request[Incoming]) -> Response[Full]:
        started.set()
        try:
            await anyio.sleep(math.inf)
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    stop = anyio.Event()
    errors: list[Exception] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            host, port = await tg.start(
                lambda *, task_status: serve(
                    forever,
                    port=0,
                    handle_signals=False,
                    shutdown_event=stop,
                    shutdown_timeout=0.3,
                    task_status=task_status,
                )
            )

            async def fetch() -> None:
                async with httpx.AsyncClient() as client:
                    try:
                        await client.get(f"http://{host}:{port}/")
                    except httpx.HTTPError as exc:
                        errors.append(exc)

            tg.start_soon(fetch)
            await started.wait()
            before = anyio.current_time()
            stop.set()
            await cancelled.wait()
            elapsed = anyio.current_time() - before
    assert 0.25 <= elapsed < 5
    assert len(errors) == 1  # the client saw the connection close, not a response


async def serve_pipe(
    graceful: GracefulShutdown, service: Any, results: list[object], *, task_status: Any
) -> None:
    server_io, client_io = memory_pipe()
    watched = graceful.watch(auto.Builder().serve_connection(server_io, service))
    task_status.started(client_io)
    results.append(await watched)
    results.append(watched.cancelled)


async def test_graceful_shutdown_api() -> None:
    graceful = GracefulShutdown()
    assert graceful.count() == 0
    assert await graceful.shutdown(timeout=1) is True  # nothing to wait for

    graceful = GracefulShutdown()
    release = anyio.Event()

    async def gated(request: Request[Incoming]) -> Response[Full]:
        await release.wait()
        return Response(200, body=Full(b"ok"))

    results: list[object] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            idle_client = await tg.start(serve_pipe, graceful, gated, results)
            busy_client = await tg.start(serve_pipe, graceful, gated, results)
            await busy_client.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await anyio.wait_all_tasks_blocked()
            assert graceful.count() == 2
            waiter = graceful.shutdown()
            assert graceful.shutting_down
            # The idle connection closes at once; the busy one finishes its response.
            with pytest.raises(anyio.EndOfStream):
                await idle_client.receive()
            await anyio.wait_all_tasks_blocked()
            assert graceful.count() == 1
            release.set()
            assert await waiter is True
            received = b""
            while True:
                try:
                    received += await busy_client.receive()
                except anyio.EndOfStream:
                    break
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.endswith(b"ok")
    assert results == [None, False, None, False]
    assert graceful.count() == 0


async def test_graceful_shutdown_deadline_with_fake_timer() -> None:
    timer = FakeTimer(autojump=True)
    async with timer:
        graceful = GracefulShutdown(timer=timer)

        async def never(request: Request[Incoming]) -> Response[Full]:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        results: list[object] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                client = await tg.start(serve_pipe, graceful, never, results)
                await client.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                await anyio.wait_all_tasks_blocked()
                start = timer.now()
                assert await graceful.shutdown(timeout=7) is False
                assert timer.now() - start == pytest.approx(7)
        assert results == [None, True]
        with pytest.raises(ValueError, match="not both"):
            graceful.shutdown(timeout=1, deadline=2)


async def test_watch_after_shutdown_signals_at_once() -> None:
    graceful = GracefulShutdown()
    graceful.shutdown()
    results: list[object] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            client = await tg.start(serve_pipe, graceful, None, results)
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
    assert results == [None, False]
    assert await graceful.wait() is True


class TaskOf:
    """The handle of the task that runs a watch, set once ``start_soon`` returns (as serve())."""

    handle: anyio.TaskHandle[None]

    def cancel(self) -> None:
        self.handle.cancel()


async def never_answers(request: Request[Incoming]) -> Response[Full]:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


@pytest.mark.parametrize("with_task", [True, False], ids=["task", "own-scope"])
async def test_deadline_closes_a_connection_run_inside_with(with_task: bool) -> None:
    timer = FakeTimer(autojump=True)
    after_with: list[bool] = []
    watches: list[Any] = []

    async def run_connection(server_io: Any, task: TaskOf | None) -> None:
        watched = graceful.watch(
            auto.Builder().serve_connection(server_io, never_answers), task=task
        )
        watches.append(watched)
        with watched as conn:
            await conn
        # Reached only when the watch's own scope swallowed the cancellation.
        after_with.append(watched.cancelled)

    async with timer:
        graceful = GracefulShutdown(timer=timer)
        server_io, client_io = memory_pipe()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                task = TaskOf() if with_task else None
                handle = tg.start_soon(run_connection, server_io, task)
                if task is not None:
                    task.handle = handle
                await client_io.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                await anyio.wait_all_tasks_blocked()
                assert graceful.count() == 1
                start = timer.now()
                assert await graceful.shutdown(timeout=7) is False
                assert timer.now() - start == pytest.approx(7)
                assert graceful.count() == 0
                # The connection closed its IO: the client sees the end, no response.
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await client_io.receive()
        assert watches[0].cancelled
        if with_task:
            assert handle.status is anyio.TaskHandle.Status.CANCELLED
            assert after_with == []
        else:
            assert handle.status is anyio.TaskHandle.Status.FINISHED
            assert after_with == [True]
        with pytest.raises(RuntimeError, match="only once"):
            watches[0].__enter__()
