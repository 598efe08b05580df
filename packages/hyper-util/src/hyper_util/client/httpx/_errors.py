"""Which httpx exception a failure of the pooled client becomes.

What belongs here: :func:`to_httpx`, the one translation used by both
transports, when a request fails and when a response body fails.

Rules (httpx's own ``map_httpcore_exceptions`` is the model):

1. The most specific httpx class wins, chained ``from`` the original, with
   the original's message (plus the OS error that caused it, when there is
   one, since hyper's messages leave that to ``__cause__``).
2. A network failure becomes ``ReadError`` or ``WriteError`` according to
   what was going on: writing the request, or reading the response. A peer
   that closed cleanly in the middle of a message broke the protocol:
   ``RemoteProtocolError``, as httpcore reports "Server disconnected
   without sending a response".
3. Anything that is neither hyper's nor a network error (an exception from
   the user's request body, a bug) is not translated: httpx lets it through
   too.
"""

from __future__ import annotations

from typing import Final

import anyio
import httpx

from hyper_core.error import (
    ClosedError,
    HeaderTimeoutError,
    HyperError,
    IncompleteMessageError,
    ShutdownError,
    UserError,
)
from hyper_core.error import TimeoutError as HyperTimeoutError
from hyper_util.client.legacy import (
    ConnectError,
    ConnectTimeoutError,
    PoolTimeoutError,
    ProxyError,
    ReadTimeoutError,
    WriteTimeoutError,
)

__all__ = ["to_httpx"]

#: Checked in order: subclasses before their bases.
_RULES: Final[tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]] = (
    (ProxyError, httpx.ProxyError),
    (ConnectTimeoutError, httpx.ConnectTimeout),
    (ConnectError, httpx.ConnectError),
    (PoolTimeoutError, httpx.PoolTimeout),
    (ReadTimeoutError, httpx.ReadTimeout),
    (HeaderTimeoutError, httpx.ReadTimeout),
    (WriteTimeoutError, httpx.WriteTimeout),
    (HyperTimeoutError, httpx.TimeoutException),
    (ShutdownError, httpx.WriteError),
    # Invalid headers, URIs and methods are UserErrors' ValueError siblings.
    (UserError, httpx.LocalProtocolError),
    (ValueError, httpx.LocalProtocolError),
)

#: What the runtime raises when the connection itself fails.
_NETWORK: Final = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


def _network_cause(exc: BaseException) -> BaseException | None:
    """The OS or stream error behind ``exc``, if the connection itself failed.

    Only the explicit chain (``raise ... from``) counts. The implicit context
    says which exception was being handled when ``exc`` was raised, and under
    the compiled build that can be another task's: mypyc's coroutines share
    the thread's handled-exception state (docs/performance.md).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _NETWORK):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def to_httpx(exc: Exception, *, receiving: bool) -> httpx.TransportError | None:
    """The httpx exception to raise (``from exc``) for ``exc``, or ``None`` to let it through.

    Args:
        exc: What the pooled client (or a response body) raised.
        receiving: The response was being read (a network failure is then a
            ``ReadError``); otherwise the request was being sent, and a
            network failure before any response is a ``WriteError`` when it
            happened while writing, a ``ReadError`` while waiting.
    """
    message = str(exc)
    if isinstance(exc, HyperError):
        for kind, mapped in _RULES:
            if isinstance(exc, kind):
                return mapped(message)
        cause = _network_cause(exc)
        if cause is None:
            # Parse and protocol errors, a peer that closed mid-message, a
            # stream reset: all the server's doing.
            return httpx.RemoteProtocolError(message)
        detail = f"{message}: {cause}" if str(cause) else message
        if not receiving and isinstance(exc, ClosedError):
            return httpx.WriteError(detail)  # "connection closed while writing the request"
        if isinstance(exc, IncompleteMessageError | ClosedError) or receiving:
            return httpx.ReadError(detail)
        return httpx.RemoteProtocolError(detail)
    if isinstance(exc, _NETWORK):
        detail = str(exc) or type(exc).__name__
        return httpx.ReadError(detail) if receiving else httpx.WriteError(detail)
    return None
