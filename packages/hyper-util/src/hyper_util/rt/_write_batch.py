"""A pass's first write at once; later small writes held to the pass's end, then written together.

What belongs here: :class:`WriteBatch`, one per event loop, and
:func:`batch_for`, which finds the running asyncio loop's (trio's is in
``_trio_stream``, which ends a pass with a system task instead of
``call_soon``). The streams that hold their writes are
:class:`~hyper_util.rt.AsyncioSocketStream` and
:class:`~hyper_util.rt.TrioSocketStream`.

Why: a server that writes each response the moment it is ready spreads its
writes over the whole pass of the event loop (one per connection served in
it, each after that connection's share of Python work). A client or proxy
on another core handles each one faster than the next comes, goes idle, and
must be woken again: one wake-up per response, and on a virtual machine
each wake-up of an idle core is an inter-processor interrupt that costs the
writer a trip to the hypervisor. Measured on a 2-core KVM guest (wrk -c50
against the ASGI hello app, pure build): 0.79 wake-ups of wrk's core per
request and 22 us of kernel time per request; with the writes of a pass
handed to the kernel together, 0.07 and 11 us, and 30% more requests per
second. The writes are the same system calls as before, one per connection
per pass; only their timing changes.

The first write of a pass is not held, so a lone writer (one busy
connection, a sequential client) never waits: holding it cost a sequential
client 10% of its requests per second, since the peer then started only
once the writer's task suspended instead of working beside it. The cost is
latency within a busy pass: a later response waits for the rest of the
pass (the other ready connections' work) instead of leaving at once; a
saturated server gains throughput, so its queueing delay falls too. A held
write is never lost: ``aclose`` and ``send_eof`` write it first, and a
stream holds at most ``HOLD_LIMIT`` bytes (a larger write goes at once,
with what was held before it), so a task that writes without ever
suspending cannot grow memory: it writes through, as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Final, Protocol

__all__ = ["HOLD_LIMIT", "HeldWrites", "Holder", "WriteBatch", "batch_for"]

#: Bytes one stream holds before it writes at once: 64 KiB, the transports'
#: write high-water mark, so holding never delays a write that would have
#: filled the transport's buffer anyway.
HOLD_LIMIT: Final = 65_536


class Holder(Protocol):
    """A stream with held writes: the batch calls this to write them."""

    def flush_held(self) -> None: ...


class WriteBatch:
    """The writes of one event loop's pass: the first goes at once, the rest at its end.

    The first write of a pass is not held: when it is the pass's only one
    (one connection busy, a sequential client), holding it would only make
    the peer wait for the rest of the writer's work instead of working
    beside it. Writes after it in the same pass are held; a callback
    scheduled with ``call_soon`` by the first writes them. asyncio runs the
    callbacks that were ready when its pass began, so that one runs once
    the current pass's tasks have all run, first thing in the next pass,
    before any new reads are handled. At most two wake-ups of a peer per
    pass, then, rather than one per write.
    """

    __slots__ = ("_holders", "_open", "_owner", "_schedule")

    def __init__(self, schedule: Callable[[Callable[[], None]], object], owner: object) -> None:
        """Make ``owner``'s batch; ``schedule(fn)`` must run ``fn`` once the pass ends."""
        self._schedule = schedule
        self._owner = owner
        self._holders: list[Holder] = []
        self._open = False

    def claim(self) -> bool:
        """Return True if the pass has written nothing yet (write at once), else False."""
        if self._open:
            return False
        self._open = True
        self._schedule(self._end_pass)
        return True

    def hold(self, holder: Holder) -> None:
        """Note that ``holder`` began holding writes in this pass (after :meth:`claim`)."""
        self._holders.append(holder)

    def _end_pass(self) -> None:
        # Holders must not raise from flush_held: on trio this runs in a
        # system task, whose exception would end the whole run.
        self._open = False
        holders = self._holders
        if holders:
            self._holders = []
            for holder in holders:
                holder.flush_held()


class HeldWrites:
    """What a stream that holds writes shares: the decision to hold (a mixin).

    The stream defines the three attributes (in its ``__slots__``) and
    :meth:`flush_held`, which writes ``_held`` without waiting and resets it
    to None and ``_held_size`` to 0.
    """

    _batch: WriteBatch
    # None, not an empty list, while nothing is held: the state of every
    # idle connection.
    _held: list[bytes] | None
    _held_size: int

    def flush_held(self) -> None:
        raise NotImplementedError

    def _hold(self, items: Sequence[bytes], size: int) -> bool:
        """Hold ``items`` if this pass allows it; False: the caller writes them now.

        Before a False that follows held bytes, those are written first; the
        caller then waits if they filled the stream's buffer before writing
        its own, so the buffer stays within its mark plus one write.
        """
        held = self._held
        if held is None:
            if not size:
                return True
            if size > HOLD_LIMIT or self._batch.claim():
                return False
            self._held = list(items)
            self._held_size = size
            self._batch.hold(self)
            return True
        if self._held_size + size <= HOLD_LIMIT:
            held.extend(items)
            self._held_size += size
            return True
        self.flush_held()
        return False


# One loop runs in a thread at a time, so a thread-local slot finds the
# running loop's batch without a loop-keyed map (uvloop's loops take no
# attributes and no weak references).
_local = threading.local()


def batch_for(loop: asyncio.AbstractEventLoop) -> WriteBatch:
    """Return ``loop``'s batch (``loop`` runs in this thread)."""
    batch: WriteBatch | None = getattr(_local, "batch", None)
    if batch is None or batch._owner is not loop:
        batch = _local.batch = WriteBatch(loop.call_soon, loop)
    return batch
