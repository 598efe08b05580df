"""``ProxyHeadersMiddleware``: hand-written scopes in, the scope the app sees out.

What belongs here: the middleware's rules, one behaviour per test, on
asyncio, trio and uvloop: which peers are believed (addresses, networks,
``*``, ``unix:``, literals, ``$FORWARDED_ALLOW_IPS``), which hop of
``X-Forwarded-For`` or ``Forwarded`` is the client, scheme and host from
the same hop, ``ws``/``wss`` mapping, and what is ignored. The same
middleware in front of a real server is test_asgi_proxy_headers_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from hyper_util.asgi._proxy_headers import (
    ProxyHeadersMiddleware,
    TrustedHosts,
)

pytestmark = pytest.mark.anyio


def scope_for(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    kind: str = "http",
) -> dict[str, Any]:
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "ws" if kind == "websocket" else "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"backend:8000"), *headers],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }


async def seen(
    scope: dict[str, Any], trusted: Any = "127.0.0.1", mode: Any = "x-forwarded"
) -> dict[str, Any]:
    """The scope the wrapped app receives (and the same receive/send callables)."""
    received: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    await ProxyHeadersMiddleware(app, trusted, mode=mode)(scope, receive, send)
    [(inner, inner_receive, inner_send)] = received
    assert inner_receive is receive
    assert inner_send is send
    return inner  # type: ignore[no-any-return]


def host_header(scope: dict[str, Any]) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == b"host"]


# --- who is trusted -----------------------------------------------------------


async def test_an_untrusted_peer_passes_through_untouched() -> None:
    scope = scope_for(
        [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https")],
        client=("192.0.2.1", 1234),
    )
    assert await seen(scope) is scope
    assert scope["client"] == ("192.0.2.1", 1234)


async def test_a_trusted_peer_without_the_headers_passes_through_untouched() -> None:
    scope = scope_for([(b"accept", b"*/*")])
    assert await seen(scope) is scope


async def test_lifespan_passes_through() -> None:
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    assert await seen(scope, "*") is scope


async def test_the_original_scope_is_not_modified() -> None:
    scope = scope_for([(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-host", b"example.com")])
    before = {**scope, "headers": list(scope["headers"])}
    inner = await seen(scope)
    assert inner["client"] == ("1.2.3.4", 0)
    assert scope == before


async def test_networks_and_ipv6() -> None:
    trusted = "10.0.0.0/8, fd00::/8"
    inner = await seen(scope_for([(b"x-forwarded-for", b"1.2.3.4")], ("10.1.2.3", 1)), trusted)
    assert inner["client"] == ("1.2.3.4", 0)
    inner = await seen(scope_for([(b"x-forwarded-for", b"1.2.3.4")], ("fd00::7", 1)), trusted)
    assert inner["client"] == ("1.2.3.4", 0)
    outside = scope_for([(b"x-forwarded-for", b"1.2.3.4")], ("11.0.0.1", 1))
    assert await seen(outside, trusted) is outside


async def test_an_ipv4_mapped_peer_matches_its_ipv4_address() -> None:
    inner = await seen(scope_for([(b"x-forwarded-for", b"1.2.3.4")], ("::ffff:127.0.0.1", 1)))
    assert inner["client"] == ("1.2.3.4", 0)


async def test_star_trusts_everyone_and_picks_the_first_address() -> None:
    scope = scope_for([(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2")], ("203.0.113.9", 1))
    assert (await seen(scope, "*"))["client"] == ("1.1.1.1", 0)


async def test_unix_socket_peers_only_with_unix_or_star() -> None:
    headers = [(b"x-forwarded-for", b"1.2.3.4")]
    unix = scope_for(headers, client=None)
    assert await seen(unix) is unix  # default 127.0.0.1: a Unix peer is not trusted
    assert (await seen(scope_for(headers, client=None), "unix:"))["client"] == ("1.2.3.4", 0)
    assert (await seen(scope_for(headers, client=None), "*"))["client"] == ("1.2.3.4", 0)
    tcp = scope_for(headers)
    assert await seen(tcp, "unix:") is tcp  # unix: does not trust TCP peers


async def test_literals_match_a_non_ip_client_host() -> None:
    scope = scope_for([(b"x-forwarded-for", b"1.2.3.4")], client=("proxy.internal", 0))
    assert (await seen(scope, ["proxy.internal"]))["client"] == ("1.2.3.4", 0)
    other = scope_for([(b"x-forwarded-for", b"1.2.3.4")], client=("other.internal", 0))
    assert await seen(other, ["proxy.internal"]) is other


async def test_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.0/24")
    inner = await seen(scope_for([(b"x-forwarded-for", b"1.2.3.4")], ("192.0.2.5", 1)), None)
    assert inner["client"] == ("1.2.3.4", 0)
    local = scope_for([(b"x-forwarded-for", b"1.2.3.4")])
    assert await seen(local, None) is local
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    inner = await seen(scope_for([(b"x-forwarded-for", b"1.2.3.4")]), None)
    assert inner["client"] == ("1.2.3.4", 0)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        TrustedHosts("10.0.0.0/33")
    with pytest.raises(ValueError, match="mode"):
        ProxyHeadersMiddleware(seen, "*", mode="both")  # type: ignore[arg-type]


def test_trusted_hosts_parsing() -> None:
    hosts = TrustedHosts(" 127.0.0.1 ,, ::1, 10.0.0.0/8, unix:, name ")
    assert hosts.trusts("127.0.0.1")
    assert hosts.trusts("0:0:0:0:0:0:0:1")  # the same address, spelled out
    assert hosts.trusts("10.200.0.1")
    assert hosts.trusts("name")
    assert not hosts.trusts("127.0.0.2")
    assert not hosts.trusts("x" * 300)
    assert hosts.trusts_peer(None)
    assert not hosts.always
    assert TrustedHosts(["*"]).trusts("anything")


# --- X-Forwarded-For: the right hop -------------------------------------------


async def test_client_with_port_and_ipv6_forms() -> None:
    cases = {
        b"1.2.3.4:5678": ("1.2.3.4", 5678),
        b"[2001:db8::1]:8080": ("2001:db8::1", 8080),
        b"[2001:db8::1]": ("2001:db8::1", 0),
        b"2001:db8::1": ("2001:db8::1", 0),
    }
    for value, client in cases.items():
        inner = await seen(scope_for([(b"x-forwarded-for", value)]))
        assert inner["client"] == client, value


async def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    # The client prepended a forged address; the trusted proxy 10.0.0.1 and
    # the peer (127.0.0.1) appended theirs.
    headers = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7, 10.0.0.1")]
    inner = await seen(scope_for(headers), "127.0.0.1, 10.0.0.1")
    assert inner["client"] == ("203.0.113.7", 0)
    # Only the peer trusted: the proxy before it is the client.
    inner = await seen(scope_for(headers))
    assert inner["client"] == ("10.0.0.1", 0)


async def test_when_every_hop_is_trusted_the_first_is_the_client() -> None:
    headers = [(b"x-forwarded-for", b"10.0.0.3, 10.0.0.2")]
    assert (await seen(scope_for(headers), "127.0.0.1, 10.0.0.0/8"))["client"] == ("10.0.0.3", 0)


async def test_several_field_lines_are_one_list() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.7, 10.0.0.1")]
    inner = await seen(scope_for(headers), "127.0.0.1, 10.0.0.1")
    assert inner["client"] == ("203.0.113.7", 0)


async def test_unknown_and_empty_entries() -> None:
    assert (await seen(scope_for([(b"x-forwarded-for", b"unknown")])))["client"] is None
    empty = scope_for([(b"x-forwarded-for", b"")])
    assert (await seen(empty))["client"] == ("127.0.0.1", 50000)


# --- X-Forwarded-Proto and -Host ---------------------------------------------


async def test_proto_sets_the_scheme() -> None:
    expected = {
        ("http", b"https"): "https",
        ("http", b"HTTPS"): "https",
        ("http", b"wss"): "https",
        ("http", b"http"): "http",
        ("websocket", b"https"): "wss",
        ("websocket", b"wss"): "wss",
        ("websocket", b"http"): "ws",
    }
    for (kind, proto), scheme in expected.items():
        inner = await seen(scope_for([(b"x-forwarded-proto", proto)], kind=kind))
        assert inner["scheme"] == scheme, (kind, proto)


async def test_an_unknown_proto_is_ignored() -> None:
    scope = scope_for([(b"x-forwarded-proto", b"gopher")])
    assert (await seen(scope))["scheme"] == "http"


async def test_proto_and_host_of_the_chosen_hop() -> None:
    # Two proxies each appended: the client reached the outer one over https.
    headers = [
        (b"x-forwarded-for", b"203.0.113.7, 10.0.0.1"),
        (b"x-forwarded-proto", b"https, http"),
        (b"x-forwarded-host", b"example.com, inner.local"),
    ]
    inner = await seen(scope_for(headers), "127.0.0.1, 10.0.0.1")
    assert inner["client"] == ("203.0.113.7", 0)
    assert inner["scheme"] == "https"
    assert host_header(inner) == [b"example.com"]


async def test_proto_and_host_lists_that_do_not_line_up_use_the_last_entry() -> None:
    headers = [
        (b"x-forwarded-for", b"203.0.113.7, 10.0.0.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"example.com"),
    ]
    inner = await seen(scope_for(headers), "127.0.0.1, 10.0.0.1")
    assert inner["scheme"] == "https"
    assert host_header(inner) == [b"example.com"]


async def test_host_replaces_the_host_field_in_place() -> None:
    scope = scope_for([(b"accept", b"*/*"), (b"x-forwarded-host", b"example.com:8443")])
    scope["headers"].insert(1, (b"host", b"duplicate"))
    inner = await seen(scope)
    assert inner["headers"][0] == (b"host", b"example.com:8443")
    assert host_header(inner) == [b"example.com:8443"]
    assert inner["headers"][1] == (b"accept", b"*/*")


async def test_host_is_added_when_missing_and_bad_hosts_are_ignored() -> None:
    scope = scope_for([(b"x-forwarded-host", b"[2001:db8::1]:443")])
    scope["headers"] = scope["headers"][1:]
    assert host_header(await seen(scope)) == [b"[2001:db8::1]:443"]
    for bad in (b"evil.com/path", b"a b", b"user@host", b"\xff"):
        untouched = scope_for([(b"x-forwarded-host", bad)])
        assert host_header(await seen(untouched)) == [b"backend:8000"], bad


# --- RFC 7239 Forwarded ------------------------------------------------------


async def test_forwarded_client_proto_and_host() -> None:
    headers = [(b"forwarded", b'for=192.0.2.60;proto=https;host="example.com";by=10.0.0.1')]
    inner = await seen(scope_for(headers), mode="forwarded")
    assert inner["client"] == ("192.0.2.60", 0)
    assert inner["scheme"] == "https"
    assert host_header(inner) == [b"example.com"]


async def test_forwarded_picks_the_element_of_the_first_untrusted_hop() -> None:
    headers = [
        (b"forwarded", b"for=6.6.6.6;proto=http;host=forged.example"),
        (b"forwarded", b"For=203.0.113.7;Proto=https;Host=example.com, for=10.0.0.1;proto=http"),
    ]
    inner = await seen(scope_for(headers), "127.0.0.1, 10.0.0.1", mode="forwarded")
    assert inner["client"] == ("203.0.113.7", 0)
    assert inner["scheme"] == "https"
    assert host_header(inner) == [b"example.com"]


async def test_forwarded_value_forms() -> None:
    cases: dict[bytes, Any] = {
        b'for="[2001:db8:cafe::17]:4711"': ("2001:db8:cafe::17", 4711),
        b'for="192.0.2.43:47011"': ("192.0.2.43", 47011),
        b"for=unknown": None,
        b"for=_hidden": ("_hidden", 0),
        b'for="_a\\"b"': ('_a"b', 0),
    }
    for value, client in cases.items():
        inner = await seen(scope_for([(b"forwarded", value)]), mode="forwarded")
        assert inner["client"] == client, value


async def test_forwarded_without_for_keeps_the_peer() -> None:
    inner = await seen(scope_for([(b"forwarded", b"proto=https")]), mode="forwarded")
    assert inner["client"] == ("127.0.0.1", 50000)
    assert inner["scheme"] == "https"


async def test_forwarded_websocket_scheme() -> None:
    scope = scope_for([(b"forwarded", b"for=1.2.3.4;proto=https")], kind="websocket")
    assert (await seen(scope, mode="forwarded"))["scheme"] == "wss"


async def test_each_mode_ignores_the_other_family() -> None:
    # A proxy writing one family passes the other through from the client.
    forged_forwarded = scope_for(
        [(b"forwarded", b"for=6.6.6.6;proto=https"), (b"x-forwarded-for", b"203.0.113.7")]
    )
    inner = await seen(forged_forwarded)
    assert inner["client"] == ("203.0.113.7", 0)
    assert inner["scheme"] == "http"
    forged_x = scope_for([(b"x-forwarded-for", b"6.6.6.6"), (b"forwarded", b"for=203.0.113.7")])
    assert (await seen(forged_x, mode="forwarded"))["client"] == ("203.0.113.7", 0)
    only_x = scope_for([(b"x-forwarded-for", b"6.6.6.6")])
    assert await seen(only_x, mode="forwarded") is only_x


async def test_forwarded_malformed_values_never_raise() -> None:
    cases: dict[bytes, Any] = {
        # A comma inside a quoted value does not end the element.
        b'for="203.0.113.7";host="a,b"': ("203.0.113.7", 0),
        b'for="unterminated': ("127.0.0.1", 50000),
        b";;;,,, = ; for": ("127.0.0.1", 50000),
        b"for=203.0.113.9 junk ; proto=https": ("203.0.113.9", 0),
    }
    for value, client in cases.items():
        inner = await seen(scope_for([(b"forwarded", value)]), mode="forwarded")
        assert inner["client"] == client, value
        assert host_header(inner) == [b"backend:8000"], value  # "a,b" is no valid host
