"""Header fields: an ordered multimap with case-insensitive names.

What belongs here: :class:`Headers` and the field-name / field-value
grammar it enforces.

Strategy:

* Storage is one list of ``(name, value)`` byte pairs, in the order the
  fields were added, names in their original case. That is what a codec reads
  and writes, so going to and from the wire is a list hand-over, not a copy.
  Lookups scan the list and compare lowercased names: messages carry a few
  dozen fields at most, and a linear scan of a short list beats keeping an
  index up to date on every request.
* Every field that enters through the public API is validated when it enters
  (rule: no invalid name or value can be stored). Names must be RFC 9110
  tokens; values may hold HTAB, SP, visible ASCII and obs-text (0x80-0xFF),
  never CR, LF, NUL or another control character. So header injection and
  response splitting cannot be expressed with this type.
* Values are not trimmed: leading or trailing SP/HTAB is accepted and kept as
  given. Stripping optional whitespace is the parser's job on the way in, and
  what a sender writes is up to the sender.
* Validation is paid once per distinct name or value: bounded caches map
  names and short values already validated to their bytes (a service sends
  the same ``content-type`` on every response), and a plain ``dict`` is
  recognised before the slower ``Mapping`` check.
* ``Headers._from_trusted`` is the one door that skips validation. Only codecs
  whose parser already checked the bytes (h11, h2) may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeAlias, TypeVar, final, overload

from hyper_core._caused import caused
from hyper_core.error import InvalidHeader

__all__ = ["HeaderInit", "Headers"]

_T = TypeVar("_T")

HeaderInit: TypeAlias = (
    "Headers | Mapping[str, str | bytes] | Mapping[bytes, str | bytes]"
    " | Mapping[str | bytes, str | bytes] | Iterable[tuple[str | bytes, str | bytes]]"
)
"""What :class:`Headers` (and a request or response) can be built from."""

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# RFC 9110 section 5.5: field-value = *field-content; allowed are HTAB, SP,
# VCHAR and obs-text. Everything else is a control character: reject it.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# Names seen before, already validated and encoded: str or bytes -> bytes.
# Bounded so that names taken from untrusted input cannot grow it without
# limit; once full, new names are simply validated every time.
_NAME_CACHE: dict[object, bytes] = {}
_NAME_CACHE_MAX = 512  # entries; enough for every registered field name

# Values seen before, already validated and encoded: exact str or bytes ->
# bytes. Services repeat the same few values (``text/plain``, ``close``...)
# on every response. Bounded in entries and in the length of a value kept;
# when full it is emptied, so values that stop recurring make room for
# those that do (a unique value costs one wasted insert).
_VALUE_CACHE: dict[object, bytes] = {}
_VALUE_CACHE_MAX = 4096  # entries
_VALUE_CACHE_LONGEST = 256  # characters (or bytes) of a value worth keeping


def _bad_name(name: object, why: str) -> InvalidHeader:
    return InvalidHeader(f"invalid header name {name!r}: {why}")


def _encode_name(name: object) -> bytes:
    """Validate a field name and return it as bytes, original case."""
    try:
        cached = _NAME_CACHE.get(name)
    except TypeError:  # unhashable, so not a str or bytes: reported below
        cached = None
    if cached is not None:
        return cached
    if isinstance(name, str):
        if not name.isascii():
            raise _bad_name(name, "not a token (non-ASCII character)")
        encoded = name.encode("ascii")
    elif isinstance(name, bytes):
        encoded = bytes(name)
    else:
        raise TypeError(f"a header name must be str or bytes, not {type(name).__name__}")
    if _TOKEN.fullmatch(encoded) is None:
        if not encoded:
            raise _bad_name(name, "empty")
        offset = next(i for i, byte in enumerate(encoded) if byte not in _TCHAR)
        raise _bad_name(
            name, f"not a token ({chr(encoded[offset])!r} at offset {offset} is not allowed)"
        )
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[name] = encoded
    return encoded


def _encode_value(value: object, name: bytes) -> bytes:
    """Validate a field value and return it as bytes."""
    if type(value) is str:
        # Fast path: printable ASCII (0x20-0x7E) needs no further check.
        if value.isascii() and value.isprintable():
            return value.encode("ascii")
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            error = InvalidHeader(
                f"invalid value for header {name.decode('ascii')!r}: character "
                f"{value[exc.start]!r} at offset {exc.start} is not latin-1"
            )
            raise caused(error, None) from None
    elif isinstance(value, bytes):
        encoded = bytes(value)
    elif isinstance(value, str):
        return _encode_value(str.__str__(value), name)
    else:
        raise TypeError(f"a header value must be str or bytes, not {type(value).__name__}")
    bad = _BAD_VALUE_BYTE.search(encoded)
    if bad is not None:
        raise InvalidHeader(
            f"invalid value for header {name.decode('ascii')!r}: control character "
            f"{bad.group()!r} at offset {bad.start()} is not allowed"
        )
    return encoded


def _key(name: object) -> bytes | None:
    """Return the lowercase lookup key for ``name``, or None if nothing can match it."""
    if isinstance(name, bytes):
        return name.lower()
    if isinstance(name, str) and name.isascii():
        return name.encode("ascii").lower()
    return None


def _cached_value(value: object, name: bytes) -> bytes:
    """:func:`_encode_value` through the bounded cache of validated values."""
    kind = type(value)
    if kind is not str and kind is not bytes:
        # A subclass may hash and compare as it likes: never cached.
        return _encode_value(value, name)
    encoded = _VALUE_CACHE.get(value)
    if encoded is None:
        encoded = _encode_value(value, name)
        # One byte per character (latin-1): the encoded length is the value's.
        if len(encoded) <= _VALUE_CACHE_LONGEST:
            if len(_VALUE_CACHE) >= _VALUE_CACHE_MAX:
                _VALUE_CACHE.clear()
            _VALUE_CACHE[value] = encoded
    return encoded


def _validated_dict(init: dict[Any, Any]) -> list[tuple[bytes, bytes]]:
    """:func:`_validated` for a plain dict: its items are pairs already."""
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    names = _NAME_CACHE
    values = _VALUE_CACHE
    for name, value in init.items():
        encoded = names.get(name)
        if encoded is None:
            encoded = _encode_name(name)  # raises unless str or bytes
        kind = type(value)
        encoded_value = values.get(value) if kind is str or kind is bytes else None
        if encoded_value is None:
            encoded_value = _cached_value(value, encoded)
        append((encoded, encoded_value))
    return fields


#: A constant tuple: ``tuple | list`` would build a union on every field checked.
_PAIR_TYPES: Final = (tuple, list)


def _validated(init: object) -> list[tuple[bytes, bytes]]:
    """Validate and encode the fields of a mapping or an iterable of pairs."""
    pairs: Iterable[object]
    # A plain dict first: the usual argument, and far cheaper to recognise
    # than through the Mapping ABC.
    if type(init) is dict:
        return _validated_dict(init)
    if type(init) is list or type(init) is tuple:
        pairs = init
    elif isinstance(init, Mapping):
        pairs = init.items()
    elif isinstance(init, Iterable) and not isinstance(init, str | bytes):
        pairs = init
    else:
        raise TypeError(f"headers must be a mapping or (name, value) pairs, not {init!r}")
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    for pair in pairs:
        # Only real pairs: unpacking would split a two-character string.
        if not isinstance(pair, _PAIR_TYPES) or len(pair) != 2:
            raise TypeError(f"header fields must be (name, value) pairs, got {pair!r}")
        name, value = pair
        try:
            encoded = _NAME_CACHE.get(name)
        except TypeError:  # unhashable, so not a str or bytes: reported below
            encoded = None
        if encoded is None:
            encoded = _encode_name(name)
        kind = type(value)
        encoded_value = _VALUE_CACHE.get(value) if kind is str or kind is bytes else None
        if encoded_value is None:
            encoded_value = _cached_value(value, encoded)
        append((encoded, encoded_value))
    return fields


def _headers_of(init: HeaderInit | None) -> Headers:
    """``Headers(init)`` for the message constructors, with the usual cases first.

    A plain dict is validated without the Mapping ABC check, a
    :class:`Headers` is copied, anything else goes through the constructor.
    """
    fields: list[tuple[bytes, bytes]]
    if type(init) is dict:
        fields = _validated_dict(init)
    elif isinstance(init, Headers):
        fields = init._list.copy()
    elif init is None:
        fields = []
    else:
        return Headers(init)
    headers = Headers()  # not object.__new__: the compiled class refuses it
    headers._list = fields
    return headers


@final
class Headers:
    """An ordered multimap of HTTP header fields.

    Names are matched case-insensitively but kept in the case they were given,
    and fields keep the order they were added in, duplicates included. Names
    and values may be given as ``str`` (values must be latin-1 encodable) or
    ``bytes``; they are returned as ``str`` (latin-1 decoded) by the text
    accessors and as ``bytes`` by :meth:`raw` and :meth:`get_raw`.

    Args:
        init: Fields to start with: another :class:`Headers` (copied), a
            mapping, or an iterable of ``(name, value)`` pairs.

    Raises:
        InvalidHeader: If a name is not an RFC 9110 token, or a value holds a
            control character other than HTAB (CR, LF and NUL included) or a
            character outside latin-1. The message names the header.
        TypeError: If a name or value is neither ``str`` nor ``bytes``.
    """

    __slots__ = ("_list",)

    _list: list[tuple[bytes, bytes]]

    def __init__(self, init: HeaderInit | None = None) -> None:
        if init is None:
            self._list = []
        elif isinstance(init, Headers):
            self._list = init._list.copy()
        else:
            self._list = _validated(init)

    @classmethod
    def _from_trusted(cls, fields: list[tuple[bytes, bytes]]) -> Headers:
        """Wrap ``fields`` as they are: no validation, no copy.

        For codecs only, with fields their parser has already validated. The
        list becomes the storage of the new object; the caller must not
        keep using it. Note that parsers are not all as strict as this class:
        h11 lets control bytes other than CR, LF and NUL (0x01, DEL ...)
        through in values, so a codec that wants them refused must check.
        """
        headers = cls()  # not object.__new__: the compiled class refuses it
        headers._list = fields
        return headers

    # -- reading -----------------------------------------------------------

    @overload
    def get(self, name: str | bytes) -> str | None: ...
    @overload
    def get(self, name: str | bytes, default: _T) -> str | _T: ...
    def get(self, name: str | bytes, default: object = None) -> object:
        """Return the first value of ``name``, or ``default`` if it is absent."""
        key = _key(name)
        if key is not None:
            for field, value in self._list:
                if field.lower() == key:
                    return value.decode("latin-1")
        return default

    def get_raw(self, name: bytes) -> bytes | None:
        """Return the first value of ``name`` as bytes, or None.

        The hot-path lookup for codecs: ``name`` must already be lowercase
        bytes and is not normalized.
        """
        for field, value in self._list:
            if field.lower() == name:
                return value
        return None

    def get_all(self, name: str | bytes) -> list[str]:
        """Return every value of ``name``, in order (empty if absent)."""
        key = _key(name)
        if key is None:
            return []
        return [value.decode("latin-1") for field, value in self._list if field.lower() == key]

    def get_all_raw(self, name: bytes) -> list[bytes]:
        """Return every value of ``name`` as bytes; ``name`` must be lowercase bytes."""
        return [value for field, value in self._list if field.lower() == name]

    def __getitem__(self, name: str | bytes) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str | bytes):
            return False
        key = _key(name)
        return key is not None and any(field.lower() == key for field, _ in self._list)

    def __len__(self) -> int:
        """The number of fields (a name that occurs twice counts twice)."""
        return len(self._list)

    def __iter__(self) -> Iterator[str]:
        """Iterate over field names, original case, in order, duplicates included."""
        return (field.decode("latin-1") for field, _ in self._list)

    def items(self) -> list[tuple[str, str]]:
        """Return every field as a ``(name, value)`` pair of strings, in order."""
        return [(field.decode("latin-1"), value.decode("latin-1")) for field, value in self._list]

    def raw(self) -> list[tuple[bytes, bytes]]:
        """Return the fields as ``(name, value)`` byte pairs, in order, original case.

        This is the internal list itself, not a copy, so codecs can write it
        out without allocating. Treat it as read-only: changing it bypasses
        validation.
        """
        return self._list

    # -- writing -----------------------------------------------------------

    def append(self, name: str | bytes, value: str | bytes) -> None:
        """Add a field at the end, keeping any existing fields of that name."""
        encoded = _encode_name(name)
        self._list.append((encoded, _encode_value(value, encoded)))

    def insert(self, name: str | bytes, value: str | bytes) -> None:
        """Set ``name`` to the single value ``value``.

        Replaces every existing field of that name; the new field takes the
        position of the first one it replaces, or goes at the end.
        """
        encoded = _encode_name(name)
        field = (encoded, _encode_value(value, encoded))
        key = encoded.lower()
        fields = self._list
        for index, (existing, _) in enumerate(fields):
            if existing.lower() == key:
                fields[index + 1 :] = [f for f in fields[index + 1 :] if f[0].lower() != key]
                fields[index] = field
                return
        fields.append(field)

    def __setitem__(self, name: str | bytes, value: str | bytes) -> None:
        """Same as :meth:`insert`."""
        self.insert(name, value)

    def remove(self, name: str | bytes) -> list[str]:
        """Remove every field named ``name``; return their values (empty if none)."""
        key = _key(name)
        if key is None:
            return []
        removed: list[str] = []
        kept: list[tuple[bytes, bytes]] = []
        for field in self._list:
            if field[0].lower() == key:
                removed.append(field[1].decode("latin-1"))
            else:
                kept.append(field)
        if removed:
            # In place: a codec may hold the list returned by raw().
            self._list[:] = kept
        return removed

    def __delitem__(self, name: str | bytes) -> None:
        if not self.remove(name):
            raise KeyError(name)

    def setdefault(self, name: str | bytes, value: str | bytes) -> str:
        """Return the first value of ``name``, appending ``value`` first if it is absent."""
        current = self.get(name)
        if current is not None:
            return current
        encoded = _encode_name(name)
        encoded_value = _encode_value(value, encoded)
        self._list.append((encoded, encoded_value))
        return encoded_value.decode("latin-1")

    def extend(self, other: HeaderInit) -> None:
        """Append every field of ``other`` (headers, mapping or pairs), in order.

        All or nothing: if one field is invalid, none is added.
        """
        if isinstance(other, Headers):
            self._list.extend(other._list)
        else:
            self._list.extend(_validated(other))

    def copy(self) -> Headers:
        """Return an independent copy."""
        return Headers._from_trusted(self._list.copy())

    # -- comparing and showing --------------------------------------------

    def _grouped(self) -> dict[bytes, list[bytes]]:
        groups: dict[bytes, list[bytes]] = {}
        for field, value in self._list:
            groups.setdefault(field.lower(), []).append(value)
        return groups

    def __eq__(self, other: object) -> bool:
        """Equal if every name has the same values in the same order.

        Name case and the interleaving of different names do not matter.
        """
        if not isinstance(other, Headers):
            return NotImplemented
        return self._grouped() == other._grouped()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"
