"""HTTP request methods.

What belongs here: :class:`Method` and the token grammar it checks.

Strategy: a method is a ``str`` (so ``Method.GET == "GET"`` and it can be
used anywhere a string can), validated once at construction as an RFC 9110
token. The nine standard methods are interned: ``Method("GET")`` and
``Method.from_bytes(b"GET")`` are a single dict lookup that returns the one
shared instance, which keeps the server hot path free of allocation and
validation for every request that uses a standard method.
"""

from __future__ import annotations

import re
from typing import ClassVar, final

from hyper_core.error import InvalidMethod

__all__ = ["Method"]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_IDEMPOTENT = _SAFE | {"PUT", "DELETE"}


@final
class Method(str):
    """An HTTP request method (RFC 9110 section 9).

    Methods are case-sensitive tokens. Any valid token is accepted, so
    extension methods such as ``PURGE`` work; the standard ones are class
    attributes (``Method.GET`` ...). A method compares and hashes equal to
    the plain string with the same characters.

    Raises:
        InvalidMethod: If the value is not an RFC 9110 token.
        TypeError: If the value is not a ``str``.
    """

    __slots__ = ()

    GET: ClassVar[Method]
    HEAD: ClassVar[Method]
    POST: ClassVar[Method]
    PUT: ClassVar[Method]
    DELETE: ClassVar[Method]
    CONNECT: ClassVar[Method]
    OPTIONS: ClassVar[Method]
    TRACE: ClassVar[Method]
    PATCH: ClassVar[Method]

    def __new__(cls, value: str) -> Method:
        if type(value) is Method:
            return value
        interned = _BY_STR.get(value)
        if interned is not None:
            return interned
        if not isinstance(value, str):
            raise TypeError(f"a method must be a str, not {type(value).__name__}")
        if _TOKEN.fullmatch(value) is None:
            raise InvalidMethod(f"invalid HTTP method {value!r}: not a token")
        return str.__new__(cls, value)

    @classmethod
    def from_bytes(cls, value: bytes) -> Method:
        """Return the method spelled by ``value``, as read from the wire.

        The standard methods are returned interned, without validation or
        decoding.

        Raises:
            InvalidMethod: If ``value`` is not an RFC 9110 token.
        """
        interned = _BY_BYTES.get(value)
        if interned is not None:
            return interned
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidMethod(f"invalid HTTP method {value!r}: not a token") from None
        return cls(text)

    @property
    def is_safe(self) -> bool:
        """Whether the method is safe (read-only): GET, HEAD, OPTIONS, TRACE."""
        return self in _SAFE

    @property
    def is_idempotent(self) -> bool:
        """Whether repeating the request has the same effect as sending it once.

        True for the safe methods plus PUT and DELETE (RFC 9110 section 9.2.2).
        """
        return self in _IDEMPOTENT

    def __repr__(self) -> str:
        return f"Method({str.__repr__(self)})"


_STANDARD = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_BY_STR: dict[str, Method] = {name: str.__new__(Method, name) for name in _STANDARD}
_BY_BYTES: dict[bytes, Method] = {name.encode("ascii"): m for name, m in _BY_STR.items()}
for _name, _interned in _BY_STR.items():
    setattr(Method, _name, _interned)
