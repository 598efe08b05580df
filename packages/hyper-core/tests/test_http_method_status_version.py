"""Method, StatusCode and Version."""

from __future__ import annotations

import http
import pickle
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyper_core.error import HyperError, InvalidMethod, InvalidStatusCode
from hyper_core.http import Method, StatusCode, Version
from hyper_core.http._status import _REGISTRY

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
STANDARD = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

# -- Method ------------------------------------------------------------------


@pytest.mark.parametrize("name", STANDARD)
def test_standard_methods_are_interned_constants(name: str) -> None:
    constant = getattr(Method, name)
    assert type(constant) is Method
    assert constant == name
    assert Method(name) is constant
    assert Method.from_bytes(name.encode()) is constant
    assert Method(constant) is constant


def test_method_behaves_as_a_plain_string() -> None:
    assert Method.GET == "GET"
    assert hash(Method.GET) == hash("GET")
    assert {"GET": 1}[Method.GET] == 1
    assert str(Method.POST) == "POST"
    assert type(str(Method.POST)) is str
    assert f"{Method.PUT}" == "PUT"
    assert repr(Method.GET) == "Method('GET')"
    assert Method("PURGE") == "PURGE"


def test_methods_are_case_sensitive() -> None:
    lower = Method("get")
    assert lower != Method.GET
    assert lower is not Method.GET
    assert not lower.is_safe


def test_extension_methods_from_bytes() -> None:
    purge = Method.from_bytes(b"PURGE")
    assert purge == "PURGE"
    assert type(purge) is Method


@pytest.mark.parametrize(
    "bad", ["", "GE T", "GET\r\n", "G\x00T", "(GET)", "GÉT", "a/b", "x:y", "é"]
)
def test_invalid_methods_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidMethod, match="invalid HTTP method"):
        Method(bad)
    with pytest.raises(InvalidMethod):
        Method.from_bytes(bad.encode("utf-8"))


def test_invalid_method_is_a_value_error_and_hyper_error() -> None:
    with pytest.raises(ValueError, match="not a token") as info:
        Method("A B")
    assert isinstance(info.value, HyperError)


def test_method_from_non_ascii_bytes() -> None:
    with pytest.raises(InvalidMethod):
        Method.from_bytes(b"G\xffT")


def test_method_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        Method(b"GET")  # type: ignore[arg-type]


@given(st.text(alphabet=TCHAR, min_size=1, max_size=20))
def test_any_token_is_a_method(token: str) -> None:
    assert Method(token) == token
    assert Method.from_bytes(token.encode()) == token


@given(
    st.text(alphabet=TCHAR, max_size=5),
    st.characters(exclude_characters=TCHAR),
    st.text(alphabet=TCHAR, max_size=5),
)
def test_no_non_token_is_a_method(prefix: str, bad: str, suffix: str) -> None:
    with pytest.raises(InvalidMethod):
        Method(prefix + bad + suffix)


def test_safe_and_idempotent() -> None:
    safe = {m for m in STANDARD if Method(m).is_safe}
    idempotent = {m for m in STANDARD if Method(m).is_idempotent}
    assert safe == {"GET", "HEAD", "OPTIONS", "TRACE"}
    assert idempotent == {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
    assert not Method("PURGE").is_safe
    assert not Method("PURGE").is_idempotent


def test_method_pickles_to_an_equal_method() -> None:
    purge = pickle.loads(pickle.dumps(Method("PURGE")))
    assert purge == "PURGE"
    assert type(purge) is Method
    assert pickle.loads(pickle.dumps(Method.GET)) is Method.GET


# -- StatusCode --------------------------------------------------------------


def test_status_codes_are_interned_ints() -> None:
    assert StatusCode(200) is StatusCode.OK
    assert StatusCode(StatusCode.OK) is StatusCode.OK
    assert StatusCode(799) is StatusCode(799)
    assert StatusCode.OK == 200
    assert hash(StatusCode.NOT_FOUND) == hash(404)
    assert {404: "x"}[StatusCode.NOT_FOUND] == "x"


def test_status_code_text_forms() -> None:
    assert str(StatusCode.NOT_FOUND) == "404"
    assert f"{StatusCode.NOT_FOUND}" == "404"
    assert f"{StatusCode.NOT_FOUND:>5}" == "  404"
    assert f"{StatusCode.OK:d}" == "200"
    assert "%s" % StatusCode.OK == "200"  # noqa: UP031 -- the old spelling must work too
    assert repr(StatusCode.OK) == "StatusCode(200)"


@pytest.mark.parametrize("code", [100, 101, 199, 200, 599, 600, 999])
def test_status_code_range_accepts(code: int) -> None:
    assert StatusCode(code) == code


@pytest.mark.parametrize("code", [-1, 0, 1, 99, 1000, 10_000, 2**70])
def test_status_code_range_rejects(code: int) -> None:
    with pytest.raises(InvalidStatusCode, match="100-999"):
        StatusCode(code)
    with pytest.raises(ValueError, match="100-999"):
        StatusCode(code)


@pytest.mark.parametrize("bad", [200.0, "200", b"200", None, True])
def test_status_code_rejects_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        StatusCode(bad)  # type: ignore[arg-type]


def test_status_code_accepts_int_likes() -> None:
    class Index:
        def __index__(self) -> int:
            return 204

    assert StatusCode(Index()) is StatusCode.NO_CONTENT  # type: ignore[arg-type]
    assert StatusCode(http.HTTPStatus.OK) is StatusCode.OK


def test_every_registered_code_is_a_constant_with_its_reason() -> None:
    for code, name, reason in _REGISTRY:
        constant = getattr(StatusCode, name)
        assert constant is StatusCode(code)
        assert constant.reason == reason
    # Every declared constant has a value, and only registered codes have one.
    declared = {
        name for name, kind in StatusCode.__annotations__.items() if "ClassVar" in str(kind)
    }
    assert declared == {name for _, name, _ in _REGISTRY}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (200, "OK"),
        (404, "Not Found"),
        (413, "Content Too Large"),
        (418, ""),
        (422, "Unprocessable Content"),
        (306, ""),
        (599, ""),
        (999, ""),
        (103, "Early Hints"),
        (308, "Permanent Redirect"),
        (421, "Misdirected Request"),
        (511, "Network Authentication Required"),
    ],
)
def test_reason_phrases(code: int, reason: str) -> None:
    assert StatusCode(code).reason == reason


def test_registry_matches_the_stdlib_where_the_stdlib_is_current() -> None:
    # Python 3.11's stdlib keeps the RFC 7231 phrases that RFC 9110 renamed
    # (413, 414, 416, 422) and the unregistered 418; every other code agrees.
    renamed_or_unregistered = {413, 414, 416, 418, 422}
    for status in http.HTTPStatus:
        if status.value in renamed_or_unregistered:
            continue
        assert StatusCode(status.value).reason == status.phrase, status


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        (100, "informational"),
        (199, "informational"),
        (200, "success"),
        (299, "success"),
        (300, "redirection"),
        (399, "redirection"),
        (400, "client_error"),
        (499, "client_error"),
        (500, "server_error"),
        (599, "server_error"),
        (600, None),
        (999, None),
    ],
)
def test_status_classes(code: int, klass: str | None) -> None:
    status = StatusCode(code)
    results = {
        "informational": status.is_informational(),
        "success": status.is_success(),
        "redirection": status.is_redirection(),
        "client_error": status.is_client_error(),
        "server_error": status.is_server_error(),
    }
    assert {name for name, value in results.items() if value} == ({klass} if klass else set())


def test_status_code_pickles_to_the_interned_instance() -> None:
    assert pickle.loads(pickle.dumps(StatusCode.OK)) is StatusCode.OK


# -- Version -----------------------------------------------------------------


def test_version_strings() -> None:
    assert [str(v) for v in Version] == ["HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"]
    assert f"{Version.HTTP_11}" == "HTTP/1.1"


def test_versions_are_ordered_by_age() -> None:
    assert Version.HTTP_09 < Version.HTTP_10 < Version.HTTP_11 < Version.HTTP_2 < Version.HTTP_3
    assert Version.HTTP_11 >= Version.HTTP_11
    assert Version.HTTP_11 <= Version.HTTP_11
    assert Version.HTTP_3 > Version.HTTP_10
    assert sorted([Version.HTTP_3, Version.HTTP_10, Version.HTTP_2]) == [
        Version.HTTP_10,
        Version.HTTP_2,
        Version.HTTP_3,
    ]


def test_versions_do_not_order_against_other_types() -> None:
    with pytest.raises(TypeError):
        _ = Version.HTTP_11 < "HTTP/2"
    with pytest.raises(TypeError):
        _ = Version.HTTP_11 >= 1
