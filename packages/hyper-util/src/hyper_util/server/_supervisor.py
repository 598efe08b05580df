"""Worker processes sharing one listening socket: ``run_workers`` and ``Supervisor``.

What belongs here: the supervisor process behind ``--workers N`` (and
``--reload``): it starts N worker processes on sockets it bound once,
replaces a worker that dies (with a back-off, so a crash loop does not
spin), replaces all of them on SIGHUP without refusing a connection, and on
SIGTERM or SIGINT stops them gracefully, killing what outlives the timeout.
The worker's side (its bootstrap, :func:`worker_ready`) is :mod:`._worker`;
binding is :mod:`._bind`; watching files for ``--reload`` is :mod:`._run`.

Strategy:

* **Spawn, not fork.** Each worker is a fresh interpreter
  (``multiprocessing``'s spawn context) that imports the application itself,
  as uvicorn and hypercorn do, rather than gunicorn's fork of a process that
  may already hold an event loop, threads (a forked threaded process can
  deadlock on a lock some other thread held), uvloop's or trio's global
  state, or a preloaded app's open connections. A spawned worker starts from
  nothing, so asyncio, uvloop and trio all run in it the same way, it works
  where fork is unsafe or missing (macOS, Python 3.14's default of
  forkserver), and SIGHUP picks up new code. It costs an interpreter start
  and an import of the app per worker: ~0.2 s, paid at start and restart,
  never per request. The sockets travel through multiprocessing's pickling,
  which duplicates the descriptors into the child at spawn (no helper
  thread).
* **One accept queue.** The supervisor binds before any worker exists and
  keeps its copy of the sockets open until shutdown, so a connection that
  arrives while a worker restarts waits in the kernel's queue for the next
  ``accept`` instead of being refused.
* **HTTP/3: one UDP socket per slot.** QUIC connections live in one
  process and are found by connection id, so workers cannot share one UDP
  socket (each would read the others' packets). ``worker_sockets`` gives
  each slot its own socket of a ``SO_REUSEPORT`` group (Linux hashes a
  client's addresses to one member); the supervisor holds them all, so the
  group never changes and a restarted worker's clients come back to its
  replacement. While a replacement and the worker it replaces both run
  (SIGHUP), they share that slot's socket and may read each other's
  packets: QUIC retransmits, and the old one's connections are ending.
* **No event loop in the supervisor.** It blocks in
  ``multiprocessing.connection.wait`` on each worker's exit sentinel and
  ready pipe and on a socket pair that signal handlers (through
  ``signal.set_wakeup_fd``) and :meth:`Supervisor.stop` /
  :meth:`Supervisor.reload` (from any thread) write to. Nothing polls.
* **SIGINT is the supervisor's.** Ctrl-C in a terminal reaches the whole
  process group; a worker would take it as its first shutdown request and
  the supervisor's SIGTERM as its second ("close everything now"). Workers
  therefore start with SIGINT blocked (the mask is inherited through
  spawn's fork and exec), and the supervisor turns its own SIGINT into one
  SIGTERM per worker. A worker also stops when the supervisor dies (a
  thread waits on multiprocessing's parent sentinel, then sends the worker
  SIGTERM), so a killed supervisor leaves no orphans serving.
* **Readiness.** A worker reports that it serves by calling
  :func:`worker_ready` (a one-byte message on its pipe). A worker that ends
  before that (or, once ready, fails within a second) counts as a failed
  start: its replacement waits 0.1 s, doubling to 10 s, and the count
  resets when a worker runs well. Exit code 3 (``EXIT_STARTUP_FAILED``,
  uvicorn's and gunicorn's "could not boot") stops the whole supervisor with
  that status, since every replacement would fail alike. A worker that never
  calls :func:`worker_ready` is taken as ready after ``startup_timeout``.
* **Replacing, new before old.** SIGHUP and a reload start a new worker per
  slot and retire the old one (SIGTERM) only when the new one is ready; a
  new worker that fails leaves the old one serving. One code path serves
  production reloads and ``--reload`` in development.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import pickle
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hyper_util.server._serve import DEFAULT_SHUTDOWN_TIMEOUT, SERVER_LOGGER
from hyper_util.server._worker import EXIT_STARTUP_FAILED, WorkerTarget, worker_main

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "EXIT_STARTUP_FAILED",
    "Supervisor",
    "WorkerTarget",
]

#: Seconds a worker gets after SIGTERM before SIGKILL: serve()'s graceful
#: shutdown timeout plus 5 s for the app's own shutdown (lifespan).
DEFAULT_STOP_TIMEOUT: Final = DEFAULT_SHUTDOWN_TIMEOUT + 5.0
#: Seconds a new worker has to call worker_ready() before it is taken as
#: ready anyway (an app's startup may open database pools, warm caches).
DEFAULT_STARTUP_TIMEOUT: Final = 60.0
#: Restart delay after a failed start: the first, and the most it doubles to.
RESTART_DELAY_FIRST: Final = 0.1
RESTART_DELAY_MAX: Final = 10.0
#: A ready worker that fails sooner than this after starting counts as a
#: failed start (it crashes on its first requests, say), so it backs off too.
HEALTHY_UPTIME: Final = 1.0


_log = logging.getLogger(SERVER_LOGGER)
_SPAWN = multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    # Around spawning: the child inherits the mask through fork and exec, so
    # it is immune from its first instruction, before _worker_main runs.
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.context.SpawnProcess
    pid: int
    sentinel: int
    ready_pipe: multiprocessing.connection.Connection | None
    started: float
    ready: bool = False
    kill_at: float | None = None  # set once it was asked to stop

    def close_pipe(self) -> None:
        if self.ready_pipe is not None:
            self.ready_pipe.close()
            self.ready_pipe = None


@dataclass(eq=False)
class _Slot:
    own: list[socket.socket] = field(default_factory=list)  # this slot's alone (UDP)
    current: _Worker | None = None
    pending: _Worker | None = None  # a replacement that is not ready yet
    failures: int = 0
    restart_at: float | None = None  # None: not scheduled (or waiting for a reload)


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(eq=False)
class _Commands:
    """Requests for the supervisor's loop, from signal handlers and other threads."""

    queue: deque[str] = field(default_factory=deque)
    reader: socket.socket = field(init=False)
    writer: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def put(self, command: str) -> None:
        self.queue.append(command)
        with contextlib.suppress(OSError):  # full (already woken) or closed
            self.writer.send(b"\0")

    def drain(self) -> list[str]:
        with contextlib.suppress(OSError):
            while self.reader.recv(4096):
                pass
        commands = list(self.queue)
        self.queue.clear()
        return commands

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


_SIGNAL_COMMANDS: Final = {
    "SIGINT": "stop",
    "SIGTERM": "stop",
    "SIGHUP": "reload",
    "SIGTTIN": "more",
    "SIGTTOU": "fewer",
}


class Supervisor:
    """Runs ``workers`` processes of ``target`` on shared ``sockets`` and keeps them running.

    :func:`run_workers` is the usual way in; use the class to call
    :meth:`stop` or :meth:`reload` from another thread.

    Signals, when ``handle_signals`` (main thread only): SIGTERM and SIGINT
    stop gracefully (a second one sends each worker a second SIGTERM, which
    :func:`~hyper_util.server.serve` takes as "close every connection now");
    SIGHUP replaces every worker, new ones first; SIGTTIN and SIGTTOU add and
    remove a worker.

    Args:
        target: What each worker runs (see :data:`WorkerTarget`); it should
            call :func:`worker_ready` once it serves.
        sockets: Bound, listening sockets (see :func:`bind_sockets`). The
            supervisor closes its copies when the shutdown begins.
        workers: How many worker processes.
        worker_sockets: One more socket per worker slot, given to that
            slot's worker only, after ``sockets`` (HTTP/3's UDP sockets
            from :func:`bind_udp_sockets`). A worker that replaces another
            gets the same one. Slots beyond them (SIGTTIN) get none; a
            slot removed by SIGTTOU leaves its socket unread until a
            later SIGTTIN takes it again. Closed with ``sockets``.
        stop_timeout: Seconds a worker gets after SIGTERM before SIGKILL
            (``None``: no limit). Give it more than the worker's own graceful
            shutdown timeout.
        startup_timeout: Seconds a new worker gets to call
            :func:`worker_ready` before it is taken as ready anyway.
        wait_for_changes: Development mode (``--reload``): a worker that
            fails to start is not restarted until :meth:`reload` is called,
            and exit code 3 does not stop the supervisor.
        handle_signals: Install the signal handlers above.

    Raises:
        ValueError: ``workers`` or a timeout is out of range.
        TypeError: ``target`` cannot be pickled.
    """

    def __init__(
        self,
        target: WorkerTarget,
        sockets: Sequence[socket.socket],
        *,
        workers: int = 1,
        stop_timeout: float | None = DEFAULT_STOP_TIMEOUT,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        wait_for_changes: bool = False,
        handle_signals: bool = True,
        worker_sockets: Sequence[socket.socket] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if stop_timeout is not None and stop_timeout < 0:
            raise ValueError("stop_timeout cannot be negative")
        if startup_timeout <= 0:
            raise ValueError("startup_timeout must be positive")
        try:
            pickle.dumps(target)
        except Exception as exc:
            raise TypeError(
                "the worker target must be picklable (a module-level function, or a "
                f"functools.partial of one): {exc}"
            ) from exc
        self._target = target
        self._sockets = list(sockets)
        self._worker_sockets = list(worker_sockets)
        self._spare = list(self._worker_sockets)  # not held by a slot now
        self._slots = [self._new_slot() for _ in range(workers)]
        self._retiring: list[_Worker] = []
        self._stop_timeout = stop_timeout
        self._startup_timeout = startup_timeout
        self._wait_for_changes = wait_for_changes
        self._handle_signals = handle_signals
        self._commands = _Commands()
        self._stopping = False
        self._status = 0

    def stop(self) -> None:
        """Stop gracefully, as SIGTERM does; safe to call from any thread."""
        self._commands.put("stop")

    def reload(self) -> None:
        """Replace every worker, new ones first, as SIGHUP does; safe from any thread."""
        self._commands.put("reload")

    def run(self) -> int:
        """Start the workers and supervise them until stopped.

        Returns:
            The exit status: 0 after a requested stop, ``EXIT_STARTUP_FAILED``
            if a worker exited with it (and ``wait_for_changes`` is off).
        """
        previous = self._install_signals()
        try:
            _log.info("supervisor %d: starting %d worker(s)", os.getpid(), len(self._slots))
            for slot in self._slots:
                self._start(slot)
            while not self._stopping or self._workers():
                self._step()
            _log.info("supervisor %d: every worker stopped", os.getpid())
            return self._status
        finally:
            for worker in self._workers():  # only after an error: kill, reap
                self._signal(worker, signal.SIGKILL)
                worker.process.join()
                worker.process.close()
                worker.close_pipe()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._commands.close()
            self._close_sockets()

    # --- the loop ---------------------------------------------------------

    def _workers(self) -> list[_Worker]:
        found = [w for s in self._slots for w in (s.current, s.pending) if w is not None]
        return found + self._retiring

    def _step(self) -> None:
        workers = self._workers()
        waitables: list[Any] = [self._commands.reader]
        waitables += [w.sentinel for w in workers]
        waitables += [w.ready_pipe for w in workers if w.ready_pipe is not None]
        timeout = self._next_deadline(workers)
        if timeout is not None:
            timeout = max(0.0, timeout - time.monotonic())
        fired = set(multiprocessing.connection.wait(waitables, timeout))
        for command in self._commands.drain():
            self._run(command)
        # Ready messages before exits: a worker may report and die in one wait.
        for worker in workers:
            if worker.ready_pipe is not None and worker.ready_pipe in fired:
                self._read_ready(worker)
        for worker in workers:
            if worker.sentinel in fired:
                self._reap(worker)
        self._on_deadlines(time.monotonic())

    def _next_deadline(self, workers: list[_Worker]) -> float | None:
        deadlines = [s.restart_at for s in self._slots if s.restart_at is not None]
        deadlines += [w.kill_at for w in workers if w.kill_at is not None]
        # Only workers in a slot wait to be ready; retiring ones only to exit.
        starting = [w for s in self._slots for w in (s.current, s.pending) if w is not None]
        deadlines += [w.started + self._startup_timeout for w in starting if not w.ready]
        return min(deadlines, default=None)

    def _on_deadlines(self, now: float) -> None:
        for worker in self._retiring:
            if worker.kill_at is not None and now >= worker.kill_at:
                _log.warning(
                    "worker %d did not stop within %.0f s; killing it",
                    worker.pid,
                    self._stop_timeout,
                )
                worker.kill_at = None
                self._signal(worker, signal.SIGKILL)
        for slot in self._slots:
            if slot.restart_at is not None and now >= slot.restart_at:
                slot.restart_at = None
                self._start(slot)
            for starting in (slot.current, slot.pending):
                if starting is None or starting.ready:
                    continue
                if now < starting.started + self._startup_timeout:
                    continue
                _log.warning(
                    "worker %d did not call worker_ready() within %.0f s; taking it as ready",
                    starting.pid,
                    self._startup_timeout,
                )
                self._mark_ready(starting)

    def _run(self, command: str) -> None:
        if command == "stop":
            self._begin_stop()
        elif self._stopping:
            return
        elif command == "reload":
            self._begin_reload()
        elif command == "more":
            _log.info("one more worker (now %d)", len(self._slots) + 1)
            self._slots.append(self._new_slot())
            self._start(self._slots[-1])
        elif command == "fewer" and len(self._slots) > 1:
            slot = self._slots.pop()
            self._spare[:0] = slot.own
            _log.info("one worker fewer (now %d)", len(self._slots))
            for worker in (slot.pending, slot.current):
                if worker is not None:
                    self._retire(worker)

    # --- workers ----------------------------------------------------------

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        if self._spare:
            slot.own.append(self._spare.pop(0))
        return slot

    def _start(self, slot: _Slot, *, replacing: bool = False) -> None:
        try:
            worker = self._spawn(slot)
        except OSError as exc:  # out of processes or memory: try again later
            if replacing:  # the current worker keeps serving
                _log.error("cannot start a replacement worker: %s", exc)
                return
            slot.failures += 1
            delay = self._restart_delay(slot)
            _log.error("cannot start a worker: %s; trying again in %.1f s", exc, delay)
            slot.restart_at = time.monotonic() + delay
            return
        if replacing:
            slot.pending = worker
        else:
            slot.current = worker

    def _spawn(self, slot: _Slot) -> _Worker:
        reader, writer = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=worker_main,
            args=(self._target, self._sockets + slot.own, writer),
            name="hyper-util-worker",
        )
        try:
            with _sigint_blocked():
                process.start()
        except BaseException:
            reader.close()
            raise
        finally:
            writer.close()  # the child has its own copy; EOF when it ends
        assert process.pid is not None
        _log.info("worker %d started", process.pid)
        return _Worker(process, process.pid, process.sentinel, reader, time.monotonic())

    def _read_ready(self, worker: _Worker) -> None:
        assert worker.ready_pipe is not None
        try:
            worker.ready_pipe.recv_bytes()
        except (EOFError, OSError):  # it closed the pipe without a word
            worker.close_pipe()
            return
        worker.close_pipe()
        self._mark_ready(worker)

    def _mark_ready(self, worker: _Worker) -> None:
        worker.ready = True
        for slot in self._slots:
            if slot.pending is worker:
                old, slot.current, slot.pending = slot.current, worker, None
                if old is not None:
                    _log.info("worker %d ready; retiring worker %d", worker.pid, old.pid)
                    self._retire(old)
                return

    def _retire(self, worker: _Worker) -> None:
        """Ask a worker to stop (SIGTERM); it leaves its slot."""
        self._signal(worker, signal.SIGTERM)
        if self._stop_timeout is not None:
            worker.kill_at = time.monotonic() + self._stop_timeout
        self._retiring.append(worker)

    @staticmethod
    def _signal(worker: _Worker, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signum)

    def _reap(self, worker: _Worker) -> None:
        worker.process.join()
        code = worker.process.exitcode
        worker.process.close()  # its sentinel and pipes: a long run restarts many
        worker.close_pipe()
        how = _describe_exit(code)
        if worker in self._retiring:
            self._retiring.remove(worker)
            level = logging.INFO if code == 0 else logging.WARNING
            _log.log(level, "worker %d stopped: it %s", worker.pid, how)
            return
        slot = next((s for s in self._slots if worker in (s.current, s.pending)), None)
        if slot is None:  # pragma: no cover - every worker is in a slot or retiring
            return
        if slot.pending is worker:
            slot.pending = None
            current = slot.current.pid if slot.current is not None else None
            _log.error(
                "new worker %d %s before it was ready; worker %s keeps serving",
                worker.pid,
                how,
                current,
            )
            return
        slot.current = None
        if slot.pending is not None:
            slot.current, slot.pending = slot.pending, None
            _log.error("worker %d %s; its replacement takes over", worker.pid, how)
            return
        lived = time.monotonic() - worker.started
        if code == EXIT_STARTUP_FAILED and not self._wait_for_changes:
            _log.error("worker %d could not start (it %s); stopping", worker.pid, how)
            self._status = EXIT_STARTUP_FAILED
            self._begin_stop()
            return
        if worker.ready and (code == 0 or lived >= HEALTHY_UPTIME):
            slot.failures = 0
            level = logging.INFO if code == 0 else logging.ERROR
            _log.log(level, "worker %d %s; starting a new one", worker.pid, how)
            self._start(slot)
            return
        slot.failures += 1
        when = "before it was ready" if not worker.ready else f"{lived:.1f} s after it started"
        if self._wait_for_changes:
            _log.error("worker %d %s %s; waiting for a change", worker.pid, how, when)
            return
        delay = self._restart_delay(slot)
        slot.restart_at = time.monotonic() + delay
        _log.error("worker %d %s %s; restarting in %.1f s", worker.pid, how, when, delay)

    @staticmethod
    def _restart_delay(slot: _Slot) -> float:
        return min(RESTART_DELAY_FIRST * 2.0 ** (slot.failures - 1), RESTART_DELAY_MAX)

    # --- stop and reload --------------------------------------------------

    def _begin_stop(self) -> None:
        if self._stopping:
            _log.warning("second stop request: workers close their connections now")
            for worker in self._retiring:
                self._signal(worker, signal.SIGTERM)
            return
        self._stopping = True
        _log.info("stopping %d worker(s)", len(self._workers()))
        # New connections are refused once the workers close their copies too.
        self._close_sockets()
        slots, self._slots = self._slots, []
        for slot in slots:
            for running in (slot.pending, slot.current):
                if running is not None:
                    self._retire(running)

    def _begin_reload(self) -> None:
        _log.info("replacing %d worker(s)", len(self._slots))
        for slot in self._slots:
            slot.failures = 0
            slot.restart_at = None
            if slot.pending is not None:  # superseded by this newer reload
                self._retire(slot.pending)
                slot.pending = None
            self._start(slot, replacing=slot.current is not None)

    def _close_sockets(self) -> None:
        for sock in self._sockets + self._worker_sockets:
            sock.close()

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return previous
        for name, command in _SIGNAL_COMMANDS.items():
            signum = getattr(signal, name, None)
            if signum is None:  # pragma: no cover - Windows
                continue

            def handler(signum: int, frame: object, command: str = command) -> None:
                # A write to the command socket also ends the wait() this
                # interrupted (PEP 475 retries it, and it is now readable).
                self._commands.put(command)

            previous[signum] = signal.signal(signum, handler)
        return previous
