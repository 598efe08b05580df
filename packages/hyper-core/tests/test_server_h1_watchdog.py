"""The HTTP/1 timeout watchdog shared by a server's connections (``http1.share_watchdog``).

What belongs here: that connections started inside ``share_watchdog`` get
the same ``header_read_timeout`` and ``send_stall_timeout`` behaviour as a
connection with a watchdog of its own (each closed on its own schedule,
none earlier than its timeout, none later than a quarter past it, a busy
one never), that the shared task ends by itself once no connection is
watched (the host task group exits without being cancelled) unless it
lingers (then one task serves connections that come one at a time), and
that a host task group which is over makes connections fall back to a
watchdog of their own. The timeouts' finer rules are in ``test_server_h1_ported.py``
and ``test_server_send_limits.py``.

Strategy: in-memory pipes and a ``FakeTimer`` (autojump), so a 5 s timeout
takes no wall time; every wait is bounded.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from hyper_core.body import Full, Incoming
from hyper_core.error import HeaderTimeoutError
from hyper_core.error import TimeoutError as HyperTimeoutError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_core.testing import FakeTimer, memory_pipe

pytestmark = pytest.mark.anyio

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
WAIT = 10.0  # wall-clock seconds: a hang fails instead of sticking


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, body=Full(b"Hello, World!"))


async def read_answer(client: anyio.abc.ByteStream) -> bytes:
    data = b""
    while not data.endswith(b"Hello, World!"):
        data += await client.receive()
    return data


class Outcome:
    """How one connection ended, and when on the fake clock."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.ended_at: float | None = None
        self.ended = anyio.Event()


async def run_conn(conn: http1.Connection, outcome: Outcome, timer: FakeTimer) -> None:
    try:
        await conn
    except Exception as exc:
        outcome.error = exc
    outcome.ended_at = timer.now()
    outcome.ended.set()


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "own"])
async def test_each_connection_times_out_on_its_own_schedule(shared: bool) -> None:
    async with FakeTimer(autojump=True) as timer:
        builder = http1.Builder(header_read_timeout=5, timer=timer)
        idle, busy, silent = Outcome(), Outcome(), Outcome()
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as host:
                pipes = [memory_pipe() for _ in range(3)]
                conns = [builder.serve_connection(server, hello) for server, _ in pipes]
                if shared:
                    with http1.share_watchdog(host):
                        for conn, outcome in zip(conns, (idle, busy, silent), strict=True):
                            host.start_soon(run_conn, conn, outcome, timer)
                else:
                    for conn, outcome in zip(conns, (idle, busy, silent), strict=True):
                        host.start_soon(run_conn, conn, outcome, timer)
                idle_client, busy_client = pipes[0][1], pipes[1][1]
                await idle_client.send(GET)
                await read_answer(idle_client)
                idle_since = timer.now()
                # A request every 3 s: each within the timeout, never idle for 5 s.
                for _ in range(5):
                    await busy_client.send(GET)
                    await read_answer(busy_client)
                    await timer.sleep(3)
                assert busy.ended_at is None
                await busy_client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                await read_answer(busy_client)
            # The host exits by itself: no watchdog task outlives the connections.
        assert isinstance(silent.error, HeaderTimeoutError)
        assert silent.ended_at is not None
        assert 5 <= silent.ended_at <= 5 * 1.25
        assert isinstance(idle.error, HeaderTimeoutError)
        assert idle.ended_at is not None
        assert 5 <= idle.ended_at - idle_since <= 5 * 1.25
        assert busy.error is None
        assert busy.ended_at is not None
        assert busy.ended_at >= 15


async def test_send_stall_timeout_under_a_shared_watchdog() -> None:
    # A client that never reads a 1 MiB answer: the write stalls, the
    # connection closes once it has waited send_stall_timeout.
    async def big(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"x" * (1 << 20)))

    async with FakeTimer(autojump=True) as timer:
        builder = http1.Builder(send_stall_timeout=8, timer=timer)
        outcome = Outcome()
        server, client = memory_pipe()
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as host:
                with http1.share_watchdog(host):
                    host.start_soon(run_conn, builder.serve_connection(server, big), outcome, timer)
                await client.send(GET)
        assert isinstance(outcome.error, HyperTimeoutError)
        assert outcome.ended_at is not None
        assert 8 <= outcome.ended_at <= 8 * 1.25 + 1


async def test_a_host_that_is_over_leaves_each_connection_its_own_watchdog() -> None:
    async with FakeTimer(autojump=True) as timer:
        builder = http1.Builder(header_read_timeout=5, timer=timer)
        async with anyio.create_task_group() as gone:
            pass
        outcome = Outcome()
        server, _client = memory_pipe()
        with anyio.fail_after(WAIT), http1.share_watchdog(gone):
            await run_conn(builder.serve_connection(server, hello), outcome, timer)
        assert isinstance(outcome.error, HeaderTimeoutError)
        assert outcome.ended_at is not None
        assert 5 <= outcome.ended_at <= 5 * 1.25


def watchdog_tasks() -> list[int]:
    return [t.id for t in anyio.get_running_tasks() if t.name == WATCHDOG_TASK]


WATCHDOG_TASK = "hyper_core HTTP/1 timeout watchdog"


async def test_a_lingering_watchdog_serves_connections_that_come_one_at_a_time() -> None:
    async with FakeTimer(autojump=True) as timer:
        builder = http1.Builder(header_read_timeout=5, timer=timer)
        first, second = Outcome(), Outcome()
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as host:
                with http1.share_watchdog(host, linger=True):
                    server, client = memory_pipe()
                    host.start_soon(run_conn, builder.serve_connection(server, hello), first, timer)
                    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    await read_answer(client)
                    await first.ended.wait()
                    # Nothing is watched now, and the task is still there.
                    lingering = watchdog_tasks()
                    assert len(lingering) == 1
                    started = timer.now()
                    silent, _client = memory_pipe()
                    conn = builder.serve_connection(silent, hello)
                    host.start_soon(run_conn, conn, second, timer)
                    await second.ended.wait()
                    assert watchdog_tasks() == lingering  # no second task was started
                host.cancel_scope.cancel()  # what ends a lingering watchdog
        assert first.error is None
        assert isinstance(second.error, HeaderTimeoutError)
        assert second.ended_at is not None
        assert 5 <= second.ended_at - started <= 5 * 1.25


async def test_connections_that_ended_do_not_wake_the_watchdog() -> None:
    # Short connections, one after another: each was watched, and ended
    # long before its next look. The watchdog wakes for live connections
    # only; once a wait per ended connection (each woken by its deadline
    # firing, the costliest way a wait ends) made a server that takes new
    # connections pay for them twice.
    timer = FakeTimer()
    builder = http1.Builder(header_read_timeout=4, timer=timer)  # a look each second
    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as host:
            with http1.share_watchdog(host, linger=True):
                for _ in range(10):
                    outcome = Outcome()
                    server, client = memory_pipe()
                    conn = builder.serve_connection(server, hello)
                    host.start_soon(run_conn, conn, outcome, timer)
                    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    await read_answer(client)
                    await outcome.ended.wait()
                    assert outcome.error is None
                    timer.advance(0.05)
                    await anyio.wait_all_tasks_blocked()
                before = timer.deadlines_made
                for _ in range(100):  # 10 s: past every look those connections had
                    timer.advance(0.1)
                    await anyio.wait_all_tasks_blocked()
                assert timer.deadlines_made - before <= 2
            host.cancel_scope.cancel()
