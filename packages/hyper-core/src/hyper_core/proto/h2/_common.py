"""Pieces of the HTTP/2 glue shared by the server and the client connection.

What belongs here: everything about driving an ``h2.connection.H2Connection``
that does not depend on the role: building a configured connection, turning
``Headers`` into h2 header lists and back, translating h2 errors, the error
codes, the extended-CONNECT :class:`H2Protocol` value, and the limits'
defaults. Nothing here awaits. The API is shared with the client engineer:
keep it stable (add, do not rename).

Strategy: h2 does framing, HPACK, stream states and flow-control accounting;
this module only adapts it. Two h2 behaviours are bent on purpose:

* h2 enforces our ``MAX_CONCURRENT_STREAMS`` with a *connection* error
  (PROTOCOL_ERROR) for the stream over the limit. RFC 9113 section 5.1.2
  allows a stream error instead, and REFUSED_STREAM tells the client the
  request is safe to retry, so :class:`_AdvertisedOnlyConcurrency` makes h2
  advertise the limit but never enforce it; the server enforces it itself.
* h2 moves its state machine to CLOSED when it *sends* a GOAWAY, after which
  it refuses to send anything (no responses for the streams still open), so
  a graceful GOAWAY is written as a raw frame by the connection
  (:func:`goaway_frame`), not through ``H2Connection.close_connection``.
* RFC 9113 section 5.1: a DATA, HEADERS, RST_STREAM or WINDOW_UPDATE frame
  on an *idle* stream (one neither side has opened yet) is a connection
  error of type PROTOCOL_ERROR, except the HEADERS that opens a client's new
  stream. h2 ignores an RST_STREAM on an idle stream once the connection has
  seen any stream, so :class:`_H2Connection` checks all four itself, on both
  roles, before h2 sees the frame.
* h2 also goes CLOSED when it *receives* a GOAWAY, and drops the bytes it had
  queued. RFC 9113 section 6.8 lets the streams at or below the last stream
  id finish, and their frames often arrive in the same read as the GOAWAY:
  h2 would reject them inside that same ``receive_data`` call, before the
  caller could react to the GOAWAY event. :class:`_GoawayTolerantMachine`
  keeps the state open on a received GOAWAY and :class:`_H2Connection`
  keeps its queued bytes; the connections refuse new streams themselves.

Speed: the server's h2 connection is ``_fast_server.H2ServerConnection``,
which has fast paths for plain responses, and the client's is
``_fast_client.H2ClientConnection``, with one for request heads (see those
modules); every connection skips h2's eager ``repr()`` of each received
frame.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from typing import Final, final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)

from hyper_core.error import ProtocolError
from hyper_core.http import Headers, Uri

__all__ = [
    "CONNECTION_HEADERS",
    "DEFAULT_HEADER_TABLE_SIZE",
    "MAX_WINDOW_SIZE",
    "SPEC_INITIAL_WINDOW",
    "ErrorCode",
    "H2Protocol",
    "check_request_fields",
    "check_trailer_fields",
    "goaway_frame",
    "initiate",
    "new_h2_connection",
    "request_headers_to_h2",
    "response_headers_to_h2",
    "status_bytes",
    "trailers_to_h2",
    "translate_h2_error",
]

ErrorCode = h2.errors.ErrorCodes

#: The flow-control window every stream and the connection start with
#: before SETTINGS / WINDOW_UPDATE, in bytes (RFC 9113 section 6.9.2).
SPEC_INITIAL_WINDOW: Final = 65_535
#: The largest flow-control window, in bytes (RFC 9113 section 6.9.1).
MAX_WINDOW_SIZE: Final = 2**31 - 1
#: HPACK dynamic table size when none is configured, in bytes (RFC 7541
#: section 6.5.2 and h2's default; hyper leaves it to h2 too).
DEFAULT_HEADER_TABLE_SIZE: Final = 4096

#: Connection-specific fields, forbidden in HTTP/2 (RFC 9113 section 8.2.2).
#: They are dropped from messages we send, as hyper does; h2 rejects them in
#: messages received.
CONNECTION_HEADERS: Final = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)

_STATUS_BYTES: dict[int, bytes] = {}
# RFC 9113 section 8.2.1: a field name is a lower-case token (RFC 9110 tchar
# without upper case); a value has no NUL, CR or LF and no surrounding
# whitespace.
_FIELD_NAME: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE: Final = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
_REQUEST_PSEUDO: Final = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
#: The frames RFC 9113 section 5.1 forbids on an idle stream (HEADERS only
#: when it does not open a client's stream), by their hyperframe class.
_NOT_ON_IDLE: Final = {
    DataFrame: "DATA",
    HeadersFrame: "HEADERS",
    RstStreamFrame: "RST_STREAM",
    WindowUpdateFrame: "WINDOW_UPDATE",
}

# Settings below the RFC defaults must not apply before the peer acknowledges
# them (it may already be sending under the defaults): new_h2_connection
# leaves them out of the preface and initiate() sends them as an update,
# which h2 applies on the ACK.
_STAGED: weakref.WeakKeyDictionary[
    h2.connection.H2Connection, dict[h2.settings.SettingCodes | int, int]
] = weakref.WeakKeyDictionary()


@final
class H2Protocol:
    """The ``:protocol`` of an extended CONNECT request (RFC 8441), e.g. ``websocket``.

    A server with ``enable_connect_protocol`` puts it in the request's
    extensions; a client sends it when it finds one in a CONNECT request's
    extensions. (hyper's ``ext::Protocol``.)

    Args:
        value: The protocol name, as ``str`` or ``bytes`` (ASCII).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
        if not raw:
            raise ValueError("an extended CONNECT protocol cannot be empty")
        self._value = raw

    def as_str(self) -> str:
        """The protocol name as text."""
        return self._value.decode("ascii")

    def as_bytes(self) -> bytes:
        """The protocol name as bytes (what goes in ``:protocol``)."""
        return self._value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, H2Protocol):
            return self._value == other._value
        if isinstance(other, str):
            return self.as_str() == other
        if isinstance(other, bytes):
            return self._value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"H2Protocol({self.as_str()!r})"


# h2's connection transitions, with a received GOAWAY keeping the state.
_GOAWAY_TOLERANT_TRANSITIONS: Final = {
    (state, input_): (
        (func, state)
        if input_ is h2.connection.ConnectionInputs.RECV_GOAWAY
        and state is not h2.connection.ConnectionState.CLOSED
        else (func, target)
    )
    for (state, input_), (
        func,
        target,
    ) in h2.connection.H2ConnectionStateMachine._transitions.items()
}


class _GoawayTolerantMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY changes nothing.

    The connection object sees the GOAWAY as a ``ConnectionTerminated`` event
    and stops opening streams; the streams still open go on as RFC 9113
    section 6.8 allows (see the module docstring). Sending our own GOAWAY
    still closes the machine as usual. Done in the transition table rather
    than by overriding ``process_input``, which runs several times per
    request.
    """

    def __init__(self) -> None:
        super().__init__()
        self._transitions = _GOAWAY_TOLERANT_TRANSITIONS


class _H2Connection(h2.connection.H2Connection):
    """An h2 connection that keeps its queued bytes when a GOAWAY is received.

    h2 clears its outbound buffer on a received GOAWAY (its only caller of
    ``clear_outbound_data_buffer``), which would drop, say, the SETTINGS ACK
    or WINDOW_UPDATE frames produced earlier in the same ``receive_data``.
    """

    def clear_outbound_data_buffer(self) -> None:
        pass

    def _check_not_idle(self, frame: Frame) -> None:
        """Raise h2's ProtocolError for a frame on an idle stream (module docstring)."""
        sid = frame.stream_id
        kind = _NOT_ON_IDLE.get(type(frame))
        if kind is None:
            return
        # Ours are odd on the client, even on the server; the peer's the other parity.
        ours = sid % 2 == int(self.config.client_side)
        highest = self.highest_outbound_stream_id if ours else self.highest_inbound_stream_id
        if sid <= highest:
            return  # closed, not idle: h2's rules for closed streams apply
        if kind == "HEADERS" and not ours and not self.config.client_side:
            return  # a client opening a stream
        raise h2.exceptions.ProtocolError(f"{kind} frame on idle stream {sid}")

    def _receive_frame(self, frame: Frame) -> list[h2.events.Event]:
        # h2's own, less its first line: ``logger.trace("...", repr(frame))``
        # formats every received frame eagerly (a few percent of a small
        # request) for a trace log that h2's default logger drops; and with
        # the idle-stream check first (a dict look-up for known streams).
        sid = frame.stream_id
        if sid and sid not in self.streams:
            self._check_not_idle(frame)
        events: list[h2.events.Event]
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except h2.exceptions.StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = e.error_code
                self._prepare_for_sending([f])
                events = e._events
            else:
                raise
        except h2.exceptions.StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                f = RstStreamFrame(e.stream_id)
                f.error_code = h2.errors.ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([f])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise h2.exceptions.StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            self._prepare_for_sending(frames)
        return events


class _AdvertisedOnlyConcurrency(h2.settings.Settings):
    """Local settings whose MAX_CONCURRENT_STREAMS is sent but not enforced by h2.

    h2 reads the ``max_concurrent_streams`` property only to enforce the
    limit (as a connection error); the SETTINGS frame is built from the
    mapping items, which still hold the real value.
    """

    @property
    def max_concurrent_streams(self) -> int:
        return 2**32 + 1

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = value


def new_h2_connection(
    *,
    client_side: bool,
    initial_stream_window_size: int,
    max_frame_size: int,
    max_header_list_size: int,
    max_concurrent_streams: int | None,
    header_table_size: int | None = None,
    enable_connect_protocol: bool = False,
    enable_push: bool = False,
    validate_inbound_headers: bool = True,
) -> h2.connection.H2Connection:
    """Return an h2 connection with our settings in place, not yet initiated.

    Call :func:`initiate` next (it sends the preface SETTINGS). Headers come
    out as bytes. h2 validates received headers (pseudo-header rules,
    connection-specific fields, Host against ``:authority``) unless
    ``validate_inbound_headers`` is False (the server checks requests itself
    with :func:`check_request_fields`, faster, and as stream errors); sent
    headers are prepared by :func:`response_headers_to_h2` and friends. On the
    server side ``max_concurrent_streams`` is advertised but left for the
    caller to enforce with REFUSED_STREAM (see the module docstring);
    ``None`` advertises nothing (no limit).

    Raises:
        ValueError: a setting out of the RFC 9113 range.
    """
    if not 16_384 <= max_frame_size <= 16_777_215:
        raise ValueError("max_frame_size must be within 16,384..16,777,215 bytes")
    if not 0 <= initial_stream_window_size <= MAX_WINDOW_SIZE:
        raise ValueError("initial_stream_window_size must be within 0..2**31-1 bytes")
    config = h2.config.H2Configuration(
        client_side=client_side,
        header_encoding=None,
        validate_inbound_headers=validate_inbound_headers,
        normalize_inbound_headers=True,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    conn: _H2Connection
    if client_side:
        from ._fast_client import H2ClientConnection  # it subclasses _H2Connection

        conn = H2ClientConnection(config)
    else:
        from ._fast_server import H2ServerConnection  # it subclasses _H2Connection

        conn = H2ServerConnection(config)
    conn.state_machine = _GoawayTolerantMachine()
    settings: dict[h2.settings.SettingCodes, int] = {
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_stream_window_size,
        h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_header_list_size,
    }
    if client_side:
        settings[h2.settings.SettingCodes.ENABLE_PUSH] = int(enable_push)
    staged: dict[h2.settings.SettingCodes | int, int] = {}
    if initial_stream_window_size < SPEC_INITIAL_WINDOW:
        staged[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = initial_stream_window_size
        del settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE]
    if header_table_size is not None:
        if header_table_size < DEFAULT_HEADER_TABLE_SIZE:
            staged[h2.settings.SettingCodes.HEADER_TABLE_SIZE] = header_table_size
        else:
            settings[h2.settings.SettingCodes.HEADER_TABLE_SIZE] = header_table_size
    if enable_connect_protocol:
        settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
    if max_concurrent_streams is not None:
        settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = max_concurrent_streams
    if client_side:
        conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
    else:
        if max_concurrent_streams is None:
            # h2 itself stages 100 unless told otherwise; "no limit" is the RFC default.
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 2**31 - 1
        conn.local_settings = _AdvertisedOnlyConcurrency(client=False, initial_values=settings)
    # The frame-size check on received frames follows our setting at once:
    # h2 would otherwise accept frames up to 16 MiB until our SETTINGS is acked.
    conn.max_inbound_frame_size = max_frame_size
    # Likewise the HPACK limits: settings given as initial values are never
    # "acknowledged" into the decoder by h2, so set them here.
    conn.decoder.max_header_list_size = max_header_list_size
    if header_table_size is not None and not staged:
        conn.decoder.max_allowed_table_size = header_table_size
    if staged:
        _STAGED[conn] = staged
    return conn


def initiate(conn: h2.connection.H2Connection, upgrade_settings: bytes | None = None) -> None:
    """Queue the connection preface: SETTINGS, then any setting that must wait for its ACK.

    Use this instead of ``conn.initiate_connection()`` on a connection from
    :func:`new_h2_connection` (a stream window below 65,535 bytes or an HPACK
    table below 4,096 bytes is sent as a second SETTINGS frame and takes
    effect when the peer acknowledges it, as RFC 9113 section 6.5.3 requires).
    ``upgrade_settings`` (server only) is the client's padded ``HTTP2-Settings``
    of an h2c upgrade: applied as its first SETTINGS, stream 1 half-closed.

    Raises:
        h2.exceptions.ProtocolError: ``upgrade_settings`` holds an invalid value.
    """
    if upgrade_settings is None:
        conn.initiate_connection()
    else:
        conn.initiate_upgrade_connection(upgrade_settings)
    staged = _STAGED.pop(conn, None)
    if staged:
        conn.update_settings(staged)


def check_trailer_fields(fields: list[tuple[bytes, bytes]]) -> str | None:
    """Why a received trailer section is malformed (RFC 9113 sections 8.1, 8.2), or None.

    The server turns h2's inbound validation off (see
    :func:`check_request_fields`), so trailers get the same field checks here:
    no pseudo-fields, lower-case token names, no connection-specific fields,
    no CR, LF or NUL and no surrounding whitespace in values.
    """
    name_ok = _FIELD_NAME.fullmatch
    bad_value = _BAD_VALUE.search
    for name, value in fields:
        if name[:1] == b":":
            return f"pseudo-field {name!r} in trailers"
        if name_ok(name) is None:
            return f"invalid field name {name!r} in trailers"
        if name in CONNECTION_HEADERS or name == b"te":
            return f"connection-specific field {name!r} in trailers"
        if value and bad_value(value) is not None:
            return f"invalid value in {name!r} in trailers"
    return None


def check_request_fields(fields: list[tuple[bytes, bytes]]) -> str | None:
    """Why a received request header list is malformed (RFC 9113 section 8), or None.

    Checks what h2 would with ``validate_inbound_headers``, in one pass:
    field name and value characters, pseudo-fields (known, not repeated,
    before regular fields, the ones each kind of request needs),
    connection-specific fields, ``te`` other than ``trailers``, and ``host``
    against ``:authority`` (section 8.3.1). A malformed request is a stream
    error of type PROTOCOL_ERROR.
    """
    pseudo: dict[bytes, bytes] = {}
    host: bytes | None = None
    regular = False
    name_ok = _FIELD_NAME.fullmatch
    bad_value = _BAD_VALUE.search
    for name, value in fields:
        if name[:1] == b":":
            if regular:
                return f"pseudo-field {name!r} after a regular field"
            if name not in _REQUEST_PSEUDO:
                return f"unknown pseudo-field {name!r}"
            if name in pseudo:
                return f"repeated pseudo-field {name!r}"
            pseudo[name] = value
        else:
            regular = True
            if name_ok(name) is None:
                return f"invalid field name {name!r}"
            if name in CONNECTION_HEADERS:
                return f"connection-specific field {name!r}"
            if name == b"te" and value != b"trailers":
                return "te other than 'trailers'"
            if name == b"host":
                if host is not None:
                    return "repeated host"
                host = value
        if value and bad_value(value) is not None:
            return f"invalid value in {name!r}"
    method = pseudo.get(b":method")
    if method is None:
        return "no :method"
    authority = pseudo.get(b":authority")
    if method == b"CONNECT" and b":protocol" not in pseudo:
        if authority is None or b":scheme" in pseudo or b":path" in pseudo:
            return "CONNECT needs :authority and no :scheme or :path"
    else:
        if b":protocol" in pseudo and method != b"CONNECT":
            return ":protocol outside CONNECT"
        if not pseudo.get(b":scheme") or not pseudo.get(b":path"):
            return "missing :scheme or :path"
        if authority is None and host is None:
            return "no :authority or host"
    if authority is not None and host is not None and authority != host:
        return "host differs from :authority"
    return None


def goaway_frame(last_stream_id: int, error_code: int = 0, debug: bytes = b"") -> bytes:
    """Serialize a GOAWAY frame without touching the h2 state machine (see module doc)."""
    return bytes(
        GoAwayFrame(
            0, last_stream_id=last_stream_id, error_code=error_code, additional_data=debug
        ).serialize()
    )


def translate_h2_error(exc: h2.exceptions.H2Error, what: str) -> ProtocolError:
    """Return the :class:`~hyper_core.error.ProtocolError` for an h2 exception."""
    code = getattr(exc, "error_code", None)
    error = ProtocolError(f"{what}: {exc}", error_code=None if code is None else int(code))
    error.__cause__ = exc
    return error


def status_bytes(status: int) -> bytes:
    """``:status`` value for ``status`` (cached: there are few distinct ones)."""
    value = _STATUS_BYTES.get(status)
    if value is None:
        value = _STATUS_BYTES[status] = str(status).encode("ascii")
    return value


def _regular_fields(fields: Iterable[tuple[bytes, bytes]], out: list[tuple[bytes, bytes]]) -> None:
    for name, value in fields:
        lower = name.lower()
        if lower in CONNECTION_HEADERS or lower == b"host":
            # Host is not sent on HTTP/2: :authority carries it (RFC 9113 8.3.1).
            continue
        if lower == b"te" and value.strip().lower() != b"trailers":
            continue
        out.append((lower, value))


def response_headers_to_h2(status: int, headers: Headers) -> list[tuple[bytes, bytes]]:
    """The header list of a response: ``:status`` first, names lower-cased, hop-by-hop dropped."""
    out: list[tuple[bytes, bytes]] = [(b":status", status_bytes(status))]
    _regular_fields(headers.raw(), out)
    return out


def request_headers_to_h2(
    pseudo: list[tuple[bytes, bytes]], headers: Headers
) -> list[tuple[bytes, bytes]]:
    """The header list of a request: the pseudo-fields given, then the regular fields."""
    out = list(pseudo)
    _regular_fields(headers.raw(), out)
    return out


def trailers_to_h2(trailers: Headers) -> list[tuple[bytes, bytes]]:
    """A trailer block: names lower-cased, hop-by-hop and pseudo-fields dropped."""
    out: list[tuple[bytes, bytes]] = []
    _regular_fields(trailers.raw(), out)
    return [(n, v) for n, v in out if not n.startswith(b":")]


def absolute_uri(
    templates: dict[tuple[bytes, bytes], Uri], scheme: bytes, authority: bytes, path: bytes
) -> Uri:
    """The request's URI from its pseudo-header fields (HTTP/2 and HTTP/3 servers).

    A connection sees a handful of (scheme, authority) pairs: each is parsed
    once into ``templates`` (at most 16 kept) and the path grafted on,
    checked but split lazily (the codec fast path of Uri), instead of
    parsing every request's URI in full.
    """
    template = templates.get((scheme, authority))
    if template is None:
        template = Uri(b"%s://%s/" % (scheme, authority))
        if len(templates) < 16:
            templates[scheme, authority] = template
    if path[:1] != b"/":
        return Uri(b"%s://%s%s" % (scheme, authority, path if path != b"*" else b""))
    uri = Uri._from_origin_trusted(path)
    uri._form = template._form
    uri._scheme = template._scheme
    uri._authority = template._authority
    uri._host = template._host
    uri._port = template._port
    return uri
