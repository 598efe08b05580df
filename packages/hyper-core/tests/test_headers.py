"""Headers: the ordered, case-insensitive multimap and its validation."""

from __future__ import annotations

import re
import string
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hyper_core.error import HyperError, InvalidHeader
from hyper_core.http import Headers

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
# Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text.
VALUE_BYTES = [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)]
BAD_VALUE_BYTES = [b for b in range(0x100) if b not in VALUE_BYTES]
BAD_NAME_BYTES = [b for b in range(0x100) if chr(b) not in TCHAR]

names = st.text(alphabet=TCHAR, min_size=1, max_size=12)
# A small alphabet so generated names often collide, case-insensitively.
colliding_names = st.sampled_from(["a", "A", "Content-Type", "content-type", "X-Y", "x-y", "b"])
str_values = st.text(alphabet=st.sampled_from([chr(b) for b in VALUE_BYTES]), max_size=16)
byte_values = st.lists(st.sampled_from(VALUE_BYTES), max_size=16).map(bytes)
values = st.one_of(str_values, byte_values)
fields = st.lists(st.tuples(st.one_of(names, colliding_names), values), max_size=12)


def as_text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def reference_get_all(pairs: list[tuple[str, str | bytes]], name: str) -> list[str]:
    return [as_text(v) for n, v in pairs if n.lower() == name.lower()]


# -- construction -------------------------------------------------------------


def test_empty() -> None:
    headers = Headers()
    assert len(headers) == 0
    assert list(headers) == []
    assert headers.items() == []
    assert headers.get("a") is None
    assert "a" not in headers


def test_from_pairs_keeps_order_case_and_duplicates() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("X-A", "1"), ("x-a", b"2")])
    assert headers.items() == [("Content-Type", "text/plain"), ("X-A", "1"), ("x-a", "2")]
    assert headers.raw() == [(b"Content-Type", b"text/plain"), (b"X-A", b"1"), (b"x-a", b"2")]
    assert list(headers) == ["Content-Type", "X-A", "x-a"]
    assert len(headers) == 3


def test_from_mapping() -> None:
    mixed: dict[str | bytes, str | bytes] = {"Host": "example.com", b"Accept": b"*/*"}
    headers = Headers(mixed)
    assert headers.items() == [("Host", "example.com"), ("Accept", "*/*")]
    assert Headers(OrderedDict([("a", "1")])).items() == [("a", "1")]


def test_from_headers_copies() -> None:
    original = Headers([("a", "1")])
    copy = Headers(original)
    copy.append("b", "2")
    assert original.items() == [("a", "1")]
    assert copy.items() == [("a", "1"), ("b", "2")]


def test_from_generator_and_list_pairs() -> None:
    assert Headers(((n, v) for n, v in [("a", "1")])).items() == [("a", "1")]
    assert Headers([["a", "1"]]).items() == [("a", "1")]  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [["ab"], [("a",)], [("a", "b", "c")], ["a"], [b"ab"], [1]])
def test_pairs_must_be_pairs(bad: list[object]) -> None:
    with pytest.raises(TypeError, match="pairs"):
        Headers(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["ab", b"ab", 3])
def test_init_must_be_mapping_or_iterable(bad: object) -> None:
    with pytest.raises(TypeError):
        Headers(bad)  # type: ignore[arg-type]


def test_names_and_values_must_be_str_or_bytes() -> None:
    with pytest.raises(TypeError, match="header name"):
        Headers([(1, "a")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="header name"):
        Headers([(bytearray(b"a"), "a")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="header value"):
        Headers([("a", 1)])  # type: ignore[list-item]


def test_str_and_bytes_subclasses_are_accepted() -> None:
    class S(str):
        pass

    class B(bytes):
        pass

    headers = Headers([(S("X-S"), S("v")), (B(b"X-B"), B(b"w"))])
    assert headers.raw() == [(b"X-S", b"v"), (b"X-B", b"w")]
    assert all(type(n) is bytes and type(v) is bytes for n, v in headers.raw())


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        (b"", "empty"),
        ("a b", "' ' at offset 1"),
        ("a:b", "':' at offset 1"),
        ("X-Foo\r\nSet-Cookie", "'\\r' at offset 5"),
        ("a\x00", "'\\x00' at offset 1"),
        ("na\u00efve", "non-ASCII"),
        (b"na\xefve", "'ï' at offset 2"),
        ("(a)", "'(' at offset 0"),
    ],
)
def test_invalid_names(name: str | bytes, message: str) -> None:
    with pytest.raises(InvalidHeader, match="invalid header name") as info:
        Headers([(name, "v")])
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, HyperError)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\r\nSet-Cookie: x=y", "b'\\r' at offset 1"),
        ("a\nb", "b'\\n' at offset 1"),
        (b"a\rb", "b'\\r' at offset 1"),
        ("\x00", "b'\\x00' at offset 0"),
        ("a\x7f", "b'\\x7f' at offset 1"),
        ("\x1b[31m", "b'\\x1b' at offset 0"),
        ("caf\u00e9 \u20ac", "'€' at offset 5 is not latin-1"),
    ],
)
def test_invalid_values_name_the_header(value: str | bytes, message: str) -> None:
    with pytest.raises(InvalidHeader, match="invalid value for header 'X-Thing'") as info:
        Headers([("X-Thing", value)])
    assert message in str(info.value)


@pytest.mark.parametrize(
    "value", ["", " leading", "trailing\t", "a\tb", "caf\u00e9", b"\x80\xff", "~!\"#$%&'()*+,"]
)
def test_allowed_values(value: str | bytes) -> None:
    # Surrounding whitespace is accepted and kept: trimming is the parser's job.
    headers = Headers([("a", value)])
    assert headers.get_raw(b"a") == (value if isinstance(value, bytes) else value.encode("latin-1"))


def test_every_mutator_validates() -> None:
    headers = Headers([("a", "1")])
    for mutate in (
        lambda: headers.append("b\n", "x"),
        lambda: headers.append("b", "x\n"),
        lambda: headers.insert("b", "x\r"),
        lambda: headers.insert("b c", "x"),
        lambda: headers.__setitem__("b", "\x00"),
        lambda: headers.setdefault("b", "\n"),
        lambda: headers.setdefault(" b", "x"),
        lambda: headers.extend([("b", "ok"), ("c", "bad\n")]),
        lambda: headers.extend({"b\r": "x"}),
    ):
        with pytest.raises(InvalidHeader):
            mutate()
    # Nothing half-applied: extend is all or nothing.
    assert headers.items() == [("a", "1")]


@given(
    st.text(alphabet=TCHAR, max_size=6),
    st.sampled_from([chr(b) for b in BAD_NAME_BYTES]) | st.characters(min_codepoint=0x100),
    st.text(alphabet=TCHAR, max_size=6),
    values,
)
def test_no_invalid_str_name_is_accepted(prefix: str, bad: str, suffix: str, value: str) -> None:
    with pytest.raises(InvalidHeader):
        Headers([(prefix + bad + suffix, value)])
    headers = Headers()
    with pytest.raises(InvalidHeader):
        headers.append(prefix + bad + suffix, value)
    assert len(headers) == 0


@given(
    st.binary(max_size=6).filter(lambda b: all(chr(c) in TCHAR for c in b)),
    st.sampled_from(BAD_NAME_BYTES),
    st.text(alphabet=TCHAR, max_size=6).map(str.encode),
)
def test_no_invalid_bytes_name_is_accepted(prefix: bytes, bad: int, suffix: bytes) -> None:
    with pytest.raises(InvalidHeader):
        Headers([(prefix + bytes([bad]) + suffix, b"v")])


@given(names, byte_values, st.sampled_from(BAD_VALUE_BYTES), byte_values)
def test_no_invalid_bytes_value_is_accepted(
    name: str, prefix: bytes, bad: int, suffix: bytes
) -> None:
    value = prefix + bytes([bad]) + suffix
    with pytest.raises(InvalidHeader, match=re.escape(f"header {name!r}")):
        Headers([(name, value)])
    with pytest.raises(InvalidHeader):
        Headers().insert(name, value)


@given(
    names,
    str_values,
    st.sampled_from([chr(b) for b in BAD_VALUE_BYTES]) | st.characters(min_codepoint=0x100),
    str_values,
)
def test_no_invalid_str_value_is_accepted(name: str, prefix: str, bad: str, suffix: str) -> None:
    with pytest.raises(InvalidHeader, match=re.escape(f"header {name!r}")):
        Headers([(name, prefix + bad + suffix)])
    with pytest.raises(InvalidHeader):
        Headers().setdefault(name, prefix + bad + suffix)


@given(fields)
def test_stored_fields_are_always_valid(pairs: list[tuple[str, str | bytes]]) -> None:
    for name, value in Headers(pairs).raw():
        assert name
        assert all(chr(c) in TCHAR for c in name)
        assert all(c in VALUE_BYTES for c in value)


# -- lookup ---------------------------------------------------------------------


def test_lookup_is_case_insensitive_and_returns_first() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Host", "h"), ("set-cookie", "b=2")])
    assert headers.get("SET-COOKIE") == "a=1"
    assert headers["set-cookie"] == "a=1"
    assert headers.get(b"Host") == "h"
    assert headers.get_all("Set-cookie") == ["a=1", "b=2"]
    assert headers.get_all(b"SET-COOKIE") == ["a=1", "b=2"]
    assert "HOST" in headers
    assert b"host" in headers
    assert "missing" not in headers


def test_get_default_and_missing() -> None:
    headers = Headers([("a", "1")])
    assert headers.get("b") is None
    assert headers.get("b", "fallback") == "fallback"
    assert headers.get("a", "fallback") == "1"
    assert headers.get_all("b") == []
    with pytest.raises(KeyError):
        headers["b"]


def test_lookups_with_names_that_can_never_match() -> None:
    headers = Headers([("a", "1")])
    assert headers.get("\u00e4") is None
    assert headers.get_all("\u00e4") == []
    assert headers.remove("\u00e4") == []
    assert "\u00e4" not in headers
    assert 1 not in headers
    assert None not in headers


def test_raw_lookups_expect_lowercase_bytes() -> None:
    headers = Headers([("Content-Length", "12"), ("X-A", "1"), ("x-a", "2")])
    assert headers.get_raw(b"content-length") == b"12"
    assert headers.get_raw(b"missing") is None
    assert headers.get_all_raw(b"x-a") == [b"1", b"2"]
    assert headers.get_all_raw(b"missing") == []


def test_values_decode_as_latin1() -> None:
    headers = Headers([(b"a", b"caf\xe9")])
    assert headers.get("a") == "caf\u00e9"
    assert headers.items() == [("a", "caf\u00e9")]


@given(fields, st.one_of(names, colliding_names))
def test_lookup_matches_a_reference_model(pairs: list[tuple[str, str | bytes]], probe: str) -> None:
    headers = Headers(pairs)
    for name in {probe, probe.upper(), probe.lower(), probe.swapcase()}:
        expected = reference_get_all(pairs, name)
        assert headers.get_all(name) == expected
        assert headers.get_all(name.encode()) == expected
        assert headers.get(name) == (expected[0] if expected else None)
        assert (name in headers) == bool(expected)
        assert headers.get_all_raw(name.lower().encode()) == [e.encode("latin-1") for e in expected]


# -- mutation -------------------------------------------------------------------


def test_append_keeps_existing() -> None:
    headers = Headers([("a", "1")])
    headers.append("A", "2")
    assert headers.items() == [("a", "1"), ("A", "2")]


def test_insert_replaces_all_at_the_first_position() -> None:
    headers = Headers([("X", "1"), ("b", "2"), ("x", "3"), ("c", "4"), ("X", "5")])
    headers.insert("x", "new")
    assert headers.items() == [("x", "new"), ("b", "2"), ("c", "4")]


def test_insert_appends_when_absent_and_setitem_is_insert() -> None:
    headers = Headers([("a", "1")])
    headers.insert("b", "2")
    headers["A"] = "3"
    assert headers.items() == [("A", "3"), ("b", "2")]


def test_remove_returns_removed_values() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    assert headers.remove("a") == ["1", "3"]
    assert headers.items() == [("b", "2")]
    assert headers.remove("a") == []


def test_delitem() -> None:
    headers = Headers([("a", "1"), ("A", "2"), ("b", "3")])
    del headers["a"]
    assert headers.items() == [("b", "3")]
    with pytest.raises(KeyError):
        del headers["a"]


def test_setdefault() -> None:
    headers = Headers([("a", "1")])
    assert headers.setdefault("A", "2") == "1"
    assert headers.setdefault("b", b"3") == "3"
    assert headers.items() == [("a", "1"), ("b", "3")]


def test_extend_accepts_every_init_kind() -> None:
    headers = Headers([("a", "1")])
    headers.extend({"b": "2"})
    headers.extend([("c", b"3")])
    headers.extend(Headers([("a", "4")]))
    assert headers.items() == [("a", "1"), ("b", "2"), ("c", "3"), ("a", "4")]


def test_extend_with_itself() -> None:
    headers = Headers([("a", "1")])
    headers.extend(headers)
    assert headers.items() == [("a", "1"), ("a", "1")]


def test_raw_is_the_live_list_and_mutations_keep_it() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("a", "3")])
    raw = headers.raw()
    assert headers.raw() is raw
    headers.insert("a", "x")
    headers.remove("b")
    headers.append("c", "y")
    assert headers.raw() is raw
    assert raw == [(b"a", b"x"), (b"c", b"y")]


def test_copy_is_independent() -> None:
    headers = Headers([("a", "1")])
    copy = headers.copy()
    copy.append("b", "2")
    headers.insert("a", "9")
    assert headers.items() == [("a", "9")]
    assert copy.items() == [("a", "1"), ("b", "2")]


def test_from_trusted_neither_validates_nor_copies() -> None:
    fields = [(b"X-Raw", b"value")]
    headers = Headers._from_trusted(fields)
    assert headers.raw() is fields
    assert headers.get("x-raw") == "value"


# -- equality and representation ------------------------------------------------


def test_equality_ignores_name_case_and_interleaving() -> None:
    a = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert a == Headers([("a", "1"), ("a", "3"), ("b", "2")])
    assert a != Headers([("a", "3"), ("a", "1"), ("b", "2")])  # order within a name counts
    assert a != Headers([("a", "1"), ("b", "2")])
    assert Headers() == Headers()


def test_equality_with_other_types_is_not_implemented() -> None:
    assert Headers() != {}
    assert Headers([("a", "1")]) != [("a", "1")]


def test_headers_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


def test_repr() -> None:
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"


# -- properties -------------------------------------------------------------------


@given(fields)
def test_items_round_trip(pairs: list[tuple[str, str | bytes]]) -> None:
    headers = Headers(pairs)
    again = Headers(headers.items())
    assert again == headers
    assert again.items() == headers.items()
    assert Headers(headers.raw()).raw() == headers.raw()
    assert headers.items() == [(n, as_text(v)) for n, v in pairs]
    assert list(headers) == [n for n, _ in pairs]
    assert len(headers) == len(pairs)


@given(fields)
def test_equality_is_case_insensitive_on_names(pairs: list[tuple[str, str | bytes]]) -> None:
    assert Headers(pairs) == Headers([(n.swapcase(), v) for n, v in pairs])


class HeadersMachine(RuleBasedStateMachine):
    """Headers against a plain list of (name, value) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.headers = Headers()
        self.model: list[tuple[str, str]] = []

    @rule(name=colliding_names, value=str_values)
    def append(self, name: str, value: str) -> None:
        self.headers.append(name, value)
        self.model.append((name, value))

    @rule(name=colliding_names, value=str_values)
    def insert(self, name: str, value: str) -> None:
        self.headers.insert(name, value)
        key = name.lower()
        first = next((i for i, (n, _) in enumerate(self.model) if n.lower() == key), None)
        if first is None:
            self.model.append((name, value))
        else:
            self.model = [
                (name, value) if i == first else pair
                for i, pair in enumerate(self.model)
                if i == first or pair[0].lower() != key
            ]

    @rule(name=colliding_names)
    def remove(self, name: str) -> None:
        removed = self.headers.remove(name)
        assert removed == reference_get_all(list(self.model), name)
        self.model = [(n, v) for n, v in self.model if n.lower() != name.lower()]

    @rule(name=colliding_names, value=str_values)
    def setdefault(self, name: str, value: str) -> None:
        existing = reference_get_all(list(self.model), name)
        assert self.headers.setdefault(name, value) == (existing[0] if existing else value)
        if not existing:
            self.model.append((name, value))

    @invariant()
    def matches_model(self) -> None:
        assert self.headers.items() == self.model


TestHeadersMachine = HeadersMachine.TestCase


# -- the caches of validated names and values ---------------------------------


def test_repeated_values_still_validated_and_encoded() -> None:
    for _ in range(3):  # later rounds are served from the value cache
        given: dict[str, str | bytes] = {
            "content-type": "text/plain",
            "x-b": b"raw",
            "x-l": "caf\xe9",
        }
        headers = Headers(given)
        assert headers.raw() == [
            (b"content-type", b"text/plain"),
            (b"x-b", b"raw"),
            (b"x-l", b"caf\xe9"),
        ]
        with pytest.raises(InvalidHeader, match="x-bad"):
            Headers({"x-bad": "a\r\nb"})
        with pytest.raises(InvalidHeader, match="x-bad"):
            Headers([("x-bad", b"a\x00b")])
        with pytest.raises(TypeError, match="str or bytes"):
            Headers({"x-n": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="str or bytes"):
            Headers({"x-n": ["unhashable"]})  # type: ignore[arg-type]
        with pytest.raises(InvalidHeader, match="name"):
            Headers({"bad name": "v"})


def test_value_cache_is_bounded_and_keeps_working_when_full() -> None:
    from hyper_core.http import _headers

    for i in range(_headers._VALUE_CACHE_MAX + 10):
        assert Headers({"x-i": f"v{i}"}).raw() == [(b"x-i", b"v%d" % i)]
        assert len(_headers._VALUE_CACHE) <= _headers._VALUE_CACHE_MAX
    long_value = "v" * (_headers._VALUE_CACHE_LONGEST + 1)
    assert Headers([("x-long", long_value)]).get("x-long") == long_value
    assert long_value not in _headers._VALUE_CACHE


def test_str_subclass_values_are_encoded_by_content() -> None:
    class Loud(str):
        def __str__(self) -> str:
            return "quiet"

    headers = Headers({"x-s": Loud("text/plain")})
    assert headers.raw() == [(b"x-s", b"text/plain")]
    with pytest.raises(InvalidHeader):
        Headers({"x-s": Loud("a\nb")})


def test_dict_and_mapping_and_pairs_give_the_same_fields() -> None:
    fields: dict[str, str | bytes] = {"B": "2", "a": "1", "C": b"3"}
    expected = [(b"B", b"2"), (b"a", b"1"), (b"C", b"3")]
    assert Headers(fields).raw() == expected
    assert Headers(OrderedDict(fields)).raw() == expected
    assert Headers(list[tuple[str | bytes, str | bytes]](fields.items())).raw() == expected
