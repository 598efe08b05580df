"""Extensions to HTTP messages that only some protocol versions understand.

What belongs here: the values that connections read from or put into a
message's :class:`~hyper_core.http.Extensions` (hyper's ``hyper::ext``):

* :class:`ReasonPhrase` (HTTP/1): a server writes it instead of the canonical
  reason; a client adds it to a response whose reason differs from the
  canonical one.
* :class:`HeaderCaseMap` (HTTP/1): the original spelling of received header
  names, recorded when ``preserve_header_case`` is on and reused on output.
* :func:`on_informational` (clients): a callback for each 1xx
  response other than 101.
* :func:`send_informational` (servers): write a 1xx
  response, such as ``103 Early Hints``, before the final one.
* :func:`on_client_gone` (servers): learn that the client
  went away while the service runs or its response body is written.
* :func:`on_write` (both roles): hear when a message's head, body data and
  end were written, or that it failed, with byte counts
  (:class:`WriteEvent`, :class:`WriteStage`).

Strategy: each value is its own small final class, stored under its type,
so a lookup is one dict access and unrelated extensions never collide.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Final, final

from hyper_core._exchange import Exchange as _Exchange
from hyper_core._write_report import WriteCallback, WriteEvent, WriteStage
from hyper_core._write_report import WriteReport as _WriteReport
from hyper_core.error import HyperError, UserError
from hyper_core.http import Headers, Request, Response, Version
from hyper_core.http._headers import HeaderInit as _HeaderInit

__all__ = [
    "HeaderCaseMap",
    "InformationalResponse",
    "InvalidReasonPhrase",
    "ReasonPhrase",
    "WriteCallback",
    "WriteEvent",
    "WriteStage",
    "on_client_gone",
    "on_informational",
    "on_write",
    "send_informational",
]

# RFC 9112 section 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
_REASON_RE: Final = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")


class InvalidReasonPhrase(HyperError, ValueError):
    """A reason phrase holds a byte that a status line cannot carry."""


@final
class ReasonPhrase:
    """The reason phrase of an HTTP/1 status line, e.g. ``b"Cool"``.

    Args:
        value: The phrase, as ``bytes`` or a latin-1 ``str``.

    Raises:
        InvalidReasonPhrase: a byte other than HTAB, SP, VCHAR or obs-text.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes | str) -> None:
        if isinstance(value, str):
            try:
                value = value.encode("latin-1")
            except UnicodeEncodeError as exc:
                raise InvalidReasonPhrase(f"reason phrase is not latin-1: {value!r}") from exc
        if _REASON_RE.fullmatch(value) is None:
            raise InvalidReasonPhrase(f"invalid byte in reason phrase {value!r}")
        self._value = bytes(value)

    @classmethod
    def _from_trusted(cls, value: bytes) -> ReasonPhrase:
        """Wrap bytes already checked by a parser."""
        phrase = cls.__new__(cls)
        phrase._value = value
        return phrase

    def as_bytes(self) -> bytes:
        """The phrase as bytes."""
        return self._value

    def __bytes__(self) -> bytes:
        return self._value

    def __str__(self) -> str:
        return self._value.decode("latin-1")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReasonPhrase):
            return self._value == other._value
        if isinstance(other, bytes):
            return self._value == other
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"ReasonPhrase({self._value!r})"


@final
class HeaderCaseMap:
    """The original spelling of header names, in order of appearance.

    :class:`~hyper_core.http.Headers` already keeps the case of the names it
    is given, so a message received and forwarded as is keeps its spelling.
    This map matters when the fields are rebuilt (copied into new Headers,
    or set by code that writes lower-case names): a connection with
    ``preserve_header_case`` records the received spelling here and, when
    it writes a message carrying a map, spells each field's name as the map
    says (the n-th field of a name takes the n-th recorded spelling, the
    last one when there are more fields than spellings).
    """

    __slots__ = ("_names",)

    def __init__(self, names: Iterable[bytes | str] = ()) -> None:
        self._names: dict[bytes, list[bytes]] = {}
        for name in names:
            raw = name.encode("ascii") if isinstance(name, str) else bytes(name)
            self._names.setdefault(raw.lower(), []).append(raw)

    @classmethod
    def from_fields(cls, fields: Iterable[tuple[bytes, bytes]]) -> HeaderCaseMap:
        """Record the names of received ``(name, value)`` pairs."""
        return cls(name for name, _ in fields)

    def get_all(self, name: bytes | str) -> list[bytes]:
        """Every recorded spelling of ``name`` (any case), in order."""
        key = name.encode("ascii") if isinstance(name, str) else name
        return list(self._names.get(key.lower(), ()))

    def __len__(self) -> int:
        return sum(len(spellings) for spellings in self._names.values())

    def apply(self, fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """Return ``fields`` with each name spelled as recorded (others unchanged)."""
        if not self._names:
            return fields
        seen: dict[bytes, int] = {}
        out: list[tuple[bytes, bytes]] = []
        for name, value in fields:
            key = name.lower()
            spellings = self._names.get(key)
            if spellings:
                index = seen.get(key, 0)
                seen[key] = index + 1
                name = spellings[min(index, len(spellings) - 1)]
            out.append((name, value))
        return out

    def __repr__(self) -> str:
        return f"HeaderCaseMap({[n for names in self._names.values() for n in names]!r})"


@final
class InformationalResponse:
    """A 1xx response (other than 101) seen by a client connection.

    Attributes:
        status: The status code, 100-199.
        version: The HTTP version of the response.
        headers: Its header fields.
    """

    __slots__ = ("headers", "status", "version")

    def __init__(self, status: int, version: Version, headers: Headers) -> None:
        self.status = status
        self.version = version
        self.headers = headers

    def __repr__(self) -> str:
        return f"InformationalResponse(status={self.status}, version={self.version})"


InformationalCallback = Callable[[InformationalResponse], None]


@final
class _OnInformational:
    """The extension value under which :func:`on_informational` stores its callback."""

    __slots__ = ("callback",)

    def __init__(self, callback: InformationalCallback) -> None:
        self.callback = callback


def on_informational(request: Request[Any], callback: InformationalCallback) -> None:
    """Call ``callback`` for each 1xx response (other than 101) to ``request``.

    HTTP/1, HTTP/2 and HTTP/3 clients. The callback runs synchronously inside the
    connection while it reads the response, so it must be quick and must not
    raise; an exception it raises fails the request.
    """
    request.extensions.insert(_OnInformational(callback))


def _get_on_informational(request: Request[Any]) -> InformationalCallback | None:
    """Connection side: the callback stored by :func:`on_informational`, if any."""
    stored = request.extensions.get(_OnInformational)
    return None if stored is None else stored.callback


def _exchange(request: Request[Any]) -> _Exchange:
    extensions = request._extensions
    exchange = None if extensions is None else extensions.get(_Exchange)
    if exchange is None:
        raise UserError("the request did not come from a hyper-core server connection")
    return exchange


async def send_informational(
    request: Request[Any], status: int, headers: _HeaderInit | None = None
) -> None:
    """Write an informational (1xx) response to ``request`` before its final response.

    For ``103 Early Hints`` (RFC 8297) and the like; a service calls it while
    it runs, as often as it likes, before it returns the final response (or,
    for a streamed response, before the connection starts writing it). HTTP/1.1,
    HTTP/2 and HTTP/3 server connections support it. An HTTP/1.0 client cannot be sent
    a 1xx (RFC 9110 section 15.2), so there the call does nothing.

    Args:
        request: A request a server connection gave the service.
        status: 100 to 199, except 101 (upgrades are a final response).
        headers: The header fields of the 1xx response.

    Raises:
        UserError: ``status`` is not an informational status other than 101,
            the request did not come from a server connection, the final
            response has started, or the client went away.
        hyper_core.error.InvalidHeader: a header field is invalid.

    Cancel safety: cancelled while the head is written, the connection is
    unusable (it closes); the service is being cancelled anyway.
    """
    if type(status) is not int or not 100 <= status <= 199 or status == 101:
        raise UserError(f"an informational response needs a 1xx status other than 101 ({status})")
    fields = Headers(headers).raw() if headers is not None else []
    await _exchange(request).send_informational(status, fields)


def on_client_gone(request: Request[Any], callback: Callable[[], None]) -> None:
    """Call ``callback`` once if the client goes away before the response is complete.

    HTTP/1: the connection watches the socket for an end of stream or a reset
    while the service runs (once the request body has been read) and while a
    streamed response body is written; with ``half_close`` on, an end of
    stream is not a departure. HTTP/2: the client reset the stream, or the
    connection was lost. HTTP/3: the client reset the request stream or sent
    STOP_SENDING, or the QUIC connection closed. On either protocol, a connection that closes before
    the response is complete (a failed write, a shutdown timeout) counts too.
    Once the response is complete the callback is dropped unrun. If the
    client is already gone, ``callback`` runs at once.

    The callback runs synchronously in the connection's task: it must be quick
    and must not raise (set an event, cancel a scope). The connection also
    cancels the service when the client leaves, as it always does; the
    callback is how a service that hands work to other tasks tells them.

    Raises:
        UserError: the request did not come from a server connection.
    """
    _exchange(request).add_callback(callback)


def on_write(message: Request[Any] | Response[Any], callback: WriteCallback) -> None:
    """Call ``callback`` as the connection writes ``message``: head, data, end or failure.

    Put it on the ``Response`` a service returns (servers) or on the
    ``Request`` given to a client connection or the pooled client. HTTP/1.1
    and HTTP/2, both roles; HTTP/3 connections do not report (yet). The
    callback gets a :class:`WriteEvent` for each stage, in this order:

    * ``HEAD`` once the head was written (``head_bytes``);
    * ``DATA`` after each write of body data (``chunk_bytes``, and the
      running ``body_bytes``);
    * then exactly one of ``FINISHED`` (the whole message, end and trailers
      included, was written) or ``FAILED`` (with ``error``: the peer went
      away, the stream was reset, the body raised, or the connection closed
      before the message could be written, even before its head).

    *Written* means handed to the transport, not received by the peer: the
    IO's ``send`` returned (on HTTP/2, the connection's ``send`` of the
    frames carrying the bytes, hence within flow control). On trio that is
    the kernel's socket buffer; on asyncio and uvloop it is the event
    loop's transport buffer, which the loop empties into the kernel by
    itself and which holds at most its high-water mark (64 KiB by default)
    beyond what the kernel took. A peer that stops reading stops the
    reports once those buffers are full.

    A message carrying the hook is written as a stream, its head first,
    even when its body is ``Full`` (a separate send for the head on
    HTTP/1), so that each report is true when it arrives.

    The callback runs synchronously in the connection's task: it must be
    quick (set an event, count); an exception it raises is logged at ERROR
    and ignored. Calling ``on_write`` again adds a callback; one message is
    written once (do not reuse an observed message object).
    """
    extensions = message.extensions
    report = extensions.get(_WriteReport)
    if report is None:
        extensions.insert(_WriteReport(callback))
    else:
        report.add(callback)
