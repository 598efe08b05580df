"""HTTP/3 for the pooled client: prior knowledge, Alt-Svc discovery, fallback to TCP.

What belongs here: :class:`Http3Pool`, the pooled client's HTTP/3 half (one
QUIC connection per origin, shared by every request to it), the Alt-Svc
cache (RFC 7838) and :func:`parse_alt_svc`.

Strategy, from the request's point of view:

* An ``https`` origin is sent over HTTP/3 when it is known to speak it:
  listed as prior knowledge (``http3_origins``), or advertised by an
  ``Alt-Svc: h3=...`` field on an earlier HTTPS response (remembered for
  its ``ma`` max-age, 24 hours by default, cleared by ``Alt-Svc: clear``).
* Prior knowledge waits for the QUIC handshake (bounded by
  ``handshake_timeout``); a discovered alternative never delays a request:
  its handshake starts in the background and requests keep using TCP until
  it is done. This is the race: whichever is ready carries the request.
* When the handshake fails (UDP blocked, no QUIC server, a certificate
  refused) the origin is marked broken for ``BROKEN_FOR`` seconds and the
  request goes over TCP, as RFC 7838 section 2.4 allows and browsers do.
* A request that HTTP/3 did not process (GOAWAY, H3_REQUEST_REJECTED) or
  that failed before anything was sent is retried over TCP.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, final

import anyio
import anyio.abc

from hyper_core.body import Incoming
from hyper_core.client.conn import TrySendError, http3
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.rt import Timer
from hyper_util.client.legacy._errors import ReadTimeoutError, TotalTimeoutError
from hyper_util.client.legacy._wrappers import drive_sync

__all__ = ["BROKEN_FOR", "DEFAULT_ALT_SVC_MAX_AGE", "Http3Pool", "parse_alt_svc"]

#: Seconds an Alt-Svc entry lives without ``ma`` (RFC 7838 section 3.1: 24 h).
DEFAULT_ALT_SVC_MAX_AGE: Final = 86_400.0
#: Seconds an origin whose QUIC handshake failed is sent over TCP only.
BROKEN_FOR: Final = 300.0
#: Origins remembered in the Alt-Svc cache (a bound, not a policy).
_CACHE_SIZE: Final = 1024

_log = logging.getLogger("hyper_util.client")
_ENTRY = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*"([^"]*)"((?:\s*;\s*[^,;]*)*)')

Origin = tuple[str, str, int]


def parse_alt_svc(value: str) -> list[tuple[str, str, int, float]] | None:
    """The HTTP/3 alternatives of an ``Alt-Svc`` field: ``(protocol, host, port, max_age)``.

    Returns ``None`` for ``clear``. Only ``h3`` entries are kept; an empty
    host means the origin's own host.
    """
    if value.strip() == "clear":
        return None
    out: list[tuple[str, str, int, float]] = []
    for match in _ENTRY.finditer(value):
        protocol, authority, params = match.group(1), match.group(2), match.group(3)
        if protocol != "h3":
            continue
        host, _, port_text = authority.rpartition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            continue
        max_age = DEFAULT_ALT_SVC_MAX_AGE
        for param in params.split(";"):
            name, _, number = param.strip().partition("=")
            if name.strip() == "ma" and number.strip().isdigit():
                max_age = float(number.strip())
        out.append((protocol, host.strip("[]"), int(port_text), max_age))
    return out


@dataclass
class _Alternative:
    host: str  # "" means the origin's host
    port: int
    expires: float


@final
@dataclass
class _H3Connection:
    sender: http3.SendRequest | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    failed: bool = False
    scope: anyio.CancelScope | None = None


class Http3Pool:
    """The HTTP/3 connections of one pooled client (see the module docstring).

    Args:
        origins: Prior knowledge: ``"host"`` or ``"host:port"`` origins that
            speak HTTP/3 on their HTTPS port; ``"*"`` means every one.
        cafile: Trust only this CA file for QUIC (default: the OS store).
        verify: Verify certificates (never turn off outside tests).
        handshake_timeout: Seconds a QUIC handshake may take before the
            origin counts as broken and TCP carries the request.
        now: The clock (the client's timer).
    """

    def __init__(
        self,
        *,
        origins: Iterable[str] = (),
        cafile: str | None = None,
        verify: bool = True,
        handshake_timeout: float = 3.0,
        now: Callable[[], float],
    ) -> None:
        self._everywhere = False
        self._prior: set[tuple[str, int]] = set()
        for origin in origins:
            if origin == "*":
                self._everywhere = True
                continue
            host, _, port = origin.rpartition(":") if ":" in origin else (origin, "", "443")
            self._prior.add((host.lower().strip("[]"), int(port)))
        self._cafile = cafile
        self._verify = verify
        self._handshake_timeout = handshake_timeout
        self._now = now
        self._alternatives: dict[Origin, _Alternative] = {}
        self._broken: dict[Origin, float] = {}
        self._connections: dict[Origin, _H3Connection] = {}
        self.requests = 0  # sent over HTTP/3, for statistics

    # -- which origins ------------------------------------------------------------------

    def _target(self, key: Origin) -> tuple[str, int, bool] | None:
        """``(host, port, prior knowledge)`` for HTTP/3 to ``key``, or None for TCP."""
        scheme, host, port = key
        if scheme != "https":
            return None
        now = self._now()
        broken = self._broken.get(key)
        if broken is not None:
            if broken > now:
                return None
            del self._broken[key]
        if self._everywhere or (host, port) in self._prior:
            return host, port, True
        alternative = self._alternatives.get(key)
        if alternative is None:
            return None
        if alternative.expires <= now:
            del self._alternatives[key]
            return None
        return alternative.host or host, alternative.port, False

    def observe(self, key: Origin, response: Response[Any]) -> None:
        """Learn (or forget) HTTP/3 for ``key`` from an HTTPS response's ``Alt-Svc``."""
        if key[0] != "https":
            return
        value = response.headers.get("alt-svc")
        if value is None:
            return
        parsed = parse_alt_svc(value)
        if parsed is None:
            self._alternatives.pop(key, None)
            return
        if not parsed:
            return
        _, host, port, max_age = parsed[0]
        if len(self._alternatives) >= _CACHE_SIZE:
            self._alternatives.clear()
        self._alternatives[key] = _Alternative(host, port, self._now() + max_age)

    # -- sending -------------------------------------------------------------------------

    async def try_request(
        self,
        tg: anyio.abc.TaskGroup,
        key: Origin,
        request: Request[Any],
        timer: Timer,
        read_timeout: float | None,
        total_at: float,
    ) -> Response[Incoming] | None:
        """Send ``request`` over HTTP/3 if ``key`` speaks it; None means "use TCP".

        ``read_timeout`` and ``total_at`` bound the wait for the response
        head, as on TCP (the body is read without them: see the guide).

        Raises:
            ReadTimeoutError, TotalTimeoutError: No response head in time.
            HyperError: HTTP/3 carried (part of) the request and it failed.
        """
        target = self._target(key)
        if target is None:
            return None
        host, port, prior = target
        conn = self._connections.get(key)
        if conn is None or conn.failed or (conn.sender is not None and conn.sender.is_closed()):
            conn = _H3Connection()
            self._connections[key] = conn
            tg.start_soon(self._run, key, conn, host, port)
        if conn.sender is None:
            if not prior:
                return None  # discovered: TCP carries it while QUIC connects
            await conn.ready.wait()
            if conn.sender is None:
                return None  # the handshake failed: fall back to TCP
        read_at = math.inf if read_timeout is None else timer.now() + read_timeout
        at = min(read_at, total_at)
        response: Response[Incoming] | None = None
        try:
            if at == math.inf:
                response = await conn.sender.try_send_request(request)
            else:
                with timer.deadline(at):
                    response = await conn.sender.try_send_request(request)
        except TrySendError as exc:
            if exc.request is not None:
                return None  # not processed: TCP may carry it
            raise exc.error from None
        if response is None:
            if total_at <= read_at:
                raise TotalTimeoutError("the exchange took longer than the total timeout")
            raise ReadTimeoutError(f"no response head within the read timeout ({read_timeout} s)")
        self.requests += 1
        return response

    async def _run(self, key: Origin, conn: _H3Connection, host: str, port: int) -> None:
        from hyper_core import quic

        try:
            with anyio.CancelScope() as conn.scope:
                async with quic.connect(
                    host,
                    port,
                    server_name=key[1],
                    cafile=self._cafile,
                    verify=self._verify,
                    handshake_timeout=self._handshake_timeout,
                ) as connection:
                    sender, driver = await http3.handshake(connection)
                    conn.sender = sender
                    conn.ready.set()
                    await driver.serve()
        except (OSError, HyperError, ImportError, quic.QuicConnectionClosed) as exc:
            if conn.sender is None:
                _log.debug("HTTP/3 to %s:%d failed, using TCP: %s", host, port, exc)
                self._broken[key] = self._now() + BROKEN_FOR
        finally:
            conn.failed = True
            conn.ready.set()
            if self._connections.get(key) is conn:
                del self._connections[key]

    def close_all(self) -> None:
        """Close every HTTP/3 connection (GOAWAY, then close once streams finish)."""
        for conn in list(self._connections.values()):
            if conn.sender is not None:
                drive_sync(conn.sender.aclose())  # never waits
            elif conn.scope is not None:
                conn.scope.cancel()

    @property
    def open_connections(self) -> int:
        """QUIC connections open or being opened."""
        return len(self._connections)
