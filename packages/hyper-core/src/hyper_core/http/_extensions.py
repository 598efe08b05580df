"""Per-message extensions: a map keyed by type.

What belongs here: :class:`Extensions`.

Strategy: like ``http::Extensions`` in Rust, a value is stored under its
exact type, so unrelated components attach data to a message without agreeing
on key names, and a lookup by class returns a value of that class (typed
for mypy). Most messages carry no extension, so the dict behind the map is
created only when the first value is inserted: an empty :class:`Extensions`
costs one object with one ``None`` slot.
"""

from __future__ import annotations

from typing import Any, TypeVar, final

__all__ = ["Extensions"]

_T = TypeVar("_T")


@final
class Extensions:
    """A map from a type to one value of exactly that type.

    Keys are exact types: a value of a subclass is stored under the subclass
    and is not found by looking up its base class.
    """

    __slots__ = ("_map",)

    _map: dict[type[Any], Any] | None

    def __init__(self) -> None:
        self._map = None

    def insert(self, value: _T) -> _T | None:
        """Store ``value`` under ``type(value)``; return the value it replaces, if any."""
        if self._map is None:
            self._map = {}
        key = type(value)
        previous: _T | None = self._map.get(key)
        self._map[key] = value
        return previous

    def get(self, cls: type[_T]) -> _T | None:
        """Return the value stored under ``cls``, or None."""
        if self._map is None:
            return None
        value: _T | None = self._map.get(cls)
        return value

    def __getitem__(self, cls: type[_T]) -> _T:
        """Return the value stored under ``cls``.

        Raises:
            KeyError: If there is none.
        """
        if self._map is None:
            raise KeyError(cls)
        value: _T = self._map[cls]
        return value

    def remove(self, cls: type[_T]) -> _T | None:
        """Remove and return the value stored under ``cls``, or None."""
        if self._map is None:
            return None
        value: _T | None = self._map.pop(cls, None)
        return value

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and self._map is not None and cls in self._map

    def __len__(self) -> int:
        return 0 if self._map is None else len(self._map)

    def clear(self) -> None:
        """Remove every value."""
        self._map = None

    def extend(self, other: Extensions) -> None:
        """Insert every value of ``other``, replacing values of the same types."""
        if other._map:
            if self._map is None:
                self._map = {}
            self._map.update(other._map)

    def copy(self) -> Extensions:
        """Return a shallow copy: a new map holding the same values."""
        new = Extensions()
        if self._map:
            new._map = self._map.copy()
        return new

    def __repr__(self) -> str:
        values = [] if self._map is None else list(self._map.values())
        return f"Extensions({values!r})"
