"""A pass's first write at once; later small writes held to the pass's end, then written together.

What belongs here: :class:`WriteBatch`, one per event loop, and
:func:`batch_for`, which finds the running loop's. The streams that hold
their writes are :class:`~hyper_util.rt.AsyncioSocketStream`.

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
from typing import Final, Protocol

__all__ = ["HOLD_LIMIT", "Holder", "WriteBatch", "batch_for"]

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

    __slots__ = ("_holders", "_loop", "_open")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._holders: list[Holder] = []
        self._open = False

    def claim(self) -> bool:
        """Return True if the pass has written nothing yet (write at once), else False."""
        if self._open:
            return False
        self._open = True
        self._loop.call_soon(self._end_pass)
        return True

    def hold(self, holder: Holder) -> None:
        """Note that ``holder`` began holding writes in this pass (after :meth:`claim`)."""
        self._holders.append(holder)

    def _end_pass(self) -> None:
        self._open = False
        holders = self._holders
        if holders:
            self._holders = []
            for holder in holders:
                holder.flush_held()


# One loop runs in a thread at a time, so a thread-local slot finds the
# running loop's batch without a loop-keyed map (uvloop's loops take no
# attributes and no weak references).
_local = threading.local()


def batch_for(loop: asyncio.AbstractEventLoop) -> WriteBatch:
    """Return ``loop``'s batch (``loop`` runs in this thread)."""
    batch: WriteBatch | None = getattr(_local, "batch", None)
    if batch is None or batch._loop is not loop:
        batch = _local.batch = WriteBatch(loop)
    return batch
