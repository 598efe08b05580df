"""HTTP/3 for the pooled client: prior knowledge, Alt-Svc discovery, fallback to TCP.

What belongs here: :class:`Http3Pool`, the pooled client's HTTP/3 half (one
QUIC connection per origin, shared by every request to it), the Alt-Svc
cache (RFC 7838) and :func:`parse_alt_svc`.

Strategy, from the request's point of view:

* An ``https`` origin is sent over HTTP/3 when it is known to speak it:
  listed as prior knowledge (``http3_origins``), or advertised by an
  ``Alt-Svc: h3=...`` field on an earlier HTTPS response (remembered for
  its ``ma`` max-age, 24 hours by default, cleared by ``Alt-Svc: clear``).
* Prior knowledge races the QUIC handshake against TCP (:func:`race_tcp`,
  happy eyeballs): QUIC gets ``RACE_DELAY`` seconds alone, then TCP starts
  too and the first that works carries the request; the other goes on (a
  QUIC connection for later requests, or a TCP one back to the pool). A
  discovered alternative never delays a request: its handshake starts in
  the background and requests keep using TCP until it is done.
* HTTP/3 response bodies get the pooled TCP bodies' limits: each piece
  within the read timeout, the whole exchange within the total timeout.
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
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, final

import anyio
import anyio.abc

from hyper_core.body import Incoming
from hyper_core.client.conn import TrySendError, http3
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.rt import Timer
from hyper_util.client.legacy._errors import ReadTimeoutError, TotalTimeoutError
from hyper_util.client.legacy._wrappers import PooledBodySource

__all__ = [
    "BROKEN_FOR",
    "DEFAULT_ALT_SVC_MAX_AGE",
    "RACE_DELAY",
    "H3Route",
    "Http3Pool",
    "parse_alt_svc",
    "race_tcp",
]

#: Seconds an Alt-Svc entry lives without ``ma`` (RFC 7838 section 3.1: 24 h).
DEFAULT_ALT_SVC_MAX_AGE: Final = 86_400.0
#: Seconds an origin whose QUIC handshake failed is sent over TCP only.
BROKEN_FOR: Final = 300.0
#: Seconds a prior-knowledge QUIC handshake runs alone before TCP joins the
#: race (RFC 8305's connection attempt delay; a loopback or LAN handshake
#: takes a few milliseconds, one across a continent ~100 ms).
RACE_DELAY: Final = 0.25
#: Origins remembered in the Alt-Svc cache (a bound, not a policy).
_CACHE_SIZE: Final = 1024

_log = logging.getLogger("hyper_util.client")
_ENTRY = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*"([^"]*)"((?:\s*;\s*[^,;]*)*)')

Origin = tuple[str, str, int]
T = TypeVar("T")


def _nothing(_complete: bool) -> None:
    pass


async def race_tcp(
    route: H3Route,
    tcp: Callable[[], Awaitable[T]],
    give_back: Callable[[T], None],
    *,
    delay: float = RACE_DELAY,
) -> T | None:
    """Race a QUIC handshake in progress against TCP; return TCP's result, or None (QUIC).

    As happy eyeballs (RFC 8305): QUIC gets ``delay`` seconds alone; then
    ``tcp()`` (the pooled client's ``acquire``) starts too, and the first
    that works carries the request. None means QUIC carries it
    (``route.sender`` is set), or QUIC failed within ``delay`` (the caller
    then uses TCP as usual). A TCP connection that arrives after QUIC won
    goes back with ``give_back``; one still connecting is cancelled. When
    TCP wins, the QUIC handshake goes on for later requests.

    Raises:
        Exception: what ``tcp()`` raised, when QUIC failed too.
    """
    with anyio.move_on_after(delay):
        await route.ready.wait()
    if route.ready.is_set():
        return None  # decided alone: QUIC is up, or it failed (the caller uses TCP)
    won: list[T] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as tg:

        async def run_tcp() -> None:
            try:
                won.append(await tcp())
            except Exception as exc:
                failed.append(exc)
                if not route.ready.is_set():
                    return  # QUIC may still work: wait for it
            tg.cancel_scope.cancel()

        async def run_quic() -> None:
            await route.ready.wait()
            if route.sender is not None or failed:
                tg.cancel_scope.cancel()  # QUIC works, or both failed

        tg.start_soon(run_tcp)
        tg.start_soon(run_quic)
    if route.sender is not None:
        for result in won:
            give_back(result)
        return None
    if won:
        return won[0]
    raise failed[0]


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
class H3Route:
    """One origin's QUIC connection: its sender once the handshake is done."""

    sender: http3.SendRequest | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)  # handshake done or failed
    failed: bool = False
    scope: anyio.CancelScope | None = None


class Http3Pool:
    """The HTTP/3 connections of one pooled client (see the module docstring).

    Args:
        origins: Prior knowledge: ``"host"`` or ``"host:port"`` origins that
            speak HTTP/3 on their HTTPS port; ``"*"`` means every one.
        cafile: Trust only this CA file for QUIC (default: the OS store).
        verify: Verify certificates (never turn off outside tests).
        ssl_context: Where ``cafile`` is not given, take the trusted CAs and
            whether to verify from this context (the one a TLS connector
            uses): QUIC's TLS is aioquic's own, so only those carry over.
            A context with no CA loaded as a file (the OS store by path)
            means the OS store.
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
        ssl_context: ssl.SSLContext | None = None,
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
        self._cadata: bytes | None = None
        self._verify = verify
        if cafile is None and ssl_context is not None:
            self._verify = verify and ssl_context.verify_mode != ssl.CERT_NONE
            # Loaded once: a bundle such as certifi's is ~140 certificates.
            ders = ssl_context.get_ca_certs(binary_form=True)
            if ders:
                self._cadata = "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders).encode()
        self._handshake_timeout = handshake_timeout
        self._now = now
        self._alternatives: dict[Origin, _Alternative] = {}
        self._broken: dict[Origin, float] = {}
        self._connections: dict[Origin, H3Route] = {}
        self._running = 0  # connection tasks
        self._all_closed: anyio.Event | None = None
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

    def route(self, tg: anyio.abc.TaskGroup, key: Origin) -> H3Route | None:
        """The HTTP/3 connection a request to ``key`` should use; None means "use TCP".

        Starts the QUIC handshake (in ``tg``) when the origin speaks HTTP/3
        and has no connection yet. A route whose ``sender`` is still None
        is a prior-knowledge origin whose handshake is running: the caller
        races it against TCP (:func:`race_tcp`). A discovered alternative
        that is not connected yet gives None: TCP carries the request while
        QUIC connects in the background.
        """
        target = self._target(key)
        if target is None:
            return None
        host, port, prior = target
        conn = self._connections.get(key)
        if conn is None or conn.failed or (conn.sender is not None and conn.sender.is_closed()):
            conn = H3Route()
            self._connections[key] = conn
            self._running += 1
            tg.start_soon(self._run, key, conn, host, port)
        if conn.sender is None and not prior:
            return None
        return conn

    async def send(
        self,
        route: H3Route,
        request: Request[Any],
        timer: Timer,
        read_timeout: float | None,
        total_at: float,
    ) -> Response[Incoming] | None:
        """Send ``request`` on ``route``'s connection; None means "not processed: use TCP".

        ``read_timeout`` bounds the wait for the response head and each
        piece of the body, ``total_at`` the whole exchange, as on TCP.

        Raises:
            ReadTimeoutError, TotalTimeoutError: No response head in time.
            HyperError: HTTP/3 carried (part of) the request and it failed.
        """
        sender = route.sender
        assert sender is not None
        read_at = math.inf if read_timeout is None else timer.now() + read_timeout
        at = min(read_at, total_at)
        response: Response[Incoming] | None = None
        try:
            if at == math.inf:
                response = await sender.try_send_request(request)
            else:
                with timer.deadline(at):
                    response = await sender.try_send_request(request)
        except TrySendError as exc:
            if exc.request is not None:
                return None  # not processed: TCP may carry it
            raise exc.error from None
        if response is None:
            if total_at <= read_at:
                raise TotalTimeoutError("the exchange took longer than the total timeout")
            raise ReadTimeoutError(f"no response head within the read timeout ({read_timeout} s)")
        self.requests += 1
        body = response.body
        if not body.is_end_stream() and at != math.inf:
            # The same per-piece and total limits as a pooled TCP body.
            source = PooledBodySource(body, _nothing, timer, read_timeout, total_at)
            response.body = Incoming(source)
        return response

    async def _run(self, key: Origin, conn: H3Route, host: str, port: int) -> None:
        from hyper_core import quic

        try:
            with anyio.CancelScope() as conn.scope:
                async with quic.connect(
                    host,
                    port,
                    server_name=key[1],
                    cafile=self._cafile,
                    cadata=self._cadata,
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
        except Exception:
            # Anything else (a bug here or in aioquic, a warning turned into
            # an error while it parses certificates) must not end the
            # client's task group and with it every request: TCP carries on.
            _log.warning("HTTP/3 to %s:%d failed, using TCP", host, port, exc_info=True)
            self._broken[key] = self._now() + BROKEN_FOR
        finally:
            conn.failed = True
            conn.ready.set()
            if self._connections.get(key) is conn:
                del self._connections[key]
            self._running -= 1
            if self._running == 0 and self._all_closed is not None:
                self._all_closed.set()

    def close_all(self) -> None:
        """Close every HTTP/3 connection (GOAWAY, then close once streams finish)."""
        for conn in list(self._connections.values()):
            if conn.sender is not None:
                conn.sender.close()
            elif conn.scope is not None:
                conn.scope.cancel()

    async def wait_closed(self) -> None:
        """Wait until every connection's task ended (after :meth:`close_all`).

        A connection that was told to close sends GOAWAY, waits for the
        server to acknowledge it, and closes with H3_NO_ERROR
        (CONNECTION_CLOSE); without this wait, cancelling it cuts that short.
        """
        if self._running:
            self._all_closed = done = anyio.Event()
            await done.wait()

    @property
    def active_streams(self) -> int:
        """Requests in flight over HTTP/3."""
        return sum(c.sender.active_streams for c in self._connections.values() if c.sender)

    def connect_protocol_enabled(self, key: Origin) -> bool:
        """Whether ``key`` is sent over an open HTTP/3 connection allowing extended CONNECT."""
        conn = self._connections.get(key)
        sender = None if conn is None else conn.sender
        return (
            sender is not None
            and not sender.is_closed()
            and self._target(key) is not None
            and sender.is_extended_connect_protocol_enabled()
        )

    @property
    def open_connections(self) -> int:
        """QUIC connections open or being opened."""
        return len(self._connections)
