"""AppRunner: where ASGI calls run, checked against a plain task running the same call.

What belongs here: the runner's contract (a call runs as a task of its own,
whatever shortcut runs it) as equivalence tests: a probe coroutine records
what it can observe of its task (identity across awaits, context variables,
cancel scopes and task groups spanning an await, cancellation), once under
``AppRunner.spawn`` and once in a task group's task, and the two records must
match. Then what the shortcut promises on asyncio: a call that does not wait
is finished when ``spawn`` returns and costs no task.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from hyper_util.asgi import AppRunner

pytestmark = pytest.mark.anyio

_var: contextvars.ContextVar[str] = contextvars.ContextVar("_var", default="unset")

Probe = Callable[[list[Any]], Coroutine[Any, Any, None]]


def _task_id() -> int:
    return anyio.get_current_task().id


async def _identity(record: list[Any]) -> None:
    first = _task_id()
    await anyio.lowlevel.checkpoint()
    record.append(("same task after an await", _task_id() == first))
    await anyio.sleep(0.01)
    record.append(("same task after a timed wait", _task_id() == first))


async def _context(record: list[Any]) -> None:
    record.append(("inherited", _var.get()))
    _var.set("inside")
    await anyio.lowlevel.checkpoint()
    record.append(("kept across an await", _var.get()))


async def _scope_across_await(record: list[Any]) -> None:
    with anyio.move_on_after(0.05) as scope:
        await anyio.sleep(5)
    record.append(("deadline caught", scope.cancelled_caught))
    with anyio.CancelScope() as scope:
        scope.cancel()  # cancelled during the first step, noticed at the await
        await anyio.sleep(5)
    record.append(("cancel before the await caught", scope.cancelled_caught))


async def _task_group_across_await(record: list[Any]) -> None:
    done: list[int] = []

    async def child(n: int) -> None:
        await anyio.sleep(0.01)
        done.append(n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(child, 1)
        tg.start_soon(child, 2)
    record.append(("children", sorted(done)))


async def _error_after_await(record: list[Any]) -> None:
    await anyio.lowlevel.checkpoint()
    try:
        raise ValueError("boom")
    except ValueError as exc:
        record.append(("caught", str(exc)))


PROBES: list[Probe] = [_identity, _context, _scope_across_await, _task_group_across_await]
PROBES.append(_error_after_await)


async def _in_runner(probe: Probe) -> list[Any]:
    record: list[Any] = []
    finished = anyio.Event()

    async def call() -> None:
        try:
            await probe(record)
        finally:
            finished.set()

    token = _var.set("outer")
    try:
        async with AppRunner() as runner:
            runner.spawn(call)
            with anyio.fail_after(10):
                await finished.wait()
        record.append(("spawner's context untouched", _var.get()))
    finally:
        _var.reset(token)
    return record


async def _in_task(probe: Probe) -> list[Any]:
    record: list[Any] = []
    token = _var.set("outer")
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe, record)
        record.append(("spawner's context untouched", _var.get()))
    finally:
        _var.reset(token)
    return record


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.__name__.strip("_"))
async def test_a_call_sees_what_a_task_of_its_own_sees(probe: Probe) -> None:
    expected = await _in_task(probe)
    assert await _in_runner(probe) == expected
    assert all(value for _, value in expected)


async def test_exit_cancels_a_call_that_waits() -> None:
    seen: list[str] = []

    async def call() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    with anyio.fail_after(10):
        async with AppRunner() as runner:
            runner.spawn(call)
            await anyio.sleep(0.01)
    assert seen == ["cancelled"]


async def test_exit_cancels_a_call_before_its_task_ran() -> None:
    seen: list[str] = []

    async def call() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    with anyio.fail_after(10):
        async with AppRunner() as runner:
            runner.spawn(call)  # exits at once: the call's task has not run yet
    assert seen[-1] == "finally"


async def test_calls_spawned_by_a_call_run_too() -> None:
    done: list[str] = []
    all_done = anyio.Event()

    def mark(what: str) -> None:
        done.append(what)
        if len(done) == 5:
            all_done.set()

    async def inner(name: str) -> None:
        mark(name)
        await anyio.lowlevel.checkpoint()
        mark(name + " resumed")

    async with AppRunner() as runner:

        async def outer() -> None:
            runner.spawn(inner, "a")
            runner.spawn(inner, "b")
            await anyio.sleep(0.01)
            mark("outer resumed")

        runner.spawn(outer)
        with anyio.fail_after(10):
            await all_done.wait()
    assert sorted(done) == ["a", "a resumed", "b", "b resumed", "outer resumed"]


# -- asyncio: the first step runs in spawn, and a call that does not wait costs no task

ASYNCIO_ONLY = pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)


@ASYNCIO_ONLY
async def test_asyncio_call_that_does_not_wait_is_done_when_spawn_returns() -> None:
    done: list[int] = []

    async def call(n: int) -> None:
        done.append(n)

    async with AppRunner() as runner:
        tasks_before = len(asyncio.all_tasks())
        for n in range(100):
            runner.spawn(call, n)
            assert done[-1] == n
        # At most the one idle host task the first call created.
        assert len(asyncio.all_tasks()) <= tasks_before + 1


@ASYNCIO_ONLY
async def test_asyncio_task_cancelled_in_first_step_gets_it_at_its_await() -> None:
    seen: list[str] = []
    cancelled = asyncio.Event()

    async def call() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            cancelled.set()

    for reuse in (False, True):  # a fresh host, then one parked from before
        cancelled.clear()
        async with AppRunner() as runner:
            if reuse:
                runner.spawn(asyncio.sleep, 0)
                await asyncio.sleep(0.01)
            runner.spawn(call)
            with anyio.fail_after(10):
                await cancelled.wait()
    assert seen == ["cancelled", "cancelled"]


@ASYNCIO_ONLY
async def test_asyncio_timeout_across_an_await() -> None:
    seen: list[str] = []
    finished = asyncio.Event()

    async def call() -> None:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(5)
        except TimeoutError:
            seen.append("timed out")
        task = asyncio.current_task()
        assert task is not None
        seen.append(f"cancelling {task.cancelling()}")
        finished.set()

    async with AppRunner() as runner:
        runner.spawn(call)
        with anyio.fail_after(10):
            await finished.wait()
    assert seen == ["timed out", "cancelling 0"]
