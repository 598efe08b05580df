"""Uri: the four request-target forms, validation, round trips."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hyper_core.error import HyperError, InvalidUri
from hyper_core.http import Uri, UriForm

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
HEX = "0123456789abcdefABCDEF"
UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
# Characters a URI may never hold: controls, SP, DEL; and anything non-ASCII.
BAD_ASCII = [chr(c) for c in [*range(0x21), 0x7F]]

pct = st.tuples(st.sampled_from(HEX), st.sampled_from(HEX)).map(lambda t: f"%{t[0]}{t[1]}")
path_char = st.sampled_from([c for c in VISIBLE if c not in "%?#"]) | pct
query_char = st.sampled_from([c for c in VISIBLE if c not in "%#"]) | pct
segment = st.lists(path_char, max_size=6).map("".join)
paths = st.lists(segment, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
queries = st.none() | st.lists(query_char, max_size=10).map("".join)
origins = st.builds(lambda p, q: p if q is None else f"{p}?{q}", paths, queries)

schemes = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,6}", fullmatch=True)
reg_names = st.lists(st.sampled_from(UNRESERVED + SUB_DELIMS) | pct, min_size=1, max_size=12).map(
    "".join
)
hosts = reg_names | st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(lambda a: f"[{a}]")
ports = st.integers(0, 65535)
userinfos = st.lists(st.sampled_from(UNRESERVED + SUB_DELIMS + ":") | pct, max_size=8).map("".join)
authorities = st.builds(
    lambda u, h, p: (f"{u}@" if u is not None else "") + h + (f":{p}" if p is not None else ""),
    st.none() | userinfos,
    hosts,
    st.none() | ports,
)
absolutes = st.builds(
    lambda s, a, p, q: f"{s}://{a}{p}" + ("" if q is None else f"?{q}"),
    schemes,
    authorities,
    st.just("") | paths,
    queries,
)
authority_forms = st.builds(lambda h, p: f"{h}:{p}", hosts, ports)
any_uri = origins | absolutes | authority_forms | st.just("*")


def parts(uri: Uri) -> tuple[object, ...]:
    return (
        uri.form,
        uri.scheme,
        uri.authority,
        uri.host,
        uri.port,
        uri.path,
        uri.query,
        uri.path_and_query,
        str(uri),
    )


# -- the four forms -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form", "scheme", "authority", "host", "port", "path", "query"),
    [
        ("/", UriForm.ORIGIN, None, None, None, None, "/", None),
        ("/a/b?c=d&e", UriForm.ORIGIN, None, None, None, None, "/a/b", "c=d&e"),
        ("/a?", UriForm.ORIGIN, None, None, None, None, "/a", ""),
        ("/a?b?c", UriForm.ORIGIN, None, None, None, None, "/a", "b?c"),
        ("//not-a-host/p", UriForm.ORIGIN, None, None, None, None, "//not-a-host/p", None),
        ("/%7Euser", UriForm.ORIGIN, None, None, None, None, "/%7Euser", None),
        ('/q={"a":1}|x', UriForm.ORIGIN, None, None, None, None, '/q={"a":1}|x', None),
        ("/p#frag", UriForm.ORIGIN, None, None, None, None, "/p", None),
        ("/p?q#frag", UriForm.ORIGIN, None, None, None, None, "/p", "q"),
        (
            "http://example.com",
            UriForm.ABSOLUTE,
            "http",
            "example.com",
            "example.com",
            None,
            "/",
            None,
        ),
        (
            "HTTP://Example.COM:8080/a?b",
            UriForm.ABSOLUTE,
            "http",
            "Example.COM:8080",
            "Example.COM",
            8080,
            "/a",
            "b",
        ),
        ("https://h?q", UriForm.ABSOLUTE, "https", "h", "h", None, "/", "q"),
        ("http://h#f", UriForm.ABSOLUTE, "http", "h", "h", None, "/", None),
        ("http://user:pw@h:1/", UriForm.ABSOLUTE, "http", "user:pw@h:1", "h", 1, "/", None),
        ("http://[::1]:443/x", UriForm.ABSOLUTE, "http", "[::1]:443", "::1", 443, "/x", None),
        (
            "http://[2001:db8::7]",
            UriForm.ABSOLUTE,
            "http",
            "[2001:db8::7]",
            "2001:db8::7",
            None,
            "/",
            None,
        ),
        ("http://127.0.0.1:0/", UriForm.ABSOLUTE, "http", "127.0.0.1:0", "127.0.0.1", 0, "/", None),
        ("ws+x.y-z://h:65535", UriForm.ABSOLUTE, "ws+x.y-z", "h:65535", "h", 65535, "/", None),
        (
            "example.com:443",
            UriForm.AUTHORITY,
            None,
            "example.com:443",
            "example.com",
            443,
            "",
            None,
        ),
        ("[::1]:8080", UriForm.AUTHORITY, None, "[::1]:8080", "::1", 8080, "", None),
        ("10.0.0.1:80", UriForm.AUTHORITY, None, "10.0.0.1:80", "10.0.0.1", 80, "", None),
        ("*", UriForm.ASTERISK, None, None, None, None, "*", None),
    ],
)
def test_parse(
    text: str,
    form: UriForm,
    scheme: str | None,
    authority: str | None,
    host: str | None,
    port: int | None,
    path: str,
    query: str | None,
) -> None:
    for uri in (Uri(text), Uri(text.encode())):
        assert uri.form is form
        assert uri.scheme == scheme
        assert uri.authority == authority
        assert uri.host == host
        assert uri.port == port
        assert uri.path == path
        assert uri.query == query


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/a?b", "/a?b"),
        ("/a?", "/a?"),
        ("/a#f", "/a"),
        ("HTTP://H:1", "http://H:1/"),
        ("http://h?q", "http://h/?q"),
        ("h:1", "h:1"),
        ("*", "*"),
    ],
)
def test_str(text: str, shown: str) -> None:
    assert str(Uri(text)) == shown
    assert repr(Uri(text)) == f"Uri({shown!r})"


def test_path_and_query() -> None:
    assert Uri("/a?b").path_and_query == "/a?b"
    assert Uri("/a").path_and_query == "/a"
    assert Uri("http://h").path_and_query == "/"
    assert Uri("h:1").path_and_query == ""
    assert Uri("*").path_and_query == "*"


# -- rejection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (b"", "empty"),
        ("/a b", "' ' at offset 2"),
        ("/a\tb", "'\\t' at offset 2"),
        ("/a\r\nHost: evil", "'\\r' at offset 2"),
        ("/\x00", "'\\x00' at offset 1"),
        ("/\x7f", "'\\x7f' at offset 1"),
        ("/caf\u00e9", "'é' at offset 4"),
        (b"/caf\xc3\xa9", "byte 0xc3 at offset 4"),
        ("/%", "'%' at offset 1"),
        ("/%4", "'%' at offset 1"),
        ("/%4g", "'%' at offset 1"),
        ("/ok%20then%zz", "'%' at offset 10"),
        ("/?%", "'%' at offset 2"),
        ("http://", "empty host"),
        ("http:///p", "empty host"),
        ("http://:80/", "empty host"),
        ("http://u@/", "empty host"),
        ("http://h:/", "empty port"),
        ("http://h:65536/", "invalid port"),
        ("http://h:123456/", "invalid port"),
        ("http://h:8a/", "invalid port"),
        ("http://h:-1/", "invalid port"),
        ("http://h:1:2/", "invalid port"),
        ("1http://h/", "invalid scheme"),
        ("ht_tp://h/", "invalid scheme"),
        ("://h/", "invalid scheme"),
        ("http://h^/", "invalid host"),
        ("http://a@b@h/", "invalid userinfo"),
        ("http://[::1/", "unclosed"),
        ("http://[::1]x/", "after IPv6"),
        ("http://[nope]/", "invalid IPv6"),
        ("http://[::1%25eth0]/", "zone"),
        ("http://[1.2.3.4]/", "invalid IPv6"),
        ("example.com", "needs host:port"),
        ("example.com:", "empty port"),
        ("user@example.com:443", "userinfo"),
        ("example.com:443/path", "invalid port"),
        ("h:1?q", "invalid port"),
        ("a/b", "invalid host"),
        ("?q", "invalid host"),
        ("**", "needs host:port"),
        ("mailto:someone@example.com", "userinfo"),
    ],
)
def test_invalid(text: str | bytes, message: str) -> None:
    with pytest.raises(InvalidUri, match="invalid URI") as info:
        Uri(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, HyperError)


def test_long_uris_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidUri) as info:
        Uri("/" + "a" * 500 + " ")
    assert len(str(info.value)) < 200
    assert "offset 501" in str(info.value)


def test_uri_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        Uri(42)  # type: ignore[arg-type]


@given(
    any_uri,
    st.data(),
    st.sampled_from(BAD_ASCII) | st.characters(min_codepoint=0x80),
)
def test_no_bad_character_is_accepted(text: str, data: st.DataObject, bad: str) -> None:
    at = data.draw(st.integers(0, len(text)))
    broken = text[:at] + bad + text[at:]
    # A lone surrogate has no UTF-8 form: its bytes are encoded as if it had.
    with pytest.raises(InvalidUri):
        Uri(broken)
    with pytest.raises(InvalidUri):
        Uri(broken.encode("utf-8", "surrogatepass"))
    if broken.startswith("/"):
        with pytest.raises(InvalidUri):
            Uri._from_origin_trusted(broken.encode("utf-8", "surrogatepass"))


@given(
    any_uri,
    st.data(),
    st.sampled_from(["%"])
    | st.sampled_from([c for c in VISIBLE if c not in HEX]).map(lambda c: "%" + c)
    | st.tuples(st.sampled_from(HEX), st.sampled_from([c for c in VISIBLE if c not in HEX])).map(
        lambda t: f"%{t[0]}{t[1]}"
    ),
)
def test_no_bad_escape_is_accepted(text: str, data: st.DataObject, bad: str) -> None:
    at = data.draw(st.integers(0, len(text)))
    if bad == "%":
        at = len(text)  # a lone '%' is only surely bad at the very end
    broken = text[:at] + bad + text[at:]
    with pytest.raises(InvalidUri):
        Uri(broken)
    with pytest.raises(InvalidUri):
        Uri(broken.encode())


@given(st.sampled_from(["http://h", "h"]), st.integers(65536, 10**8))
def test_no_out_of_range_port_is_accepted(prefix: str, port: int) -> None:
    with pytest.raises(InvalidUri, match="invalid port"):
        Uri(f"{prefix}:{port}")


# -- round trips and equality -----------------------------------------------------


@given(any_uri)
@example("/a?")
@example("http://[::ffff:1.2.3.4]:1/")
def test_str_parses_back_to_an_equal_uri(text: str) -> None:
    uri = Uri(text)
    again = Uri(str(uri))
    assert again == uri
    assert hash(again) == hash(uri)
    assert parts(again) == parts(uri)
    assert Uri(text.encode()) == uri
    assert Uri(uri) == uri
    assert parts(Uri(uri)) == parts(uri)


@given(origins)
def test_origin_targets_keep_their_text(text: str) -> None:
    uri = Uri(text)
    assert uri.form is UriForm.ORIGIN
    assert str(uri) == text
    assert uri.path_and_query == text


@given(absolutes)
def test_absolute_parts(text: str) -> None:
    uri = Uri(text)
    assert uri.form is UriForm.ABSOLUTE
    assert uri.scheme == text.split(":", 1)[0].lower()
    assert uri.path.startswith("/")
    assert uri.host
    assert (
        Uri.from_parts(
            scheme=uri.scheme, authority=uri.authority, path_and_query=uri.path_and_query
        )
        == uri
    )


@given(origins)
def test_trusted_origin_equals_parsed(text: str) -> None:
    trusted = Uri._from_origin_trusted(text.encode())
    assert parts(trusted) == parts(Uri(text))
    # Equality and hashing work before any accessor has split the target.
    assert Uri._from_origin_trusted(text.encode()) == Uri(text)
    assert hash(Uri._from_origin_trusted(text.encode())) == hash(Uri(text))


def test_trusted_target_in_other_forms_is_fully_parsed() -> None:
    assert Uri._from_origin_trusted(b"http://h/p").host == "h"
    assert Uri._from_origin_trusted(b"*").form is UriForm.ASTERISK
    assert Uri._from_origin_trusted(b"h:443").port == 443
    with pytest.raises(InvalidUri):
        Uri._from_origin_trusted(b"http://h:99999/")
    with pytest.raises(InvalidUri):
        Uri._from_origin_trusted(b"/a%zz")
    with pytest.raises(InvalidUri):
        Uri._from_origin_trusted(b"")


def test_equality() -> None:
    assert Uri("HTTP://EXAMPLE.com/a") == Uri("http://example.COM/a")
    assert Uri("http://h/A") != Uri("http://h/a")
    assert Uri("/a?") != Uri("/a")
    assert Uri("h:1") != Uri("http://h:1")
    assert Uri("/a") != "/a"
    assert len({Uri("http://H/"), Uri("http://h"), Uri("http://h/")}) == 1


def test_uri_is_immutable() -> None:
    uri = Uri("/a")
    with pytest.raises(AttributeError):
        uri.path = "/b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        uri.extra = 1  # type: ignore[attr-defined]


# -- from_parts ---------------------------------------------------------------------


def test_from_parts_forms() -> None:
    assert Uri.from_parts(scheme="https", authority="h:1", path_and_query="/p?q") == Uri(
        "https://h:1/p?q"
    )
    assert str(Uri.from_parts(scheme="HTTP", authority="h")) == "http://h/"
    assert str(Uri.from_parts(scheme="http", authority="h", path_and_query="")) == "http://h/"
    assert Uri.from_parts(authority="h:443").form is UriForm.AUTHORITY
    assert Uri.from_parts(path_and_query="/a?b") == Uri("/a?b")
    assert Uri.from_parts(path_and_query="*").form is UriForm.ASTERISK


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no parts"),
        ({"scheme": "http"}, "needs an authority"),
        ({"scheme": "ht tp", "authority": "h"}, "invalid scheme"),
        ({"scheme": "http", "authority": "h/x"}, "invalid authority"),
        ({"scheme": "http", "authority": "h?"}, "invalid authority"),
        ({"scheme": "http", "authority": ""}, "empty host"),
        ({"scheme": "http", "authority": "h", "path_and_query": "p"}, "must start with '/'"),
        ({"scheme": "http", "authority": "h", "path_and_query": "/p#f"}, "'#'"),
        ({"authority": "h:1", "path_and_query": "/p"}, "needs a scheme"),
        ({"authority": "/p"}, "invalid authority"),
        ({"authority": "*"}, "invalid authority"),
        ({"authority": "h"}, "needs host:port"),
        ({"path_and_query": "h:1"}, "must start with '/'"),
        ({"path_and_query": "/a b"}, "' ' at offset 2"),
    ],
)
def test_from_parts_rejects(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidUri) as info:
        Uri.from_parts(**kwargs)
    assert message in str(info.value)


def test_shared_origin_uris_are_cached_and_equal_to_parsed() -> None:
    first = Uri._from_origin_shared(b"/items?page=2")
    assert Uri._from_origin_shared(b"/items?page=2") is first
    assert first == Uri("/items?page=2")
    assert (first.path, first.query) == ("/items", "page=2")
    # A fresh, unshared instance for callers that complete it.
    assert Uri._from_origin_trusted(b"/items?page=2") is not first
    long_target = b"/" + b"x" * 200
    assert Uri._from_origin_shared(long_target) is not Uri._from_origin_shared(long_target)
    assert Uri._from_origin_shared(long_target).path == long_target.decode()
    other = Uri._from_origin_shared(b"http://h.test/p")
    assert other.form is UriForm.ABSOLUTE
    assert other.host == "h.test"


@pytest.mark.parametrize("target", [b"/a b", b"/%zz", b"/\x7f", b"/caf\xc3\xa9"])
def test_shared_origin_uris_refuse_bad_targets_every_time(target: bytes) -> None:
    for _ in range(2):
        with pytest.raises(InvalidUri):
            Uri._from_origin_shared(target)


def test_shared_origin_cache_is_bounded() -> None:
    from hyper_core.http import _uri

    for i in range(_uri._ORIGIN_CACHE_MAX + 10):
        assert Uri._from_origin_shared(b"/p%d" % i).path == f"/p{i}"
        assert len(_uri._ORIGIN_CACHE) <= _uri._ORIGIN_CACHE_MAX


# -- origin_form ---------------------------------------------------------------------


@given(origins)
@example("/")
@example("/p?")
def test_origin_form_of_absolute_equals_the_parsed_path_and_query(origin: str) -> None:
    converted = Uri(f"http://example.test:8080{origin}").origin_form()
    assert converted == Uri(origin)
    assert converted.form is UriForm.ORIGIN
    assert str(converted) == origin
    assert (converted.scheme, converted.authority, converted.host, converted.port) == (
        None,
        None,
        None,
        None,
    )


def test_origin_form_of_a_bare_authority_is_slash_and_of_origin_form_itself() -> None:
    assert str(Uri("http://h").origin_form()) == "/"
    origin = Uri("/a?b")
    assert origin.origin_form() is origin


@pytest.mark.parametrize(("target", "form"), [("h:443", "authority"), ("*", "asterisk")])
def test_origin_form_refuses_forms_without_a_path(target: str, form: str) -> None:
    with pytest.raises(InvalidUri, match=f"{form}-form has no path"):
        Uri(target).origin_form()
