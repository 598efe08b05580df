"""Requests and responses.

What belongs here: :class:`Request` and :class:`Response`, generic in the
type of their body.

Strategy: plain ``__slots__`` records with public attributes, as
``http::Request`` and ``http::Response`` are plain structs. Two doors:

* the public constructors convert and validate what a user gives (``str``
  methods, URIs and header pairs become :class:`Method`, :class:`Uri` and
  :class:`Headers`; a :class:`Headers` given is copied, so one shared
  instance can never be changed through a message);
* ``from_parts`` takes
  ready-made parts, each already a validated :class:`Method`, :class:`Uri`,
  :class:`Headers` ..., and stores them without conversion or copy, so
  building the message of a received request, or a client's rewritten copy
  of a request, costs one object and a few slot writes.

Most messages never carry an extension, so ``extensions`` is a property that
creates the :class:`Extensions` map on first access.

The default body is ``hyper_core.body.Empty()``. ``hyper_core.body`` imports
this package (for :class:`Headers`), so it is imported lazily on the first
message built without a body, never at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from hyper_core.http._extensions import Extensions
from hyper_core.http._headers import HeaderInit, Headers, _headers_of
from hyper_core.http._method import Method
from hyper_core.http._status import _BY_CODE, StatusCode
from hyper_core.http._uri import Uri
from hyper_core.http._version import Version

if TYPE_CHECKING:
    from hyper_core.body import Empty

__all__ = ["Request", "Response"]

B = TypeVar("B")
_T = TypeVar("_T")

_empty_type: type[Empty] | None = None


def _empty() -> Empty:
    global _empty_type
    if _empty_type is None:
        from hyper_core.body import Empty

        _empty_type = Empty
    return _empty_type()


class Request(Generic[B]):
    """An HTTP request.

    Args:
        method: The method; a ``str`` is validated as a token.
        uri: The request target; ``str`` or ``bytes`` is parsed.
        headers: Header fields: a :class:`Headers` (copied), a mapping or
            ``(name, value)`` pairs.
        body: The body; ``None`` means ``hyper_core.body.Empty()``.
        version: The HTTP version.
        extensions: Per-message data; ``None`` means a new, empty map.

    Raises:
        InvalidMethod: If ``method`` is not a token.
        InvalidUri: If ``uri`` is not a valid request target.
        InvalidHeader: If a header name or value is invalid.

    Attributes:
        method: The method.
        uri: The request target.
        version: The HTTP version.
        headers: The header fields.
        body: The body.
    """

    __slots__ = ("_extensions", "body", "headers", "method", "uri", "version")

    method: Method
    uri: Uri
    version: Version
    headers: Headers
    _extensions: Extensions | None
    body: B

    @overload
    def __init__(
        self: Request[Empty],
        method: str = "GET",
        uri: str | bytes | Uri = "/",
        *,
        headers: HeaderInit | None = None,
        body: None = None,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        method: str = "GET",
        uri: str | bytes | Uri = "/",
        *,
        headers: HeaderInit | None = None,
        body: B,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None: ...
    def __init__(
        self,
        method: str = "GET",
        uri: str | bytes | Uri = "/",
        *,
        headers: HeaderInit | None = None,
        body: Any = None,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None:
        self.method = Method(method)
        self.uri = uri if type(uri) is Uri else Uri(uri)
        self.version = version
        self.headers = _headers_of(headers)
        self._extensions = extensions
        if body is None:
            body = _empty()
        self.body = body

    @classmethod
    def from_parts(
        cls,
        method: Method,
        uri: Uri,
        version: Version,
        headers: Headers,
        body: B,
        extensions: Extensions | None = None,
    ) -> Request[B]:
        """Assemble a request from ready-made parts: no conversion, no copy.

        The trusted factory, for code that already holds typed parts (a codec,
        a client rewriting a request for one connection): the parts are
        stored as they are and shared with whoever else holds them, so a
        :class:`Headers` given here is not copied. Each part must already be
        of its type (:class:`Method`, :class:`Uri`, :class:`Version`,
        :class:`Headers`, :class:`Extensions` or ``None``); nothing is checked.
        Use the constructor for anything else.
        """
        request: Request[B] = object.__new__(cls)
        request.method = method
        request.uri = uri
        request.version = version
        request.headers = headers
        request._extensions = extensions
        request.body = body
        return request

    # Most messages never carry an extension: the map is made on first use.
    @property
    def extensions(self) -> Extensions:
        """Per-message data keyed by type."""
        extensions = self._extensions
        if extensions is None:
            extensions = self._extensions = Extensions()
        return extensions

    @extensions.setter
    def extensions(self, value: Extensions) -> None:
        self._extensions = value

    def extension(self, cls: type[_T]) -> _T | None:
        """The extension stored under ``cls``, or None; a read that never creates the map."""
        extensions = self._extensions
        return None if extensions is None else extensions.get(cls)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} {self.version}>"


class Response(Generic[B]):
    """An HTTP response.

    Args:
        status: The status code, 100-999.
        headers: Header fields: a :class:`Headers` (copied), a mapping or
            ``(name, value)`` pairs.
        body: The body; ``None`` means ``hyper_core.body.Empty()``.
        version: The HTTP version.
        extensions: Per-message data; ``None`` means a new, empty map.

    Raises:
        InvalidStatusCode: If ``status`` is outside 100-999.
        InvalidHeader: If a header name or value is invalid.

    Attributes:
        status: The status code.
        version: The HTTP version.
        headers: The header fields.
        body: The body.
    """

    __slots__ = ("_extensions", "body", "headers", "status", "version")

    status: StatusCode
    version: Version
    headers: Headers
    _extensions: Extensions | None
    body: B

    @overload
    def __init__(
        self: Response[Empty],
        status: int = 200,
        *,
        headers: HeaderInit | None = None,
        body: None = None,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        status: int = 200,
        *,
        headers: HeaderInit | None = None,
        body: B,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None: ...
    def __init__(
        self,
        status: int = 200,
        *,
        headers: HeaderInit | None = None,
        body: Any = None,
        version: Version = Version.HTTP_11,
        extensions: Extensions | None = None,
    ) -> None:
        # The interned instance straight from the table: skips a Python-level
        # __new__ call for the usual case of a plain int in range.
        code = _BY_CODE.get(status) if type(status) is int else None
        self.status = StatusCode(status) if code is None else code
        self.version = version
        self.headers = _headers_of(headers)
        self._extensions = extensions
        if body is None:
            body = _empty()
        self.body = body

    @classmethod
    def from_parts(
        cls,
        status: StatusCode,
        version: Version,
        headers: Headers,
        body: B,
        extensions: Extensions | None = None,
    ) -> Response[B]:
        """Assemble a response from ready-made parts: no conversion, no copy.

        The trusted factory, as :meth:`Request.from_parts`: ``status`` must be
        a :class:`StatusCode`, ``headers`` a :class:`Headers` (shared, not
        copied); nothing is checked.
        """
        response: Response[B] = object.__new__(cls)
        response.status = status
        response.version = version
        response.headers = headers
        response._extensions = extensions
        response.body = body
        return response

    # Most messages never carry an extension: the map is made on first use.
    @property
    def extensions(self) -> Extensions:
        """Per-message data keyed by type."""
        extensions = self._extensions
        if extensions is None:
            extensions = self._extensions = Extensions()
        return extensions

    @extensions.setter
    def extensions(self, value: Extensions) -> None:
        self._extensions = value

    def extension(self, cls: type[_T]) -> _T | None:
        """The extension stored under ``cls``, or None; a read that never creates the map."""
        extensions = self._extensions
        return None if extensions is None else extensions.get(cls)

    def __repr__(self) -> str:
        reason = self.status.reason
        return f"<Response {int(self.status)}{' ' if reason else ''}{reason} {self.version}>"
