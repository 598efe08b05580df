"""Opening a connection for the pooled client: the connector call under its deadlines.

What belongs here: :func:`open_io`, which asks the connector for a
connection to an origin within the connect timeout and the total deadline,
and turns whatever goes wrong into the client's connect errors. The HTTP
handshake and the driver task that follow are the client's.

Strategy: one deadline scope (the nearer of the two limits) around the
connector call; afterwards, which limit was nearer says which timeout error
to raise. Errors the connector raises as ``ClientError`` (``ConnectError``,
``ProxyError``...) pass through; raw ``OSError`` / anyio stream errors from a
connector that does not translate them become ``ConnectError``.
"""

from __future__ import annotations

import math
from typing import Final

import anyio

from hyper_core.error import HyperError
from hyper_core.http import Uri, UriForm
from hyper_core.rt import IO, Timer
from hyper_util.client.legacy._errors import (
    ClientError,
    ConnectError,
    ConnectTimeoutError,
    TotalTimeoutError,
)
from hyper_util.client.legacy._pooled import PoolKey
from hyper_util.client.legacy.connect._http import Connected, Connector

__all__ = ["open_io"]

_NEVER: Final = math.inf


async def open_io(
    connector: Connector,
    key: PoolKey,
    uri: Uri,
    *,
    timer: Timer,
    connect_timeout: float | None,
    total_at: float,
) -> tuple[IO, Connected]:
    """Connect to ``key``'s origin through ``connector``.

    Args:
        connector: Opens the connection.
        key: ``(scheme, host, port)`` of the origin.
        uri: The request's URI (absolute, or authority-form for CONNECT,
            which is given to the connector as ``scheme://host:port/``).
        timer: The clock of the deadlines.
        connect_timeout: Seconds the connect may take (``None``: no limit).
        total_at: The request's total deadline on ``timer``'s clock.

    Raises:
        ConnectTimeoutError: ``connect_timeout`` passed first.
        TotalTimeoutError: The total deadline passed first.
        ConnectError: The connector failed (its own ``ClientError`` as is).

    Cancel safety: the connector's (a cancelled connect leaves nothing open).
    """
    scheme, host, port = key
    target = uri
    if uri.form is not UriForm.ABSOLUTE:
        target = Uri.from_parts(scheme=scheme, authority=uri.authority, path_and_query="/")
    connect_at = _NEVER if connect_timeout is None else timer.now() + connect_timeout
    at = min(connect_at, total_at)
    result: tuple[IO, Connected] | None = None
    try:
        if at == _NEVER:
            result = await connector.connect(target)
        else:
            with timer.deadline(at):
                result = await connector.connect(target)
    except ClientError:
        raise
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, HyperError) as exc:
        raise ConnectError(f"connecting to {host}:{port} failed: {exc}") from exc
    if result is None:
        if total_at <= connect_at:
            raise TotalTimeoutError("the exchange took longer than the total timeout")
        raise ConnectTimeoutError(
            f"connecting to {host}:{port} took longer than {connect_timeout} s"
        )
    return result
