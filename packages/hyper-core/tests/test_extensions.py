"""Extensions: the type-keyed map attached to messages."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hyper_core.http import Extensions


@dataclass
class RemoteAddr:
    host: str
    port: int


@dataclass
class RequestId:
    value: str


class SpecialId(RequestId):
    pass


def test_empty() -> None:
    extensions = Extensions()
    assert len(extensions) == 0
    assert not extensions
    assert extensions.get(RequestId) is None
    assert RequestId not in extensions
    assert extensions.remove(RequestId) is None
    with pytest.raises(KeyError):
        extensions[RequestId]
    assert repr(extensions) == "Extensions([])"


def test_insert_and_get_by_type() -> None:
    extensions = Extensions()
    assert extensions.insert(RequestId("a")) is None
    assert extensions.insert(RemoteAddr("127.0.0.1", 80)) is None
    assert extensions.get(RequestId) == RequestId("a")
    assert extensions[RemoteAddr] == RemoteAddr("127.0.0.1", 80)
    assert RequestId in extensions
    assert len(extensions) == 2
    assert extensions


def test_insert_replaces_and_returns_the_previous_value() -> None:
    extensions = Extensions()
    extensions.insert(RequestId("a"))
    assert extensions.insert(RequestId("b")) == RequestId("a")
    assert extensions[RequestId] == RequestId("b")
    assert len(extensions) == 1


def test_keys_are_exact_types() -> None:
    extensions = Extensions()
    extensions.insert(SpecialId("s"))
    assert extensions.get(RequestId) is None
    assert extensions.get(SpecialId) == SpecialId("s")
    extensions.insert(RequestId("r"))
    assert len(extensions) == 2


def test_builtin_types_work_as_keys() -> None:
    extensions = Extensions()
    extensions.insert(b"raw reason")
    extensions.insert(42)
    assert extensions[bytes] == b"raw reason"
    assert extensions[int] == 42
    assert extensions.get(str) is None


def test_remove() -> None:
    extensions = Extensions()
    extensions.insert(RequestId("a"))
    assert extensions.remove(RequestId) == RequestId("a")
    assert extensions.remove(RequestId) is None
    assert RequestId not in extensions
    assert len(extensions) == 0


def test_clear() -> None:
    extensions = Extensions()
    extensions.insert(RequestId("a"))
    extensions.clear()
    assert len(extensions) == 0
    assert extensions.get(RequestId) is None


def test_copy_is_shallow_and_independent() -> None:
    extensions = Extensions()
    shared = RemoteAddr("h", 1)
    extensions.insert(shared)
    copy = extensions.copy()
    copy.insert(RequestId("only in copy"))
    assert RequestId not in extensions
    assert copy[RemoteAddr] is shared
    assert len(Extensions().copy()) == 0


def test_extend_replaces_values_of_the_same_type() -> None:
    a = Extensions()
    a.insert(RequestId("a"))
    a.insert(RemoteAddr("h", 1))
    b = Extensions()
    b.insert(RequestId("b"))
    a.extend(b)
    assert a[RequestId] == RequestId("b")
    assert a[RemoteAddr] == RemoteAddr("h", 1)
    empty = Extensions()
    empty.extend(b)
    assert empty[RequestId] == RequestId("b")
    empty.extend(Extensions())
    assert len(empty) == 1


def test_contains_with_non_types() -> None:
    extensions = Extensions()
    extensions.insert(RequestId("a"))
    assert "RequestId" not in extensions
    assert RequestId("a") not in extensions


def test_repr_shows_values() -> None:
    extensions = Extensions()
    extensions.insert(RequestId("a"))
    assert repr(extensions) == "Extensions([RequestId(value='a')])"


def test_slots() -> None:
    with pytest.raises(AttributeError):
        Extensions().anything = 1  # type: ignore[attr-defined]
