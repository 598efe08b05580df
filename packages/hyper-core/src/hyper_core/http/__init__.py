"""HTTP types: methods, status codes, versions, headers, URIs, messages.

What belongs here: the re-exports of the public names of the ``_x``
modules of this package; nothing is defined here.
"""

from __future__ import annotations

from hyper_core.http._extensions import Extensions
from hyper_core.http._headers import HeaderInit, Headers
from hyper_core.http._message import Request, Response
from hyper_core.http._method import Method
from hyper_core.http._status import StatusCode
from hyper_core.http._uri import Uri, UriForm
from hyper_core.http._version import Version

__all__ = [
    "Extensions",
    "HeaderInit",
    "Headers",
    "Method",
    "Request",
    "Response",
    "StatusCode",
    "Uri",
    "UriForm",
    "Version",
]
