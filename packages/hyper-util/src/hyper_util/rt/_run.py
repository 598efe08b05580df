"""Which event loop a program runs on: ``loop="auto"`` takes uvloop when it is installed.

What belongs here: :func:`run` (``anyio.run`` with a ``loop`` choice) and
:func:`loop_backend`, which turns that choice into anyio's backend name and
options, for every entry point that starts an event loop (the command line,
scripts, the benchmarks).

Strategy: ``"auto"`` is what uvicorn's ``--loop auto`` does: uvloop when it
can be imported (hyper-util's ``uvloop`` extra), else asyncio's own loop.
uvloop serves the same code faster (its transports are written in Cython
over libuv), and nothing in hyper changes with it: the test suite runs on
both. ``"uvloop"`` insists and fails when uvloop is missing, rather than
silently measuring something else.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, TypeVarTuple, Unpack

import anyio

__all__ = ["LOOPS", "Loop", "loop_backend", "run"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: The event loop choices: uvloop if installed, asyncio's own, uvloop, trio.
Loop = Literal["auto", "asyncio", "uvloop", "trio"]
LOOPS: tuple[Loop, ...] = ("auto", "asyncio", "uvloop", "trio")


def loop_backend(loop: str = "auto") -> tuple[str, dict[str, Any]]:
    """Return anyio's ``backend`` and ``backend_options`` for an event loop choice.

    Args:
        loop: ``"auto"`` (uvloop when it is installed, else asyncio),
            ``"asyncio"``, ``"uvloop"`` or ``"trio"``.

    Raises:
        ValueError: An unknown choice, or ``"uvloop"`` when uvloop is not installed.
    """
    if loop == "trio":
        return "trio", {}
    if loop == "asyncio":
        return "asyncio", {}
    if loop not in ("auto", "uvloop"):
        raise ValueError(f"unknown event loop {loop!r}; choose from {', '.join(LOOPS)}")
    if importlib.util.find_spec("uvloop") is not None:
        return "asyncio", {"use_uvloop": True}
    if loop == "uvloop":
        raise ValueError("uvloop is not installed (pip install 'hyper-util[uvloop]')")
    return "asyncio", {}


def run(func: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts, loop: str = "auto") -> T:
    """Run ``func(*args)`` on a new event loop, as :func:`anyio.run` does, and return its result.

    ``run(serve, service)`` serves on uvloop when it is installed and on
    asyncio otherwise; ``loop=`` chooses (see :func:`loop_backend`).

    Raises:
        ValueError: As :func:`loop_backend`.
    """
    backend, options = loop_backend(loop)
    return anyio.run(func, *args, backend=backend, backend_options=options)
