"""A service's handle on its HTTP/3 exchange: 1xx responses and the client leaving.

What belongs here: ``ext.send_informational`` on our HTTP/3 server (103
Early Hints before the final response, on the wire as a HEADERS frame with
a 1xx ``:status``), ``ext.on_informational`` on our HTTP/3 client, and
``ext.on_client_gone`` when the client abandons a request (STOP_SENDING /
RESET_STREAM, or the connection closing): the callback runs and the
service is cancelled, as on HTTP/2. Over the in-memory QUIC pair, and the
1xx also over real UDP with aioquic's own H3 client reading the frames.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - aioquic's own client is asyncio-only; it runs in a thread
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from h3_support import PEER_TIMEOUT, h3, make_certs, serve_h3

from hyper_core import ext
from hyper_core.body import Body, Empty, Full, Incoming, collect
from hyper_core.error import HyperError, UserError
from hyper_core.http import Request, Response, Version

pytestmark = pytest.mark.anyio


async def early_hints(request: Request[Incoming]) -> Response[Body]:
    await ext.send_informational(request, 103, {"link": "</style.css>; rel=preload"})
    await ext.send_informational(request, 103, {"link": "</app.js>; rel=preload"})
    return Response(200, body=Full(b"final"))


async def test_early_hints_reach_the_client_before_the_final_response() -> None:
    seen: list[ext.InformationalResponse] = []
    async with h3(early_hints) as (sender, served):
        request = Request("GET", "https://h/")
        ext.on_informational(request, seen.append)
        response = await sender.send_request(request)
        assert response.status == 200
        assert (await collect(response.body)).to_bytes() == b"final"
    assert [(i.status, i.version, i.headers["link"]) for i in seen] == [
        (103, Version.HTTP_3, "</style.css>; rel=preload"),
        (103, Version.HTTP_3, "</app.js>; rel=preload"),
    ]
    assert served.error is None


async def test_informational_responses_are_skipped_without_a_callback() -> None:
    async with h3(early_hints) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        assert response.status == 200
        assert (await collect(response.body)).to_bytes() == b"final"


async def test_a_failing_informational_callback_fails_only_its_request() -> None:
    def boom(_: ext.InformationalResponse) -> None:
        raise RuntimeError("callback bug")

    async with h3(early_hints) as (sender, _):
        request = Request("GET", "https://h/")
        ext.on_informational(request, boom)
        with pytest.raises(UserError, match="on_informational"):
            await sender.send_request(request)
        again = await sender.send_request(Request("GET", "https://h/"))
        assert (await collect(again.body)).to_bytes() == b"final"


async def test_informational_after_the_final_head_is_refused() -> None:
    outcome: list[BaseException] = []
    done = anyio.Event()

    async def late(request: Request[Incoming]) -> Response[Body]:
        async def after() -> None:
            await anyio.sleep(0.05)  # the head is written by then
            try:
                await ext.send_informational(request, 103)
            except UserError as exc:
                outcome.append(exc)
            done.set()

        tg.start_soon(after)
        return Response(200, body=Full(b"x"))

    async with anyio.create_task_group() as tg, h3(late) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        await collect(response.body)
        with anyio.fail_after(5):
            await done.wait()
    assert len(outcome) == 1
    assert isinstance(outcome[0], UserError)


async def test_invalid_informational_status_is_refused() -> None:
    async def wrong(request: Request[Incoming]) -> Response[Body]:
        with pytest.raises(UserError):
            await ext.send_informational(request, 101)
        with pytest.raises(UserError):
            await ext.send_informational(request, 200)
        return Response(204, body=Empty())

    async with h3(wrong) as (sender, _):
        response = await sender.send_request(Request("GET", "https://h/"))
        assert response.status == 204


async def test_client_cancelling_tells_the_service_and_cancels_it() -> None:
    gone = anyio.Event()
    cancelled = anyio.Event()
    running = anyio.Event()

    async def waits(request: Request[Incoming]) -> Response[Body]:
        if request.uri.path == "/ok":
            return Response(200, body=Full(b"ok"))
        ext.on_client_gone(request, gone.set)
        running.set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return Response(200, body=Empty())

    async with h3(waits) as (sender, served):
        with anyio.move_on_after(5):
            async with anyio.create_task_group() as tg:

                async def request() -> None:
                    await sender.send_request(Request("GET", "https://h/"))

                tg.start_soon(request)
                await running.wait()
                tg.cancel_scope.cancel()  # the client gives up: STOP_SENDING + RESET_STREAM
        with anyio.fail_after(5):
            await gone.wait()
            await cancelled.wait()
        # The connection goes on.
        # The connection goes on.
        again = await sender.send_request(Request("GET", "https://h/ok"))
        assert (await collect(again.body)).to_bytes() == b"ok"
    assert served.error is None


async def test_client_gone_is_not_called_after_a_complete_response() -> None:
    calls: list[str] = []

    async def quick(request: Request[Incoming]) -> Response[Body]:
        ext.on_client_gone(request, lambda: calls.append("gone"))
        return Response(200, body=Full(b"done"))

    async with h3(quick) as (sender, _):
        for _ in range(3):
            response = await sender.send_request(Request("GET", "https://h/"))
            assert (await collect(response.body)).to_bytes() == b"done"
        await anyio.sleep(0.05)
    assert calls == []


async def test_connection_closing_counts_as_the_client_leaving() -> None:
    gone = anyio.Event()
    running = anyio.Event()

    async def waits(request: Request[Incoming]) -> Response[Body]:
        ext.on_client_gone(request, gone.set)
        running.set()
        await anyio.sleep(30)
        return Response(200, body=Empty())

    async with h3(waits) as (sender, _):

        async def request() -> None:
            with pytest.raises(HyperError):
                await sender.send_request(Request("GET", "https://h/"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(request)
            await running.wait()
            sender._conn._quic.close(0x100, "bye")
        with anyio.fail_after(5):
            await gone.wait()


def aioquic_heads(port: int, ca_file: str) -> list[list[tuple[bytes, bytes]]]:
    """GET / with aioquic's own H3 client (asyncio, in a thread); every header section seen."""
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import QuicEvent

    heads: list[list[tuple[bytes, bytes]]] = []

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.finished = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event: QuicEvent) -> None:
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    heads.append(list(h3_event.headers))
                if isinstance(h3_event, DataReceived | HeadersReceived) and h3_event.stream_ended:
                    self.finished.set_result(None)

    async def main() -> None:
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
        config.load_verify_locations(ca_file)
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as c:
            client: Any = c
            sid = client._quic.get_next_available_stream_id()
            client.h3.send_headers(
                sid,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":authority", b"localhost"),
                    (b":path", b"/"),
                ],
                end_stream=True,
            )
            client.transmit()
            await asyncio.wait_for(client.finished, 10)

    asyncio.run(asyncio.wait_for(main(), PEER_TIMEOUT))
    return heads


async def test_early_hints_on_the_wire_for_aioquics_h3_client(tmp_path: Path) -> None:
    """aioquic's H3Connection (a client no one here wrote) reads the 103 sections first."""
    certs = make_certs(tmp_path)
    async with serve_h3(early_hints, certs) as server:
        heads = await anyio.to_thread.run_sync(aioquic_heads, server.port, certs.ca_file)
    statuses = [dict(head)[b":status"] for head in heads]
    assert statuses == [b"103", b"103", b"200"]
    assert dict(heads[0])[b"link"] == b"</style.css>; rel=preload"
