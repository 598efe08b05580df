"""Request targets: the URI of a request.

What belongs here: :class:`Uri`, :class:`UriForm` and the URI grammar.

Strategy:

* A :class:`Uri` holds one of the four request-target forms of RFC 9112
  section 3.2: origin-form (``/path?query``), absolute-form
  (``http://host:port/path?query``), authority-form (``host:port``, for
  CONNECT) and asterisk-form (``*``, for server-wide OPTIONS). The form is
  decided by the first characters, never guessed from context.
* Rule: a :class:`Uri` that exists is valid. Every character is visible
  ASCII (no SP, no control character, nothing above 0x7E) and every ``%`` starts
  a two-hex-digit escape; scheme, host and port follow RFC 3986. Inside the
  path and query any visible ASCII is accepted (``"``, ``{``, ``|`` ... are
  sent unescaped by real clients, and h11 accepts them too); none of them can
  break the framing of a message.
* A fragment (``#...``) is accepted and dropped, as the ``http`` crate does:
  it is never part of a request target.
* Userinfo (``user:pass@``) is accepted in absolute-form and kept in
  :attr:`Uri.authority`, but excluded from :attr:`Uri.host`. RFC 9110
  deprecates it; a client should not send it on the wire.
* Host names must already be ASCII (punycode for international names). IPv6
  literals are checked with :mod:`ipaddress`; zone identifiers and IPvFuture
  literals are rejected.
* Parsing is lazy on the server hot path: :meth:`Uri._from_origin_trusted`
  checks the characters of an origin-form target at once (a single regex
  scan, so a bad target is still refused before the application sees it) but
  splits path from query only when an accessor first needs it. Short
  targets, which recur (``/``, ``/api/items``), can be taken from a bounded
  cache (:meth:`Uri._from_origin_shared`): a :class:`Uri` is immutable, so
  the same instance serves every request for that target.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import final

from hyper_core.error import InvalidUri

__all__ = ["Uri", "UriForm"]

# Visible ASCII but "%": what may appear anywhere without a closer look.
# ``bytes.translate(None, _PLAIN)`` deletes these in one C pass; anything left
# over is a bad character. A "%" must then start a two-hex-digit escape.
_PLAIN = bytes(range(0x21, 0x7F)).replace(b"%", b"")
_BAD = re.compile(rb"[^\x21-\x7e]|%(?![0-9A-Fa-f]{2})")
# RFC 3986 section 3.1.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# RFC 3986 section 3.2.2 reg-name and 3.2.1 userinfo; escapes were checked by _BAD.
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")
_USERINFO = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:%]*")
_MAX_PORT = 65535

# Origin-form targets already built by Uri._from_origin_trusted: a server
# sees the same few paths over and over, and a Uri is immutable, so one
# instance can serve every request for that target. Bounded in entries and
# in target length; emptied when full, so the paths that recur refill it.
_ORIGIN_CACHE: dict[bytes, Uri] = {}
_ORIGIN_CACHE_MAX = 1024  # entries
_ORIGIN_CACHE_LONGEST = 64  # bytes of a target worth keeping


class UriForm(enum.Enum):
    """The request-target forms of RFC 9112 section 3.2."""

    ORIGIN = "origin"
    """``/path?query``: the usual form of a request to an origin server."""
    ABSOLUTE = "absolute"
    """``scheme://authority/path?query``: requests to a proxy."""
    AUTHORITY = "authority"
    """``host:port``: the target of CONNECT."""
    ASTERISK = "asterisk"
    """``*``: a server-wide OPTIONS request."""


def _shown(text: str | bytes) -> str:
    """The URI as quoted in error messages, cut short when long."""
    return repr(text) if len(text) <= 80 else f"{text[:80]!r}..."


def _invalid(text: str | bytes, why: str) -> InvalidUri:
    return InvalidUri(f"invalid URI {_shown(text)}: {why}")


def _check(text: str | bytes, raw: bytes) -> None:
    """Raise InvalidUri unless ``raw`` is visible ASCII with valid % escapes."""
    if raw.translate(None, _PLAIN):
        # Something other than plain characters: a bad one, or only escapes.
        _raise_bad_char(text, raw)


def _raise_bad_char(text: str | bytes, raw: bytes) -> None:
    match = _BAD.search(raw)
    if match is None:
        return
    offset = match.start()
    if match.group() == b"%":
        raise _invalid(text, f"'%' at offset {offset} does not start a %XX escape")
    if isinstance(text, bytes):
        raise _invalid(text, f"byte 0x{raw[offset]:02x} at offset {offset} is not allowed")
    raise _invalid(text, f"character {text[offset]!r} at offset {offset} is not allowed")


def _split_path(rest: str) -> tuple[str, str | None]:
    """Split ``path[?query][#fragment]`` into path and query; drop the fragment."""
    hash_at = rest.find("#")
    if hash_at >= 0:
        rest = rest[:hash_at]
    path, question, query = rest.partition("?")
    return path, (query if question else None)


def _parse_authority(
    text: str, authority: str, *, allow_userinfo: bool, require_port: bool
) -> tuple[str, int | None]:
    """Check ``[userinfo@]host[:port]``; return host (IPv6 unbracketed) and port."""
    if not authority:
        raise _invalid(text, "empty host")
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        if not allow_userinfo:
            raise _invalid(text, "userinfo is not allowed in authority-form")
        if _USERINFO.fullmatch(userinfo) is None:
            raise _invalid(text, f"invalid userinfo {userinfo!r}")
    port_text: str | None
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise _invalid(text, "unclosed '[' in host")
        host = hostport[1:close]
        after = hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise _invalid(text, f"unexpected {after!r} after IPv6 address")
        port_text = after[1:] if after else None
        # ipaddress accepts "%zone" scope ids; URIs would need "%25" (RFC 6874).
        if "%" in host:
            raise _invalid(text, "IPv6 zone identifiers are not supported")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid(text, f"invalid IPv6 address {host!r}") from None
    else:
        host, colon, port_text_found = hostport.partition(":")
        port_text = port_text_found if colon else None
        if not host:
            raise _invalid(text, "empty host")
        if _REG_NAME.fullmatch(host) is None:
            raise _invalid(text, f"invalid host {host!r}")
    port: int | None = None
    if port_text is not None:
        if not port_text:
            raise _invalid(text, "empty port")
        if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > _MAX_PORT:
            raise _invalid(text, f"invalid port {port_text!r}: must be 0-65535")
        port = int(port_text)
    elif require_port:
        raise _invalid(text, "authority-form needs host:port")
    return host, port


_Parsed = tuple[UriForm, str | None, str | None, str | None, int | None, str, str | None]


def _parse(text: str) -> _Parsed:
    """Parse a non-empty URI whose characters have passed ``_check``."""
    if text[0] == "/":
        path, query = _split_path(text)
        return UriForm.ORIGIN, None, None, None, None, path, query
    if text == "*":
        return UriForm.ASTERISK, None, None, None, None, "*", None
    colon = text.find(":")
    if colon >= 0 and text.startswith("//", colon + 1):
        scheme = text[:colon]
        if _SCHEME.fullmatch(scheme) is None:
            raise _invalid(text, f"invalid scheme {scheme!r}")
        start = colon + 3
        end = len(text)
        for delimiter in "/?#":
            found = text.find(delimiter, start)
            if 0 <= found < end:
                end = found
        authority = text[start:end]
        host, port = _parse_authority(text, authority, allow_userinfo=True, require_port=False)
        path, query = _split_path(text[end:])
        return UriForm.ABSOLUTE, scheme.lower(), authority, host, port, path or "/", query
    host, port = _parse_authority(text, text, allow_userinfo=False, require_port=True)
    return UriForm.AUTHORITY, None, text, host, port, "", None


@final
class Uri:
    """An immutable, validated request target.

    Args:
        uri: The target as text or bytes, in any of the four forms of
            RFC 9112 section 3.2 (see :class:`UriForm`), or another
            :class:`Uri`.

    Raises:
        InvalidUri: If the target contains SP, a control character, a
            non-ASCII character or a bad ``%`` escape, or if its scheme, host
            or port is invalid. The message gives the offending part and its
            offset.
        TypeError: If ``uri`` is not ``str``, ``bytes`` or :class:`Uri`.

    Two URIs are equal when their form, scheme, path and query are equal and
    their authorities are equal ignoring case.
    """

    __slots__ = ("_authority", "_form", "_host", "_path", "_port", "_query", "_raw", "_scheme")

    _form: UriForm
    _scheme: str | None
    _authority: str | None
    _host: str | None
    _port: int | None
    _path: str
    _query: str | None
    # An origin-form target not yet split into path and query (see _split).
    _raw: bytes | None

    def __init__(self, uri: str | bytes | Uri) -> None:
        if isinstance(uri, Uri):
            uri._split()
            parsed: _Parsed = (
                uri._form,
                uri._scheme,
                uri._authority,
                uri._host,
                uri._port,
                uri._path,
                uri._query,
            )
        elif isinstance(uri, str):
            if not uri:
                raise InvalidUri("invalid URI: empty")
            if not uri.isascii():
                offset = next(i for i, char in enumerate(uri) if not char.isascii())
                raise _invalid(uri, f"character {uri[offset]!r} at offset {offset} is not allowed")
            _check(uri, uri.encode("ascii"))
            parsed = _parse(uri)
        elif isinstance(uri, bytes):
            if not uri:
                raise InvalidUri("invalid URI: empty")
            _check(uri, uri)
            parsed = _parse(uri.decode("ascii"))
        else:
            raise TypeError(f"a URI must be str or bytes, not {type(uri).__name__}")
        (
            self._form,
            self._scheme,
            self._authority,
            self._host,
            self._port,
            self._path,
            self._query,
        ) = parsed
        self._raw = None

    @classmethod
    def _from_origin_trusted(cls, target: bytes) -> Uri:
        """Build the URI of a received request target, for codecs.

        Origin-form targets (the usual case) are checked for bad characters
        and escapes at once but split into path and query only on first use;
        other forms are parsed in full.

        Raises:
            InvalidUri: As :class:`Uri` does.
        """
        if target[:1] != b"/":
            return cls(target)
        if target.translate(None, _PLAIN):
            _raise_bad_char(target, target)
        uri = object.__new__(cls)
        uri._raw = target
        uri._form = UriForm.ORIGIN
        uri._scheme = uri._authority = uri._host = None
        uri._port = None
        return uri

    @classmethod
    def _from_origin_shared(cls, target: bytes) -> Uri:
        """:meth:`_from_origin_trusted`, through a bounded cache of shared instances.

        For codecs that hand the result to the application as it is: the
        instance may be shared by many requests, so the caller must never
        write to it (``_from_origin_trusted`` returns a fresh one for a
        caller that wants to complete it, e.g. into absolute-form).

        Raises:
            InvalidUri: As :class:`Uri` does.
        """
        cached = _ORIGIN_CACHE.get(target)
        if cached is not None:
            return cached
        uri = cls._from_origin_trusted(target)
        if len(target) <= _ORIGIN_CACHE_LONGEST and uri._raw is not None:
            # Shared from now on: split at once, so it is never written again.
            uri._split()
            if len(_ORIGIN_CACHE) >= _ORIGIN_CACHE_MAX:
                _ORIGIN_CACHE.clear()
            _ORIGIN_CACHE[target] = uri
        return uri

    def _split(self) -> None:
        raw = self._raw
        if raw is not None:
            text = raw.decode("ascii")
            self._path, self._query = _split_path(text)
            self._raw = None

    @classmethod
    def from_parts(
        cls,
        *,
        scheme: str | None = None,
        authority: str | None = None,
        path_and_query: str | None = None,
    ) -> Uri:
        """Build a URI from its parts.

        * ``scheme`` and ``authority`` (and optionally ``path_and_query``,
          default ``"/"``) give absolute-form;
        * ``authority`` alone gives authority-form;
        * ``path_and_query`` alone gives origin-form (or asterisk-form for
          ``"*"``).

        Raises:
            InvalidUri: If a part is invalid or the combination names no form.
        """
        if path_and_query is not None and "#" in path_and_query:
            raise InvalidUri(f"invalid path and query {path_and_query!r}: '#' is not allowed")
        if scheme is not None:
            if authority is None:
                raise InvalidUri("invalid URI parts: a scheme needs an authority")
            if _SCHEME.fullmatch(scheme) is None:
                raise InvalidUri(f"invalid URI parts: invalid scheme {scheme!r}")
            if any(delimiter in authority for delimiter in "/?#"):
                raise InvalidUri(f"invalid URI parts: invalid authority {authority!r}")
            if path_and_query is None:
                path_and_query = "/"
            elif path_and_query and not path_and_query.startswith("/"):
                raise InvalidUri(f"invalid URI parts: path {path_and_query!r} must start with '/'")
            return cls(f"{scheme}://{authority}{path_and_query}")
        if authority is not None:
            if path_and_query is not None:
                raise InvalidUri("invalid URI parts: a path after an authority needs a scheme")
            uri = cls(authority)
            if uri._form is not UriForm.AUTHORITY:
                raise InvalidUri(f"invalid URI parts: invalid authority {authority!r}")
            return uri
        if path_and_query is None:
            raise InvalidUri("invalid URI parts: no parts given")
        uri = cls(path_and_query)
        if uri._form not in (UriForm.ORIGIN, UriForm.ASTERISK):
            raise InvalidUri(
                f"invalid URI parts: path {path_and_query!r} must start with '/' or be '*'"
            )
        return uri

    def origin_form(self) -> Uri:
        """This URI's path and query as an origin-form URI, as sent to an origin server.

        An absolute-form ``http://example.com/a?b`` gives ``/a?b``; an
        origin-form URI is returned as it is. Nothing is parsed again (a
        :class:`Uri` is validated when it is built), so a client can convert
        each request's target cheaply.

        Raises:
            InvalidUri: The URI is in authority-form or asterisk-form, which
                have no origin-form.
        """
        form = self._form
        if form is UriForm.ORIGIN:
            return self
        if form is not UriForm.ABSOLUTE:
            raise InvalidUri(f"invalid URI {str(self)!r}: {form.name.lower()}-form has no path")
        uri = object.__new__(Uri)
        uri._form = UriForm.ORIGIN
        uri._scheme = uri._authority = uri._host = None
        uri._port = None
        uri._path = self._path
        uri._query = self._query
        uri._raw = None
        return uri

    @property
    def form(self) -> UriForm:
        """Which request-target form this is."""
        return self._form

    @property
    def scheme(self) -> str | None:
        """The scheme, lowercased (absolute-form only)."""
        return self._scheme

    @property
    def authority(self) -> str | None:
        """``[userinfo@]host[:port]`` as given (absolute- and authority-form)."""
        return self._authority

    @property
    def host(self) -> str | None:
        """The host, without IPv6 brackets or userinfo (absolute- and authority-form)."""
        return self._host

    @property
    def port(self) -> int | None:
        """The explicit port, or None if the URI gives none."""
        return self._port

    @property
    def path(self) -> str:
        """The path: at least ``"/"`` in absolute-form, ``"*"`` or ``""`` in the others."""
        if self._raw is not None:
            self._split()
        return self._path

    @property
    def query(self) -> str | None:
        """The query without its ``?``; ``""`` for a bare ``?``, None for no ``?``."""
        if self._raw is not None:
            self._split()
        return self._query

    @property
    def path_and_query(self) -> str:
        """The path followed by ``?query`` when there is a query."""
        if self._raw is not None:
            self._split()
        if self._query is None:
            return self._path
        return f"{self._path}?{self._query}"

    def __str__(self) -> str:
        form = self._form
        if form is UriForm.ORIGIN or form is UriForm.ASTERISK:
            return self.path_and_query
        if form is UriForm.AUTHORITY:
            return self._authority or ""
        return f"{self._scheme}://{self._authority}{self.path_and_query}"

    def __repr__(self) -> str:
        return f"Uri({str(self)!r})"

    def _key(self) -> tuple[object, ...]:
        self._split()
        authority = self._authority.lower() if self._authority is not None else None
        return (self._form, self._scheme, authority, self._path, self._query)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Uri):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
