"""Pool bookkeeping: which connection a request gets, and which ones to close.

What belongs here: :class:`Pool`, the synchronous state of the pooled
client's connections. Its records (:class:`~._pooled.PooledConn` of one
connection, :class:`~._pooled.Waiter`, :class:`~._pooled.Checkout`) are in
``_pooled``. Nothing here awaits or does I/O.

Strategy (the rules every method keeps):

1. Decisions are synchronous and return what to close. ``checkout``,
   ``checkin``, ``release``, ``remove`` and ``expire`` update the state in
   one step (no await in the middle, so no lock is needed on one event
   loop) and hand back the connections that must be closed; the client
   closes them afterwards, shielded from cancellation (STYLE.md item 5,
   after httpcore's ``_assign_requests_to_connections``).
2. A connection counts against ``max_connections`` from the moment a
   connect is granted until its driver ends, or until the pool gives it up
   to make room (``counted`` turns false then, so it is never uncounted
   twice).
3. HTTP/1 connections are lent to one request at a time and come back
   through :meth:`Pool.checkin`; idle ones are kept newest first (LIFO, as
   hyper does: the newest is the least likely to have been closed by the
   server). HTTP/2 connections are shared: each request takes one of its
   stream slots (``in_flight``) and gives it back with :meth:`Pool.release`.
4. Waiters (requests blocked by ``max_connections``, or waiting for an
   HTTP/2 connection to the same origin that is being opened) are served in
   arrival order: a returned HTTP/1 connection goes to a waiter for its
   origin, a freed slot to the first waiter.

Why :class:`Pool` is one class of more than 400 lines: every method keeps
the same invariants in one synchronous step (rule 1: no await inside, so
no lock; rule 2: a connection is counted in ``_open`` exactly once), and
each reads and changes the same few dicts and counters. Split across
classes, each invariant would be kept in several places. The records it
hands out are the part that stands alone, and they are in ``_pooled``.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Final, final

from hyper_util.client.legacy._pooled import Checkout, CheckoutKind, PooledConn, PoolKey, Waiter

__all__ = ["Pool"]

_NEVER: Final = math.inf


@final
class Pool:
    """The state of every connection of one client (see the module docstring).

    Args:
        idle_timeout: Seconds an unused connection is kept (``None``: forever).
        max_idle_per_host: Idle HTTP/1 connections kept per origin
            (``None``: no limit; 0: no pooling at all, not even HTTP/2 sharing).
        max_idle: Idle connections kept, all origins together, HTTP/2 ones
            without a request included (``None``: no limit). One going idle
            beyond it is closed.
        max_connections: Connections open at once, all origins together
            (``None``: no limit).
        h2_max_per_host: HTTP/2 connections per origin (a further one is
            opened only when every stream slot of the others is taken).
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None,
        max_idle_per_host: int | None,
        max_connections: int | None,
        h2_max_per_host: int,
        max_idle: int | None = None,
    ) -> None:
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle_per_host
        self._max_idle_total = max_idle
        self._max_conns = max_connections
        self._h2_max = h2_max_per_host
        self._idle: dict[PoolKey, list[PooledConn]] = {}
        self._h2: dict[PoolKey, list[PooledConn]] = {}
        self._h2_connecting: dict[PoolKey, int] = {}
        self.h2_keys: set[PoolKey] = set()  # origins known to speak HTTP/2
        self._waiters: deque[Waiter] = deque()
        self._open = 0  # counted connections, including those being opened
        self.closed = False
        # Statistics.
        self.opened = 0
        self.reused = 0

    # ------------------------------------------------------------- queries

    @property
    def open_connections(self) -> int:
        """Connections counted against the cap (open or being opened)."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """HTTP/1 connections idle in the pool plus HTTP/2 ones with no request."""
        h1 = sum(len(conns) for conns in self._idle.values())
        h2 = sum(1 for conns in self._h2.values() for c in conns if c.in_flight == 0)
        return h1 + h2

    @property
    def http2_connections(self) -> int:
        """Shared HTTP/2 connections in the pool."""
        return sum(len(conns) for conns in self._h2.values())

    def shared_http2(self, key: PoolKey) -> list[PooledConn]:
        """The shared HTTP/2 connections to ``key`` that still take requests."""
        return [c for c in self._h2.get(key, ()) if not (c.is_closed() or c.poisoned)]

    @property
    def waiting(self) -> int:
        """Requests waiting for a connection."""
        return len(self._waiters)

    def next_expiry(self) -> float:
        """The earliest time an idle connection expires (``math.inf``: none)."""
        timeout = self._idle_timeout
        if timeout is None:
            return _NEVER
        earliest = _NEVER
        for conns in self._idle.values():
            if conns:
                # The list is oldest first: its head expires first.
                earliest = min(earliest, conns[0].idle_since + timeout)
        for conns in self._h2.values():
            for conn in conns:
                if conn.in_flight == 0:
                    earliest = min(earliest, conn.idle_since + timeout)
        return earliest

    # ------------------------------------------------------------- checkout

    def _expired(self, conn: PooledConn, now: float) -> bool:
        timeout = self._idle_timeout
        return timeout is not None and now - conn.idle_since >= timeout

    def _drop(self, conn: PooledConn, to_close: list[PooledConn]) -> None:
        """Forget a connection the pool gives up, and free its slot."""
        conn.pooled = False
        to_close.append(conn)
        if conn.counted:
            conn.counted = False
            self._open -= 1

    def checkout(self, key: PoolKey, now: float, *, want_h2: bool, fresh: bool = False) -> Checkout:
        """Decide how a request to ``key`` gets a connection.

        Args:
            key: The origin.
            now: The timer's clock, in seconds.
            want_h2: The request will speak HTTP/2 (``http2_only``), so it
                may share a connection that is being opened.
            fresh: Never an idle HTTP/1 connection (a retry: see the
                client): a new one, or a wait for a slot. A shared HTTP/2
                connection is still used (there is one per origin; a closed
                one is never chosen).
        """
        to_close: list[PooledConn] = []
        if self.closed:
            return Checkout(CheckoutKind.WAIT, to_close)  # the client refuses before this
        # HTTP/2 first: a live shared connection with a free slot.
        best: PooledConn | None = None
        shared = self._h2.get(key)
        if shared:
            for conn in list(shared):
                if conn.is_closed() or (conn.poisoned and not conn.in_flight):
                    shared.remove(conn)
                    self._drop(conn, to_close)
                elif conn.poisoned:
                    # Its streams finish; release() closes it after the last.
                    shared.remove(conn)
                    conn.pooled = False
                elif best is None or conn.in_flight < best.in_flight:
                    best = conn
            if not shared:
                del self._h2[key]
        connecting = self._h2_connecting.get(key, 0) > 0
        if best is not None:
            free = best.has_free_slot()
            if free or not (connecting or self._may_open_h2(key)):
                best.in_flight += 1
                best.requests += 1
                self.reused += 1
                return Checkout(CheckoutKind.REUSE, to_close, conn=best)
            if connecting and not self._may_open_h2(key):
                # Every slot is taken and a further connection is on its way.
                waiter = Waiter(key, h2_only=True)
                self._waiters.append(waiter)
                return Checkout(CheckoutKind.WAIT, to_close, waiter=waiter)
        elif (want_h2 or key in self.h2_keys) and connecting:
            # One connection per origin: wait for the one being opened.
            waiter = Waiter(key, h2_only=True)
            self._waiters.append(waiter)
            return Checkout(CheckoutKind.WAIT, to_close, waiter=waiter)
        # HTTP/1: the newest idle connection that is still good.
        idle = None if fresh else self._idle.get(key)
        while idle:
            conn = idle.pop()
            if (
                conn.is_closed()
                or conn.poisoned
                or not conn.sender.is_ready()
                or self._expired(conn, now)
            ):
                self._drop(conn, to_close)
                continue
            conn.pooled = False
            conn.in_flight = 1
            conn.requests += 1
            self.reused += 1
            return Checkout(CheckoutKind.REUSE, to_close, conn=conn)
        if self._reserve(key, to_close):
            return Checkout(CheckoutKind.CONNECT, to_close)
        waiter = Waiter(key, h2_only=False)
        self._waiters.append(waiter)
        return Checkout(CheckoutKind.WAIT, to_close, waiter=waiter)

    def take_idle(self, key: PoolKey, now: float) -> PooledConn | None:
        """:meth:`checkout`'s usual answer, cheaply: the newest idle HTTP/1 connection.

        Returns it (lent, as ``REUSE`` would) only when it is what
        :meth:`checkout` would choose and nothing needs closing: no HTTP/2
        connection to ``key`` exists or is being opened, and the newest idle
        connection is ready and not expired. Otherwise ``None``: call
        :meth:`checkout`.
        """
        if self.closed or key in self._h2 or key in self._h2_connecting:
            return None
        idle = self._idle.get(key)
        if not idle:
            return None
        conn = idle[-1]
        timeout = self._idle_timeout
        if (
            not conn.sender.is_ready()
            or conn.poisoned
            or (timeout is not None and now - conn.idle_since >= timeout)
        ):
            return None
        idle.pop()
        conn.pooled = False
        conn.in_flight = 1
        conn.requests += 1
        self.reused += 1
        return conn

    def _may_open_h2(self, key: PoolKey) -> bool:
        count = len(self._h2.get(key, ())) + self._h2_connecting.get(key, 0)
        if count >= self._h2_max:
            return False
        return self._max_conns is None or self._open < self._max_conns

    def _reserve(self, key: PoolKey, to_close: list[PooledConn]) -> bool:
        """Take a connection slot, making room by closing an idle connection if needed."""
        cap = self._max_conns
        if cap is not None and self._open >= cap and not self._evict_one(to_close):
            return False
        self._open += 1
        return True

    def _evict_one(self, to_close: list[PooledConn]) -> bool:
        """Close the longest-idle connection of any origin to free a slot."""
        oldest: PooledConn | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        for conns in self._h2.values():
            for conn in conns:
                if conn.in_flight or conn.has_tunnels():
                    continue
                if oldest is None or conn.idle_since < oldest.idle_since:
                    oldest = conn
        if oldest is None:
            return False
        self._unlist(oldest)
        self._drop(oldest, to_close)
        return True

    def _unlist(self, conn: PooledConn) -> None:
        lists = self._h2 if conn.http2 else self._idle
        conns = lists.get(conn.key)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del lists[conn.key]

    def cancel_wait(self, waiter: Waiter, now: float) -> list[PooledConn]:
        """A waiter gave up (timeout, cancellation): undo what it was given."""
        if not waiter.served:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            return []
        to_close: list[PooledConn] = []
        if waiter.result is not None:
            conn, waiter.result = waiter.result, None
            if conn.http2:
                to_close += self.release(conn, now)
            else:
                to_close += self.checkin(conn, now)
        elif waiter.granted_connect:
            waiter.granted_connect = False
            self._open -= 1
            self._slot_freed(to_close)
        return to_close

    # ------------------------------------------------------------ connected

    def begin_connect(self, key: PoolKey, *, want_h2: bool) -> bool:
        """A granted connect starts; return whether it is expected to be HTTP/2.

        While an HTTP/2 connection to an origin is being opened, other
        requests for that origin wait for it instead of opening their own.
        """
        if want_h2 or key in self.h2_keys:
            self._h2_connecting[key] = self._h2_connecting.get(key, 0) + 1
            return True
        return False

    def connect_done(self, key: PoolKey, *, h2_attempt: bool) -> None:
        """A connect from :meth:`begin_connect` ended (after :meth:`add` or a failure)."""
        if not h2_attempt:
            return
        left = self._h2_connecting.get(key, 0) - 1
        if left > 0:
            self._h2_connecting[key] = left
            return
        self._h2_connecting.pop(key, None)
        # Whoever still waits for it (it failed, or spoke HTTP/1) looks again.
        for waiter in [w for w in self._waiters if w.h2_only and w.key == key]:
            self._waiters.remove(waiter)
            waiter.event.set()

    def connect_failed(self, key: PoolKey) -> list[PooledConn]:
        """A granted connect failed: free its slot, wake the waiters for that origin."""
        to_close: list[PooledConn] = []
        self._open -= 1
        self._slot_freed(to_close)
        return to_close

    def add(self, conn: PooledConn, now: float) -> None:
        """Record a new connection, already lent to the request that opened it."""
        self.opened += 1
        conn.in_flight = 1
        conn.requests = 1
        conn.idle_since = now
        if not conn.http2:
            return
        self.h2_keys.add(conn.key)
        shared = self._h2.setdefault(conn.key, [])
        if self._max_idle != 0 and len(shared) < self._h2_max and not conn.poisoned:
            shared.append(conn)
            conn.pooled = True
        elif not shared:
            del self._h2[conn.key]
        # Requests waiting for this origin share the new connection.
        for waiter in [w for w in self._waiters if w.key == conn.key]:
            if not conn.pooled:
                waiter.event.set()  # they look again (and may connect themselves)
                self._waiters.remove(waiter)
                continue
            self._waiters.remove(waiter)
            conn.in_flight += 1
            conn.requests += 1
            self.reused += 1
            waiter.result = conn
            waiter.event.set()

    # ---------------------------------------------------------- returning

    def checkin(self, conn: PooledConn, now: float) -> list[PooledConn]:
        """An HTTP/1 exchange ended with its response read to the end: keep or close."""
        to_close: list[PooledConn] = []
        conn.in_flight = 0
        conn.idle_since = now
        if self.closed or conn.is_closed() or conn.poisoned or not conn.counted:
            # Its slot (if it held one) goes to the next waiter.
            self._retire(conn, to_close)
            return to_close
        for waiter in self._waiters:
            if waiter.key == conn.key and not waiter.h2_only:
                self._waiters.remove(waiter)
                conn.in_flight = 1
                conn.requests += 1
                self.reused += 1
                waiter.result = conn
                waiter.event.set()
                return to_close
        idle = self._idle.setdefault(conn.key, [])
        at_cap = self._max_conns is not None and self._open >= self._max_conns
        total = self._max_idle_total
        if (
            (self._max_idle is not None and len(idle) >= self._max_idle)
            or (at_cap and self._waiters)
            or (total is not None and self.idle_connections >= total)
        ):
            # Over an idle limit, or another origin waits for a slot.
            if not idle:
                del self._idle[conn.key]
            self._drop(conn, to_close)
            self._slot_freed(to_close)
            return to_close
        idle.append(conn)
        conn.pooled = True
        return to_close

    def discard(self, conn: PooledConn) -> list[PooledConn]:
        """An HTTP/1 exchange ended without reaching the body's end: close it."""
        to_close: list[PooledConn] = []
        conn.in_flight = 0
        self._retire(conn, to_close)
        return to_close

    def release(self, conn: PooledConn, now: float) -> list[PooledConn]:
        """An HTTP/2 request on ``conn`` ended (in any way): give its slot back."""
        to_close: list[PooledConn] = []
        conn.in_flight -= 1
        if conn.in_flight > 0:
            return to_close
        conn.idle_since = now
        total = self._max_idle_total
        if (
            not conn.pooled
            or self.closed
            or conn.is_closed()
            or conn.poisoned
            or (total is not None and self.idle_connections > total)
        ):
            # Not shared (pooling off, one too many, poisoned), or one idle
            # connection too many: it served its request.
            self._unlist(conn)
            self._retire(conn, to_close)
        return to_close

    def remove(self, conn: PooledConn) -> list[PooledConn]:
        """The connection's driver ended: forget it and free its slot."""
        to_close: list[PooledConn] = []
        self._unlist(conn)
        conn.pooled = False
        if conn.counted:
            conn.counted = False
            self._open -= 1
            self._slot_freed(to_close)
        return to_close

    def _retire(self, conn: PooledConn, to_close: list[PooledConn]) -> None:
        """Close ``conn``; if it held a slot, free it for the next waiter."""
        if conn.counted:
            self._drop(conn, to_close)
            self._slot_freed(to_close)
        else:
            to_close.append(conn)

    def _slot_freed(self, to_close: list[PooledConn]) -> None:
        """A slot became free: the first waiter that can use it may connect."""
        cap = self._max_conns
        for waiter in list(self._waiters):
            if cap is not None and self._open >= cap and not self._evict_one(to_close):
                return
            if waiter.h2_only:
                continue  # it waits for a connection being opened, not a slot
            self._waiters.remove(waiter)
            self._open += 1
            waiter.granted_connect = True
            waiter.event.set()
            return

    # ------------------------------------------------------------- expiry

    def expire(self, now: float) -> list[PooledConn]:
        """Take out every idle connection past the idle timeout, or closed."""
        to_close: list[PooledConn] = []
        for key, conns in list(self._idle.items()):
            keep = []
            for conn in conns:
                if self._expired(conn, now) or conn.is_closed() or conn.poisoned:
                    self._drop(conn, to_close)
                else:
                    keep.append(conn)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        for key, conns in list(self._h2.items()):
            for conn in list(conns):
                open_tunnels = not (conn.in_flight or conn.is_closed() or conn.poisoned)
                if open_tunnels and conn.has_tunnels():
                    conn.idle_since = now  # busy with a tunnel: idle from now at the earliest
                elif conn.is_closed() or (
                    conn.in_flight == 0 and (conn.poisoned or self._expired(conn, now))
                ):
                    conns.remove(conn)
                    self._drop(conn, to_close)
            if not conns:
                del self._h2[key]
        if to_close:
            self._slot_freed(to_close)
        return to_close

    def close_all(self) -> list[PooledConn]:
        """The client is closing: every idle connection goes; waiters are woken."""
        self.closed = True
        to_close: list[PooledConn] = []
        for conns in self._idle.values():
            for conn in conns:
                self._drop(conn, to_close)
        self._idle.clear()
        for conns in self._h2.values():
            to_close.extend(conns)
            for conn in conns:
                conn.pooled = False
        self._h2.clear()
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            waiter.event.set()
        return to_close
