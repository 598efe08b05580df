"""hyper-core: HTTP/1.1 and HTTP/2 connections, client and server, on anyio.

The names most programs need are re-exported here; everything else lives in
its module (:mod:`hyper_core.http`, :mod:`hyper_core.body`,
:mod:`hyper_core.rt`, :mod:`hyper_core.error`, :mod:`hyper_core.server.conn`,
:mod:`hyper_core.client.conn`, :mod:`hyper_core.upgrade`).
"""

from __future__ import annotations

from hyper_core.body import Body, Empty, Full, Incoming, StreamBody, collect
from hyper_core.error import HyperError
from hyper_core.http import Headers, Method, Request, Response, StatusCode, Uri, Version

__version__ = "0.1.0"

__all__ = [
    "Body",
    "Empty",
    "Full",
    "Headers",
    "HyperError",
    "Incoming",
    "Method",
    "Request",
    "Response",
    "StatusCode",
    "StreamBody",
    "Uri",
    "Version",
    "__version__",
    "collect",
]
