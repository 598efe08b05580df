"""Memory per idle keep-alive connection, and many idle connections held by one server.

What belongs here: opening ``--connections`` keep-alive connections to a
server, each after one request and its answer (so each has been through a
whole exchange and now waits for the next request), and reading what they
cost the server in resident memory. The servers are ``run.py``'s;
processes come from ``_harness.py``.

Strategy:

* The server is started fresh (pinned, its open-file limit raised for the
  run, never the library's job), probed, and warmed with ``--warm``
  connections opened and closed, so that the figure leaves out one-time
  costs (imports, first-use caches, the allocator's first arenas). Its RSS
  (``VmRSS``, every process of its group) is read, the connections are
  opened, and after ``--settle`` seconds the RSS is read again: the
  difference over the count is KiB per idle connection.
* The client is this process with plain blocking sockets, one connection
  after another (connect, one GET, read the answer whole, keep the socket).
  Each connection binds a source address in 127.0.0.2 and up, a new one
  every ``PER_SOURCE_ADDRESS`` connections, so that 50,000 connections never
  run out of ephemeral ports (about 28,000 per source address); each batch
  takes addresses no earlier batch used (closed ports linger in TIME_WAIT).
* At the end every socket is checked: none may have been closed by the
  server (a readable socket with no request outstanding means EOF), and a
  sample gets a second request answered, proving the connections are alive.
* hyper runs with ``--max-connections`` above the count (``serve()``
  defaults to 1,000) and a header read timeout of ``--idle-timeout``
  seconds (hyper's 30 s default would close idle connections during a long
  run); the peers keep their defaults, which hold idle connections longer
  than a run takes.

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/memory.py
[--connections 2000] [--only hyper,uvicorn-httptools] [--loops asyncio]``;
the 50,000-connection check: ``... memory.py --only hyper --loops uvloop
--connections 50000``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import multiprocessing
import os
import select
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from _harness import (
    HOST,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    BenchError,
    banner,
    fail,
    free_port,
    log_tail,
    missing_module,
    pinned,
    raise_nofile,
    rss_kib,
    server_log,
    start_server,
    stop,
    stop_on_sigterm,
    wait_until_accepting,
)
from run import SERVERS, Server

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
ANSWER_END = b"Hello, World!"
# Connections per source address: under the ~28,000 ephemeral ports of one.
PER_SOURCE_ADDRESS = 20_000
# Connections that get a second request at the end, to prove they are alive.
SAMPLE = 50
# Seconds for one connection's connect and answer.
CONNECT_TIMEOUT = 10.0
# Issue 13's target for hyper, KiB per idle keep-alive connection.
TARGET_KIB = 10.0


@dataclass
class Result:
    server: str
    loop: str
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    connections: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    closed_by_server: int = 0
    seconds_to_open: float = 0.0

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(1, self.connections)


def group_rss_kib(pgid: int) -> int:
    """Resident memory of every live process in a process group, KiB."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            if int(stat[stat.rindex(b")") + 2 :].split()[2]) == pgid:
                total += rss_kib(int(entry.name))
        except (OSError, BenchError):  # exited meanwhile
            continue
    return total


def exchange(sock: socket.socket) -> None:
    """One request on ``sock`` and its whole answer (the hello-world body ends it)."""
    sock.sendall(REQUEST)
    data = b""
    while not data.endswith(ANSWER_END):
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"the server closed a connection mid-answer after {data[:80]!r}")
        data += chunk


# Source addresses used so far in this run: each batch of connections takes
# fresh ones, because the ports of closed connections stay in TIME_WAIT for
# a minute and the next server's batch would run out of them.
_addresses_used = [0]


def source_address(index: int) -> str:
    return str(ipaddress.IPv4Address("127.0.0.2") + index // PER_SOURCE_ADDRESS)


def fresh_addresses(count: int) -> int:
    """The index of the first connection of a batch of ``count`` on unused addresses."""
    first = _addresses_used[0] * PER_SOURCE_ADDRESS
    _addresses_used[0] += -(-count // PER_SOURCE_ADDRESS)
    return first


@contextlib.contextmanager
def open_connections(port: int, count: int, first: int = 0) -> Iterator[list[socket.socket]]:
    """``count`` connections, each after one exchange; all closed on exit.

    ``first`` numbers the first one, which picks its source address.
    """
    sockets: list[socket.socket] = []
    try:
        for index in range(first, first + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.settimeout(CONNECT_TIMEOUT)
            sock.bind((source_address(index), 0))
            sock.connect((HOST, port))
            exchange(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_count(sockets: Sequence[socket.socket]) -> int:
    """How many of ``sockets`` the server closed (readable with nothing asked: EOF)."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLIN)
    return len(poller.poll(0))


def client_worker(port: int, first: int, count: int, pipe: Connection) -> None:
    """One client process: open its share, report, check on request, close on request."""
    try:
        raise_nofile(count + 256)
        with open_connections(port, count, first) as sockets:
            pipe.send(("open", 0))
            pipe.recv()  # "check"
            closed = closed_count(sockets)
            for sock in sockets[:: max(1, len(sockets) // SAMPLE)]:
                exchange(sock)
            pipe.send(("checked", closed))
            pipe.recv()  # "close"
    except (BenchError, OSError) as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


class Clients:
    """``count`` idle connections held by as many client processes as the file limit needs."""

    def __init__(self, port: int, count: int, per_process: int, base: int) -> None:
        self.workers: list[tuple[BaseProcess, Connection]] = []
        context = multiprocessing.get_context("fork")
        for first in range(0, count, per_process):
            mine, theirs = context.Pipe()
            share = min(per_process, count - first)
            worker_args = (port, base + first, share, theirs)
            process = context.Process(target=client_worker, args=worker_args)
            process.start()
            self.workers.append((process, mine))

    def _gather(self, expected: str, timeout: float) -> list[int]:
        replies = []
        for _, pipe in self.workers:
            if not pipe.poll(timeout):
                raise BenchError(f"a client process did not answer within {timeout:.0f} s")
            kind, value = pipe.recv()
            if kind == "error":
                raise BenchError(str(value))
            assert kind == expected, kind
            replies.append(int(value))
        return replies

    def wait_open(self, timeout: float) -> None:
        self._gather("open", timeout)

    def check(self, timeout: float) -> int:
        """Ask every process to check its connections; return how many the server closed."""
        for _, pipe in self.workers:
            pipe.send("check")
        return sum(self._gather("checked", timeout))

    def close(self) -> None:
        for process, pipe in self.workers:
            with contextlib.suppress(OSError):
                pipe.send("close")
            process.join(STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join(STOP_TIMEOUT)


def idle_options(name: str, connections: int, idle_timeout: float) -> list[str]:
    """Options that let each server hold ``connections`` idle connections for the whole run.

    Only caps and idle timeouts move (uvicorn and hypercorn close a
    keep-alive connection idle for 5 s, granian accepts no more than its
    backlog at once); nothing that changes what a connection holds.
    """
    seconds = str(int(idle_timeout or 600))
    if name == "hyper":
        return [
            "--max-connections", str(connections), "--header-read-timeout", str(idle_timeout),
        ]  # fmt: skip
    if name.startswith("uvicorn"):
        return ["--timeout-keep-alive", seconds]
    if name == "granian":
        return ["--backpressure", str(connections), "--backlog", str(max(1024, connections))]
    if name == "hypercorn":
        return ["--keep-alive-timeout", seconds]
    return []


def measure(server: Server, loop: str, args: argparse.Namespace) -> Result:
    result = Result(server.name, loop, connections=args.connections)
    missing = missing_module(server.requires) or (
        missing_module(("uvloop",)) if loop == "uvloop" else None
    )
    if missing is not None:
        result.status = "skipped"
        result.notes.append(f"{missing} is not installed")
        return result
    port = free_port()
    command = server.command(port, loop)
    command += idle_options(server.name, args.connections + args.warm + 100, args.idle_timeout)
    with server_log(f"{server.name}-{loop}") as log:
        proc = start_server(
            [*pinned(args.server_cpu), *command], log, nofile=args.connections + 4096
        )
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            with open_connections(port, args.warm, fresh_addresses(args.warm)):
                pass
            time.sleep(args.settle)
            result.rss_before_kib = group_rss_kib(proc.pid)
            started = time.monotonic()
            clients = Clients(
                port, args.connections, args.per_process, fresh_addresses(args.connections)
            )
            try:
                # Roughly 1 ms per connection on a loaded machine, with a wide margin.
                clients.wait_open(60 + args.connections / 100)
                result.seconds_to_open = time.monotonic() - started
                time.sleep(args.settle)
                result.rss_after_kib = group_rss_kib(proc.pid)
                result.closed_by_server = clients.check(60)
            finally:
                clients.close()
        except (BenchError, OSError) as exc:
            result.status = "failed"
            result.notes.append(f"{type(exc).__name__}: {exc}")
        finally:
            stop(proc)
        lines, tail = log_tail(log.name)
    if result.closed_by_server:
        result.status = "errors"
        result.notes.append(f"{result.closed_by_server} connections closed by the server")
    if lines and result.status == "failed":
        result.notes.append("server log:\n    " + tail.replace("\n", "\n    "))
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="Server memory per idle keep-alive connection (RSS delta / N).",
        epilog="servers: " + ", ".join(names),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=2000, help="idle connections opened")
    parser.add_argument("--warm", type=int, default=200, help="connections opened and closed first")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before reading RSS")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        help="hyper's header read timeout (0: off, and no watchdog task per connection)",
    )
    parser.add_argument(
        "--per-process",
        type=int,
        default=0,
        help="connections per client process (0: as many as the open-file limit allows)",
    )
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--loops", default="asyncio,uvloop,trio", help="comma-separated")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or names
    if unknown := sorted(set(wanted) - set(names)):
        parser.error(f"unknown server(s) {', '.join(unknown)}")
    args.servers = [s for s in SERVERS if s.name in wanted]
    args.loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    if args.connections < 1 or args.warm < 0:
        parser.error("--connections must be >= 1, --warm >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    # The client side splits across processes when one may not open them all;
    # the server must hold every connection in its one process.
    limit = raise_nofile(args.connections + args.warm + 1024)
    if not args.per_process:
        args.per_process = max(1, limit - args.warm - 512)
    if limit < args.connections + 64:
        fail(
            f"one process may open {limit} files here (hard RLIMIT_NOFILE, and raising it needs "
            f"CAP_SYS_RESOURCE): a server cannot hold {args.connections} connections; "
            f"try --connections {limit - 1000}"
        )
    print(banner())
    print(
        f"{args.connections} idle keep-alive connections after one request each "
        f"(RSS read {args.settle} s after; {args.warm} connections opened and closed first)"
    )
    results = []
    for server in args.servers:
        for loop in (x for x in args.loops if x in server.loops):
            print(f"{server.name} on {loop} ...", flush=True)
            result = measure(server, loop, args)
            results.append(result)
            if result.status in ("ok", "errors"):
                print(
                    f"    {result.kib_per_connection:.1f} KiB per connection, opened in "
                    f"{result.seconds_to_open:.1f} s",
                    flush=True,
                )
            else:
                print(f"    {result.status}: {'; '.join(result.notes)}", flush=True)
    header = (
        f"\n{'server':<18} {'loop':<8} {'conns':>7} {'RSS before':>11} {'RSS after':>10} "
        f"{'KiB/conn':>9} {'closed':>6}  note"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.status not in ("ok", "errors"):
            print(f"{r.server:<18} {r.loop:<8} {r.status.upper():>7}  {'; '.join(r.notes)}")
            continue
        target = ""
        if r.server == "hyper":
            met = "met" if r.kib_per_connection <= TARGET_KIB else "NOT met"
            target = f"target <= {TARGET_KIB:g} KiB: {met}"
        print(
            f"{r.server:<18} {r.loop:<8} {r.connections:>7} {r.rss_before_kib / 1024:>8.1f} MiB "
            f"{r.rss_after_kib / 1024:>6.1f} MiB {r.kib_per_connection:>9.1f} "
            f"{r.closed_by_server:>6}  {'; '.join([target, *r.notes]).strip('; ')}"
        )
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
