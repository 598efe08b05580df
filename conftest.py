"""Shared pytest configuration: every async test runs on asyncio, trio and uvloop."""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Any

import pytest

#: The anyio backend parameter for asyncio on uvloop's event loop.
UVLOOP: tuple[str, dict[str, Any]] = ("asyncio", {"use_uvloop": True})


#: asyncio's debug mode (never-awaited coroutines, calls from other threads,
#: slow callbacks) in the full ``tests`` session; the asyncio-only quick
#: passes of nox, which repeat the suite on other builds, dependencies and
#: interpreters, turn it off (``HYPER_ASYNCIO_DEBUG=0``): it slows asyncio
#: several times over.
ASYNCIO_DEBUG = os.environ.get("HYPER_ASYNCIO_DEBUG", "1") != "0"

BACKENDS = [
    pytest.param(("asyncio", {"debug": ASYNCIO_DEBUG}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
    # uvloop replaces asyncio's loop, transports and DNS: hyper-util's
    # fast path must work on it too (hyper-util's ``uvloop`` extra).
    *([] if sys.platform == "win32" else [pytest.param(UVLOOP, id="uvloop")]),
]


def _selected_backends() -> list[Any]:
    """All backends, or those named in ``HYPER_TEST_BACKENDS`` (the quick passes in nox)."""
    wanted = os.environ.get("HYPER_TEST_BACKENDS")
    if not wanted:
        return BACKENDS
    names = {name.strip() for name in wanted.split(",")}
    unknown = names - {param.id for param in BACKENDS}
    if unknown:
        raise pytest.UsageError(f"HYPER_TEST_BACKENDS names unknown backends: {sorted(unknown)}")
    return [param for param in BACKENDS if param.id in names]


@pytest.fixture(params=_selected_backends())
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every backend, explicitly: a missing trio or uvloop fails instead of skipping."""
    return request.param  # type: ignore[no-any-return]


#: How long the threads that tests started may take to finish after the run.
THREAD_GRACE = 15.0

_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the run's status for the exit below."""
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Fail, with stacks, instead of hanging at exit on a thread a test left running.

    A worker thread stuck in a peer client (an ``anyio.to_thread`` call that
    never returns) is not a daemon, so the interpreter would wait for it
    forever after the summary.
    """
    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threading.enumerate() if t.is_alive() and not t.daemon]
    stuck = [t for t in stuck if t is not threading.main_thread()]
    if not stuck:
        return
    frames = sys._current_frames()
    out = sys.stderr
    out.write(f"\n{len(stuck)} thread(s) still running {THREAD_GRACE:.0f} s after the tests:\n")
    for thread in stuck:
        out.write(f"--- {thread.name}\n")
        frame = frames.get(thread.ident or -1)
        out.write("".join(traceback.format_stack(frame)) if frame else "(no frame)\n")
    out.flush()
    try:
        import coverage

        current = coverage.Coverage.current()
        if current is not None:
            current.stop()
            current.save()
    except ImportError:
        pass
    os._exit(max(_exit_status or [1]) or 1)
