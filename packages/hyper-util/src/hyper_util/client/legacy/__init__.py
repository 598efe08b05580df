"""hyper-util's pooled client (hyper-util's ``client::legacy``).

What belongs here: the re-exports of the client, its errors and statistics;
the connectors are in :mod:`hyper_util.client.legacy.connect`.
"""

from __future__ import annotations

from hyper_util.client.legacy import connect
from hyper_util.client.legacy._client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_IDLE_TIMEOUT,
    Client,
    ClientStatistics,
)
from hyper_util.client.legacy._errors import (
    ClientError,
    ClientTimeoutError,
    ConnectError,
    ConnectTimeoutError,
    InvalidRequestError,
    PoolTimeoutError,
    ProxyAuthRequiredError,
    ProxyError,
    ReadTimeoutError,
    TotalTimeoutError,
    WriteTimeoutError,
)
from hyper_util.client.legacy._timeouts import Timeouts
from hyper_util.client.legacy.connect import Connected, Connector, HttpConnector

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_POOL_IDLE_TIMEOUT",
    "Client",
    "ClientError",
    "ClientStatistics",
    "ClientTimeoutError",
    "ConnectError",
    "ConnectTimeoutError",
    "Connected",
    "Connector",
    "HttpConnector",
    "InvalidRequestError",
    "PoolTimeoutError",
    "ProxyAuthRequiredError",
    "ProxyError",
    "ReadTimeoutError",
    "Timeouts",
    "TotalTimeoutError",
    "WriteTimeoutError",
    "connect",
]
