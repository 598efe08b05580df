"""The pooled client's response body opens a read deadline only for reads that may wait.

Each read of a pooled response body is bounded by the read timeout (and the
total one); a deadline scope is what bounds it, and it can fire only where
the read suspends. A frame the connection already queued (HTTP/2 DATA that
arrived with the head) is read without one; a read that has to wait keeps
its limit. The clock is a FakeTimer, counted.
"""

from __future__ import annotations

import math

import pytest

from hyper_core.body import Frame, Incoming, IncomingSender
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import ReadTimeoutError, TotalTimeoutError
from hyper_util.client.legacy._wrappers import PooledBodySource

pytestmark = pytest.mark.anyio


def pooled(
    timer: FakeTimer, read_timeout: float | None, total_at: float = math.inf
) -> tuple[IncomingSender, Incoming, list[bool]]:
    """The connection's sender, the body the client hands out, and what ``on_end`` heard."""
    sender, inner = Incoming.from_channel()
    ends: list[bool] = []
    return (
        sender,
        Incoming(PooledBodySource(inner, ends.append, timer, read_timeout, total_at)),
        ends,
    )


async def test_queued_frames_are_read_without_a_deadline() -> None:
    timer = FakeTimer(autojump=True)
    sender, body, ends = pooled(timer, 5.0)
    sender.send_data_nowait(b"queued")
    sender.finish()
    assert body.frame_ready()
    assert await body.frame() == Frame.data(b"queued")
    assert await body.frame() is None
    assert timer.deadlines_made == 0
    assert ends == [True]  # the connection goes back to the pool


async def test_a_read_that_waits_keeps_its_read_timeout() -> None:
    timer = FakeTimer(autojump=True)
    sender, body, ends = pooled(timer, 5.0)
    sender.send_data_nowait(b"first")
    assert await body.frame() == Frame.data(b"first")
    assert not body.frame_ready()
    started = timer.now()
    async with timer:  # the clock jumps while the read waits
        with pytest.raises(ReadTimeoutError):
            await body.frame()
    assert timer.now() - started == 5.0
    assert timer.deadlines_made == 1
    assert ends == [False]  # not reused: the body was not read to its end


async def test_a_read_that_waits_keeps_the_total_timeout() -> None:
    timer = FakeTimer(autojump=True)
    total_at = timer.now() + 2.0
    _, body, ends = pooled(timer, None, total_at)
    async with timer:
        with pytest.raises(TotalTimeoutError):
            await body.frame()
    assert timer.now() == total_at
    assert ends == [False]


async def test_without_limits_no_deadline_is_made() -> None:
    timer = FakeTimer(autojump=True)
    sender, body, ends = pooled(timer, None)
    sender.send_data_nowait(b"x")
    sender.finish()
    assert await body.frame() == Frame.data(b"x")
    assert await body.frame() is None
    assert timer.deadlines_made == 0
    assert ends == [True]
