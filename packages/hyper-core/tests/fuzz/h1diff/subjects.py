"""The parsers under comparison, each behind one function: bytes in, an :class:`Outcome` out.

What belongs here: the three subjects of the differential harness (our
native codec, bare ``h11.Connection`` and llhttp through the ``llhttp``
package), how each is driven over a byte stream, and the normalisation that
makes their answers comparable. No judgement: that is ``policy.py``.

Strategy: every subject is driven the way a real server or client would
drive it. A server answers each request with an empty ``200`` and starts the
next cycle, so pipelined requests are all parsed; a client sends one request
(``GET``, ``HEAD``, ``POST``, ``CONNECT`` or an ``Upgrade`` GET) and reads
the interim responses and the one final response to it. The stream stops
after a message that ends the connection (not keep-alive), switches
protocols (``CONNECT``, ``Upgrade``, ``101``) or after the final response.
What each subject says is reduced to an :class:`Outcome`: the messages it
parsed (start line, normalised fields, body, trailers, keep-alive) and
whether the stream ended cleanly (``ok``) or was refused (``reject``, an
error or an EOF in the middle of a message). Two outcomes are equal when the
parsers agree on accept/reject, every message boundary and every body byte.

Normalisation covers only how the libraries *report* a field, never what
they decide: names lower-cased, values without surrounding whitespace,
``Transfer-Encoding`` values lower-cased (h11 does so), and Content-Length
fields collapsed into one (h11 keeps one of several equal values; when
Transfer-Encoding is present, hyper removes them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import h11
import llhttp

from hyper_core.error import IncompleteMessageError, ParseError
from hyper_core.proto.h1 import (
    NEED_DATA,
    PAUSED,
    CodecState,
    ConnectionClosed,
    Data,
    EndOfMessage,
    RequestHead,
    ResponseHead,
    Role,
    new_codec,
)

__all__ = [
    "REQUESTS",
    "Case",
    "Message",
    "Outcome",
    "run_h11",
    "run_llhttp",
    "run_native",
]

Fields = tuple[tuple[bytes, bytes], ...]

#: What a client case sends before reading the response stream.
REQUESTS: Final = ("GET", "HEAD", "POST", "CONNECT", "UPGRADE")
#: The head limits every subject is given (h11's default is 16 KiB).
MAX_HEAD: Final = 417_792


@dataclass(frozen=True)
class Case:
    """One input: a byte stream for a server (``request``) or a client (``response``).

    Attributes:
        role: ``"request"``: the bytes a server receives; ``"response"``: the
            bytes a client receives after sending ``request``.
        data: The byte stream; EOF follows it.
        request: (responses) what the client sent: one of :data:`REQUESTS`.
    """

    role: str
    data: bytes
    request: str = "GET"


@dataclass(frozen=True)
class Message:
    """One parsed message, normalised (see the module docstring)."""

    start: tuple[object, ...]  # (method, target, version) or (status, reason, version)
    fields: Fields
    body: bytes = b""
    trailers: Fields = ()
    keep_alive: bool | None = None  # None for an interim (1xx) response or a tunnel


@dataclass(frozen=True)
class Outcome:
    """What one subject made of one :class:`Case`."""

    messages: tuple[Message, ...]
    end: str  # "ok" or "reject"
    detail: str = field(default="", compare=False)  # the error, for reports and rules

    @property
    def accepted(self) -> bool:
        """The whole stream was parsed without an error."""
        return self.end == "ok"

    def framing(self) -> tuple[tuple[bytes, Fields], ...]:
        """Where each message ends: its body and trailers, nothing else."""
        return tuple((m.body, m.trailers) for m in self.messages)


def normalise(pairs: Iterable[tuple[bytes, bytes]]) -> Fields:
    """Fields as compared: see the module docstring."""
    out: list[tuple[bytes, bytes]] = []
    lengths: set[bytes] = set()
    length_at = -1
    chunked = False
    for raw_name, raw_value in pairs:
        name = bytes(raw_name).lower()
        value = bytes(raw_value).strip(b" \t")
        if name == b"transfer-encoding":
            chunked = True
            value = value.lower()
        if name == b"content-length":
            lengths.update(v.strip(b" \t") for v in value.split(b","))
            if length_at < 0:
                length_at = len(out)
                out.append((name, b""))
            continue
        out.append((name, value))
    if length_at >= 0:
        if chunked:
            del out[length_at]
        else:
            out[length_at] = (b"content-length", b",".join(sorted(lengths)))
    return tuple(out)


def _terminal(message: Message) -> bool:
    """The connection carries nothing after this message (close or switch)."""
    if message.keep_alive is False:
        return True
    if message.start and message.start[0] == b"CONNECT":
        return True
    return any(name == b"upgrade" for name, _ in message.fields)


def _client_request(kind: str) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    fields = [(b"host", b"example.test")]
    if kind == "CONNECT":
        return b"CONNECT", b"example.test:443", fields
    if kind == "UPGRADE":
        fields += [(b"connection", b"upgrade"), (b"upgrade", b"websocket")]
        return b"GET", b"/", fields
    return kind.encode(), b"/", fields


def _pieces(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- our codec --------------------------------------------------------------------


def run_native(
    case: Case, cuts: Sequence[int] = (), *, impl: str = "native", **options: Any
) -> Outcome:
    """Drive our codec (``impl``, with ``new_codec`` ``options``) over ``case``, in pieces."""
    server = case.role == "request"
    codec = new_codec(
        Role.SERVER if server else Role.CLIENT, max_buf_size=MAX_HEAD, impl=impl, **options
    )
    if not server:
        method, target, fields = _client_request(case.request)
        codec.send_message(RequestHead(method, target, b"1.1", fields), b"")
    pieces = _pieces(case.data, cuts)
    pieces.reverse()
    messages: list[Message] = []
    start: tuple[object, ...] = ()
    fields_: Fields = ()
    body: list[bytes] = []
    eof = False
    try:
        while True:
            event = codec.next_event()
            if event is PAUSED:
                return Outcome(tuple(messages), "ok")  # switched: the rest is not HTTP
            if event is NEED_DATA:
                if pieces:
                    codec.receive_data(pieces.pop())
                elif not eof:
                    eof = True
                    codec.receive_data(b"")
                else:  # pragma: no cover - after EOF a codec closes or raises
                    return Outcome(tuple(messages), "ok")
                continue
            if type(event) is RequestHead:
                start = (event.method, event.target, event.version)
                fields_, body = normalise(event.headers), []
            elif type(event) is ResponseHead:
                start = (event.status, event.reason, event.version)
                fields_, body = normalise(event.headers), []
                if event.status < 200:
                    messages.append(Message(start, fields_))
                    if event.status == 101:
                        return Outcome(tuple(messages), "ok")
                    continue
                if codec.their_state is CodecState.SWITCHED_PROTOCOL:
                    messages.append(Message(start, fields_))  # a tunnel: no keep-alive
                    return Outcome(tuple(messages), "ok")  # CONNECT 2xx
            elif type(event) is Data:
                body.append(event.data)
            elif type(event) is EndOfMessage:
                keep_alive = codec.keep_alive
                trailers = normalise(event.trailers)
                message = Message(start, fields_, b"".join(body), trailers, keep_alive)
                messages.append(message)
                if not server or _terminal(message):
                    return Outcome(tuple(messages), "ok")
                codec.send_message(ResponseHead(200, b"OK", b"1.1", []), b"")
                if codec.our_state is not CodecState.DONE:
                    return Outcome(tuple(messages), "ok")
                codec.start_next_cycle()
            else:
                assert type(event) is ConnectionClosed
                return Outcome(tuple(messages), "ok")
    except (ParseError, IncompleteMessageError) as exc:
        return Outcome(tuple(messages), "reject", f"{type(exc).__name__}: {exc}")


# -- h11 --------------------------------------------------------------------------


def run_h11(case: Case) -> Outcome:
    """Drive a bare ``h11.Connection`` over ``case`` (one piece, then EOF)."""
    server = case.role == "request"
    conn = h11.Connection(h11.SERVER if server else h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    if not server:
        method, target, fields = _client_request(case.request)
        conn.send(h11.Request(method=method, target=target, headers=fields))
        conn.send(h11.EndOfMessage())
    conn.receive_data(case.data)
    eof = False
    messages: list[Message] = []
    start: tuple[object, ...] = ()
    fields_: Fields = ()
    body: list[bytes] = []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if eof:
                    return Outcome(tuple(messages), "ok")  # pragma: no cover - h11 raises
                eof = True
                conn.receive_data(b"")
                continue
            if event is h11.PAUSED:
                return Outcome(tuple(messages), "ok")  # switched protocols
            if isinstance(event, h11.Request):
                start = (event.method, event.target, event.http_version)
                fields_, body = normalise(event.headers.raw_items()), []
            elif isinstance(event, h11.InformationalResponse):
                start = (event.status_code, event.reason, event.http_version)
                messages.append(Message(start, normalise(event.headers.raw_items())))
                if event.status_code == 101:
                    return Outcome(tuple(messages), "ok")
            elif isinstance(event, h11.Response):
                start = (event.status_code, event.reason, event.http_version)
                fields_, body = normalise(event.headers.raw_items()), []
                if conn.their_state is h11.SWITCHED_PROTOCOL:
                    messages.append(Message(start, fields_))  # a tunnel: no keep-alive
                    return Outcome(tuple(messages), "ok")
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                # A body that ended at EOF (read until close) ends the
                # connection; h11 says so only with the next event.
                keep_alive = not eof and conn.their_state is not h11.MUST_CLOSE
                trailers = normalise(event.headers.raw_items())
                message = Message(start, fields_, b"".join(body), trailers, keep_alive)
                messages.append(message)
                if not server or _terminal(message) or conn.their_state is not h11.DONE:
                    return Outcome(tuple(messages), "ok")
                conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
                conn.send(h11.EndOfMessage())
                conn.start_next_cycle()
            else:
                assert isinstance(event, h11.ConnectionClosed)
                return Outcome(tuple(messages), "ok")
    except h11.RemoteProtocolError as exc:
        return Outcome(tuple(messages), "reject", f"h11: {exc}")


# -- llhttp -----------------------------------------------------------------------


class _Stop(Exception):
    """Raised from a callback: the stream ends here for the harness."""


class _Collector:
    """The callbacks both llhttp parser classes share; collects messages."""

    def _setup(self, server: bool, request: str) -> None:
        self.server = server
        self.request = request
        self.messages: list[Message] = []
        self.done = False
        self.skip_body = False
        self.finishing = False  # in finish(): pausing is an error there
        self._reset_message()

    def _reset_message(self) -> None:
        self.url = bytearray()
        self.reason = bytearray()
        self.names: list[bytearray] = []
        self.values: list[bytearray] = []
        self.in_value = False
        self.head: tuple[object, ...] = ()
        self.head_fields: Fields = ()
        self.body = bytearray()

    # llhttp calls these with memoryviews into the buffer being parsed.
    def on_message_begin(self) -> None:
        self._reset_message()

    def on_url(self, data: memoryview) -> None:
        self.url += data

    def on_status(self, data: memoryview) -> None:
        self.reason += data

    def on_header_field(self, data: memoryview) -> None:
        if self.in_value or not self.names:
            self.names.append(bytearray())
            self.values.append(bytearray())
            self.in_value = False
        self.names[-1] += data

    def on_header_value(self, data: memoryview) -> None:
        self.in_value = True
        self.values[-1] += data

    def _fields(self) -> Fields:
        pairs = list(zip(map(bytes, self.names), map(bytes, self.values), strict=True))
        self.names, self.values, self.in_value = [], [], False
        return normalise(pairs)

    def on_headers_complete(self) -> None:
        parser: llhttp.Request | llhttp.Response = self  # type: ignore[assignment]
        version = f"{parser.major}.{parser.minor}".encode()
        if self.server:
            self.head = (str(parser.method).encode(), bytes(self.url), version)
        else:
            self.head = (parser.status or 0, bytes(self.reason), version)
        self.head_fields = self._fields()
        if not self.server:
            status = parser.status or 0
            if self.request == "HEAD" and status >= 200:
                # What a client does for HEAD (llhttp: return 1 from this
                # callback): no body. Paused here, reset and resumed after.
                self.skip_body = True
                parser.pause()
            elif self.request == "CONNECT" and 200 <= status < 300:
                self.messages.append(Message(self.head, self.head_fields))  # a tunnel
                self.done = True
                parser.pause()

    def on_body(self, data: memoryview) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        parser: llhttp.Request | llhttp.Response = self  # type: ignore[assignment]
        # (No exception may leave a callback: the binding then crashes in
        # finish(). llhttp reports a status of 000 as None.)
        status = 200 if self.server else self.head[0] or 0
        if isinstance(status, int) and status < 200:
            self.messages.append(Message(self.head, self.head_fields))
            if status == 101:
                self.done = True
                if not self.finishing:
                    parser.pause()
            return
        message = Message(
            self.head,
            self.head_fields,
            bytes(self.body),
            self._fields(),
            bool(parser.should_keep_alive),
        )
        self.messages.append(message)
        if not self.server or _terminal(message):
            self.done = True
            if not self.finishing:
                parser.pause()


class _Request(_Collector, llhttp.Request):
    pass


class _Response(_Collector, llhttp.Response):
    pass


def _keep_alive_without_body(start: tuple[object, ...], fields: Fields) -> bool:
    """llhttp_should_keep_alive() once on_headers_complete has said "no body".

    The binding cannot return 1 from on_headers_complete (F_SKIPBODY), so
    its should_keep_alive still counts a body that would be read until
    close; with F_SKIPBODY it is the Connection rule alone.
    """
    values = [v for name, v in fields if name == b"connection"]
    tokens = {t.strip(b" \t").lower() for v in values for t in v.split(b",")}
    if start[2] == b"1.1":
        return b"close" not in tokens
    return b"keep-alive" in tokens


def run_llhttp(case: Case) -> Outcome:
    """Drive llhttp (strict, no lenient flags) over ``case``, as Node's http would."""
    server = case.role == "request"
    parser: _Request | _Response = _Request() if server else _Response()
    parser._setup(server, case.request)
    data = memoryview(case.data)
    try:
        while True:
            used = parser.execute(data)
            if parser.done:
                return Outcome(tuple(parser.messages), "ok")
            if parser.is_upgrading:
                # CONNECT, or Upgrade with Connection: upgrade (a server
                # stops at once; our terminal rule stops at the message end).
                return Outcome(tuple(parser.messages), "ok")
            if parser.skip_body:
                parser.skip_body = False
                keep_alive = _keep_alive_without_body(parser.head, parser.head_fields)
                head = Message(parser.head, parser.head_fields, b"", (), keep_alive)
                parser.messages.append(head)
                return Outcome(tuple(parser.messages), "ok")
            if used >= len(data):
                break
            data = data[used:]
        parser.finishing = True
        parser.finish()  # completes a body read until close, or raises
        return Outcome(tuple(parser.messages), "ok")
    except llhttp.Error as exc:
        if parser.done:
            return Outcome(tuple(parser.messages), "ok")
        return Outcome(tuple(parser.messages), "reject", f"llhttp: {type(exc).__name__}: {exc}")
