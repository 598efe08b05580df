"""Connecting with an :class:`~hyper_util.rt.AsyncioSocketStream`: TCP and Unix sockets.

What belongs here: :func:`open_asyncio_stream` (TCP, with happy eyeballs),
:func:`open_asyncio_unix_stream`, and the address race uvloop needs
(:func:`_happy_eyeballs`, RFC 8305). :func:`hyper_util.rt.connect_tcp` and
:func:`hyper_util.rt.connect_unix` call them on the fast path; a socket
already connected (or accepted) is wrapped by
``_asyncio_stream.wrap_asyncio_socket``.

Strategy: the event loop connects (``loop.create_connection``, whose happy
eyeballs on asyncio are the standard library's) with hyper-util's protocol
as the transport's protocol, so the stream is ready without a second step.
uvloop's ``create_connection`` has no happy eyeballs, so there the
addresses are raced here (``asyncio.staggered.staggered_race``, families
interleaved) and the winning socket handed over.
"""

from __future__ import annotations

import asyncio
import asyncio.staggered
import functools
import socket
from typing import Any

from ._asyncio_protocol import new_protocol
from ._asyncio_stream import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_READ_HIGH_WATER,
    DEFAULT_WRITE_HIGH_WATER,
    AsyncioSocketStream,
    set_nodelay,
)

__all__ = ["open_asyncio_stream", "open_asyncio_unix_stream"]


async def open_asyncio_stream(
    host: str,
    port: int,
    *,
    local_host: str | None = None,
    happy_eyeballs_delay: float = 0.25,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncioSocketStream:
    """Connect over TCP with ``loop.create_connection`` (happy eyeballs included).

    Raises:
        OSError: The name did not resolve or every connection attempt failed.
    """
    protocol = new_protocol(read_high_water, write_high_water)
    loop = asyncio.get_running_loop()
    if isinstance(loop, asyncio.BaseEventLoop):
        transport, _ = await loop.create_connection(
            lambda: protocol,
            host,
            port,
            local_addr=(local_host, 0) if local_host is not None else None,
            happy_eyeballs_delay=happy_eyeballs_delay,
        )
    else:
        # uvloop's create_connection has no happy eyeballs (and refuses the
        # argument): race the addresses here and hand it the winner.
        connected = await _happy_eyeballs(loop, host, port, local_host, happy_eyeballs_delay)
        transport, _ = await loop.create_connection(lambda: protocol, sock=connected)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        set_nodelay(sock)
    return AsyncioSocketStream(transport, protocol, close_timeout=close_timeout)


def _interleave(infos: list[Any]) -> list[Any]:
    # RFC 8305 section 4: alternate address families, the first one first.
    by_family: dict[int, list[Any]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))  # noqa: PERF401 - one from each queue per pass
    return ordered


async def _happy_eyeballs(
    loop: asyncio.AbstractEventLoop, host: str, port: int, local_host: str | None, delay: float
) -> socket.socket:
    """A connected non-blocking socket: attempts started ``delay`` apart, first one wins."""
    infos = _interleave(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    if not infos:
        raise OSError(f"{host!r} resolved to no address")
    errors: list[OSError] = []

    async def attempt(info: Any) -> socket.socket:
        family, kind, proto, _, address = info
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if local_host is not None:
                sock.bind((local_host, 0))
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            raise
        except BaseException:
            sock.close()
            raise
        return sock

    winner: socket.socket | None
    winner, _, _ = await asyncio.staggered.staggered_race(
        [functools.partial(attempt, info) for info in infos], delay
    )
    if winner is None:
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"every connection attempt to {host}:{port} failed: {errors}")
    return winner


async def open_asyncio_unix_stream(
    path: str,
    *,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncioSocketStream:
    """Connect to a Unix socket with ``loop.create_unix_connection``.

    Raises:
        OSError: Nothing listens at ``path``.
    """
    protocol = new_protocol(read_high_water, write_high_water)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_unix_connection(lambda: protocol, path)
    return AsyncioSocketStream(transport, protocol, close_timeout=close_timeout)
