"""Name resolution for connectors: the interface, getaddrinfo, and a cache.

What belongs here: :class:`Resolver` (what :class:`HttpConnector` asks for
the addresses of a host), :class:`GaiResolver` (the system's
``getaddrinfo``, in a worker thread) and :class:`CachingResolver` (a
TTL-bounded, size-bounded cache in front of another resolver, which also
merges concurrent lookups of one name into one).

Strategy: a resolver is any object with ``async resolve(host, port,
family)`` returning socket addresses, the Python shape of hyper-util's
``Service<Name>`` resolvers. ``getaddrinfo`` blocks, so it runs in a worker
thread (anyio's), which costs a thread hop on every call: the cache answers
repeated names from memory instead. The connector never asks a resolver
about an IP literal.

Why the cache and its TTL of 10 s (aiohttp's default): ``getaddrinfo`` does
not report DNS TTLs, so a cache can only bound its own staleness; 10 s is
below the TTL of almost every real record, so a cached answer is one the
system resolver would very likely still give. Failures are never cached.
Concurrent lookups of one name (a burst of new connections to one origin)
share one ``getaddrinfo`` call instead of filling the worker threads.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final, Protocol, TypeAlias, final

import anyio

from hyper_core.rt import Timer, default_timer

__all__ = [
    "DEFAULT_DNS_CACHE_SIZE",
    "DEFAULT_DNS_CACHE_TTL",
    "CachingResolver",
    "GaiResolver",
    "Resolver",
    "SocketAddress",
]

#: Seconds a cached lookup is used (aiohttp's ``ttl_dns_cache`` default).
DEFAULT_DNS_CACHE_TTL: Final = 10.0
#: Lookups a cache keeps; the least recently used goes first.
DEFAULT_DNS_CACHE_SIZE: Final = 1024

#: ``(ip, port)`` for IPv4, ``(ip, port, flowinfo, scope_id)`` for IPv6:
#: what ``socket.connect`` takes.
SocketAddress: TypeAlias = tuple[str, int] | tuple[str, int, int, int]


class Resolver(Protocol):
    """Finds the addresses of a host name; any object with this method is one."""

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> Sequence[SocketAddress]:
        """Return the addresses to try for ``host``, in the order to try them.

        Args:
            host: A host name (never an IP literal: the connector uses those
                as they are).
            port: The port to put in each address.
            family: ``socket.AF_UNSPEC`` (any), ``AF_INET`` or ``AF_INET6``:
                the only family the connector can use (it has a local
                address of that family only).

        Raises:
            OSError: The name does not resolve (``socket.gaierror``).

        Cancel safety: a cancelled lookup leaves nothing behind.
        """
        ...


@final
class GaiResolver:
    """The system resolver: ``getaddrinfo`` in a worker thread (hyper-util's ``GaiResolver``).

    Host names are IDNA-encoded first (anyio's ``getaddrinfo``); each
    address appears once, in the order the system gave (RFC 6724).
    """

    __slots__ = ()

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> list[SocketAddress]:
        """Resolve ``host`` with ``getaddrinfo`` (see :class:`Resolver`)."""
        infos = await anyio.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        seen: dict[SocketAddress, None] = {}
        for info in infos:
            address = info[4]
            if info[0] in (socket.AF_INET, socket.AF_INET6):
                seen.setdefault(address, None)
        return list(seen)

    def __repr__(self) -> str:
        return "GaiResolver()"


@final
class _Lookup:
    """One lookup in flight; the tasks asking for the same name wait on it."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: Sequence[SocketAddress] | None = None
        self.error: Exception | None = None


_Key: TypeAlias = tuple[str, int, int]


@final
class CachingResolver:
    """Answers repeated lookups from memory for ``ttl`` seconds (the default resolver).

    Entries are kept per ``(host, port, family)``, at most ``max_entries``
    of them (the least recently used is dropped first), each for ``ttl``
    seconds from when its lookup finished. Concurrent lookups of one key
    wait for the first one's answer, or its error, instead of resolving
    again; if that first lookup is cancelled, one of the others takes over.
    Failures are not cached.

    Args:
        inner: The resolver that does the lookups (default
            :class:`GaiResolver`).
        ttl: Seconds an answer is used (10 s, aiohttp's default).
        max_entries: Most answers kept (1024).
        timer: The clock of the TTL (default: anyio's; tests pass a
            ``FakeTimer``).

    Raises:
        ValueError: ``ttl`` or ``max_entries`` is not positive.
    """

    __slots__ = ("_entries", "_inner", "_max", "_pending", "_timer", "_ttl")

    def __init__(
        self,
        inner: Resolver | None = None,
        *,
        ttl: float = DEFAULT_DNS_CACHE_TTL,
        max_entries: int = DEFAULT_DNS_CACHE_SIZE,
        timer: Timer | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive seconds")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._inner: Resolver = inner if inner is not None else GaiResolver()
        self._ttl = ttl
        self._max = max_entries
        self._timer = timer if timer is not None else default_timer()
        self._entries: OrderedDict[_Key, tuple[float, Sequence[SocketAddress]]] = OrderedDict()
        self._pending: dict[_Key, _Lookup] = {}

    @property
    def inner(self) -> Resolver:
        """The resolver that does the lookups."""
        return self._inner

    def __len__(self) -> int:
        """The number of answers kept (some may have expired)."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every answer (lookups in flight still finish and are kept)."""
        self._entries.clear()

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> Sequence[SocketAddress]:
        """Return the cached answer for the key, or look it up (see :class:`Resolver`).

        Raises:
            OSError: The inner resolver failed (for every task that waited
                on that lookup).
        """
        key = (host.lower(), port, family)
        entries = self._entries
        while True:
            entry = entries.get(key)
            if entry is not None:
                if entry[0] > self._timer.now():
                    entries.move_to_end(key)
                    return entry[1]
                del entries[key]
            lookup = self._pending.get(key)
            if lookup is None:
                return await self._lookup(key, host, port, family)
            await lookup.done.wait()
            if lookup.result is not None:
                return lookup.result
            if lookup.error is not None:
                raise lookup.error
            # The first asker was cancelled: look again (one of us leads).

    async def _lookup(
        self, key: _Key, host: str, port: int, family: int
    ) -> Sequence[SocketAddress]:
        lookup = self._pending[key] = _Lookup()
        try:
            result = tuple(await self._inner.resolve(host, port, family))
            if not result:
                raise socket.gaierror(socket.EAI_NONAME, f"{host!r} resolved to no address")
            lookup.result = result
            entries = self._entries
            entries[key] = (self._timer.now() + self._ttl, result)
            while len(entries) > self._max:
                entries.popitem(last=False)
            return result
        except Exception as exc:
            lookup.error = exc
            raise
        finally:
            # Set last: the waiters read ``result`` or ``error`` when they wake.
            del self._pending[key]
            lookup.done.set()

    def __repr__(self) -> str:
        return f"CachingResolver({self._inner!r}, ttl={self._ttl}, max_entries={self._max})"
