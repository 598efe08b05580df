"""ext.on_write on HTTP/2 server connections: reports follow the frames on the wire.

python-h2 on a raw socket is the client: it sizes its flow-control windows
itself (0 to hold DATA back) and never opens them on its own, so a test can
show that a DATA report waits for the window and the send, and the sizes
reported are checked against the frames that arrived.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from write_support import H2Client, Recorder, serve

from hyper_core import ext
from hyper_core.body import Frame, Full, Incoming, StreamBody
from hyper_core.error import HyperError
from hyper_core.ext import WriteStage
from hyper_core.http import Headers, Request, Response

pytestmark = pytest.mark.anyio

HEAD, DATA, FINISHED, FAILED = (
    WriteStage.HEAD,
    WriteStage.DATA,
    WriteStage.FINISHED,
    WriteStage.FAILED,
)


def _stream_of(pieces: list[bytes], recorder: Recorder, trailers: bool = False) -> Response[Any]:
    async def frames() -> AsyncIterator[Frame]:
        for piece in pieces:
            yield Frame.data(piece)
        if trailers:
            yield Frame.trailers(Headers({"x-sum": "ok"}))

    response = Response(200, body=StreamBody(frames()))
    ext.on_write(response, recorder)
    return response


async def test_full_body_reports_the_headers_frame_the_data_and_the_end() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, headers=Headers({"x-a": "b"}), body=Full(b"hello"))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h2") as port:
        client = H2Client(port)
        await client.flush()
        sid = await client.request()
        await client.pump_until(lambda: client.ended(sid))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, FINISHED]
    assert recorder.events[0].head_bytes == client.head_frame_bytes(sid) > 9
    assert (recorder.events[1].chunk_bytes, recorder.events[-1].body_bytes) == (5, 5)


async def test_streamed_body_with_trailers_reports_each_chunk_then_the_end() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _stream_of([b"ab", b"cdef"], recorder, trailers=True)

    async with serve(service, "h2") as port:
        client = H2Client(port)
        await client.flush()
        sid = await client.request()
        await client.pump_until(lambda: client.ended(sid))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, DATA, FINISHED]
    assert [e.body_bytes for e in recorder.events] == [0, 2, 6, 6]
    assert client.data_received(sid) == 6


async def test_data_is_reported_only_once_the_window_let_it_out() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _stream_of([b"abcdef", b"ghij"], recorder)

    async with serve(service, "h2") as port:
        client = H2Client(port, window=0)
        await client.flush()
        sid = await client.request()
        await recorder.wait_for(lambda: recorder.stages == [HEAD])
        await recorder.settles()
        assert recorder.stages == [HEAD]  # window 0: no DATA frame, no report
        client.h2.increment_flow_control_window(4, stream_id=sid)
        await client.flush()
        await client.pump_until(lambda: client.data_received(sid) == 4)
        await recorder.wait_for(lambda: recorder.body_bytes == 4)
        await recorder.settles()
        assert recorder.body_bytes == 4
        assert not recorder.ended
        client.h2.increment_flow_control_window(100, stream_id=sid)
        await client.flush()
        await client.pump_until(lambda: client.ended(sid))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages[-1] is FINISHED
    assert [e.chunk_bytes for e in recorder.events if e.stage is DATA] == [4, 2, 4]


async def test_client_that_disconnects_midway_fails_with_what_was_written() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _stream_of([b"abcdef"], recorder)

    async with serve(service, "h2") as port:
        client = H2Client(port, window=0)
        await client.flush()
        sid = await client.request()
        client.h2.increment_flow_control_window(3, stream_id=sid)
        await client.flush()
        await client.pump_until(lambda: client.data_received(sid) == 3)
        await recorder.wait_for(lambda: recorder.body_bytes == 3)
        client.reset()
        await recorder.wait_for(lambda: recorder.ended)
    last = recorder.events[-1]
    assert last.stage is FAILED
    assert isinstance(last.error, HyperError)
    assert (last.body_bytes, last.head_bytes > 0) == (3, True)


async def test_stream_reset_by_the_client_fails_the_report() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _stream_of([b"abcdef"], recorder)

    async with serve(service, "h2") as port:
        client = H2Client(port, window=0)
        await client.flush()
        sid = await client.request()
        await recorder.wait_for(lambda: recorder.stages == [HEAD])
        client.h2.reset_stream(sid, 8)
        await client.flush()
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, FAILED]
    assert recorder.events[-1].body_bytes == 0


async def test_a_response_returned_after_the_stream_was_reset_fails_before_its_head() -> None:
    recorder = Recorder()
    started = anyio.Event()
    proceed = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Full]:
        started.set()
        with anyio.CancelScope(shield=True):
            await proceed.wait()
        response = Response(200, body=Full(b"too late"))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h2") as port:
        client = H2Client(port)
        await client.flush()
        sid = await client.request()
        with anyio.fail_after(5):
            await started.wait()
        client.h2.reset_stream(sid, 8)
        await client.flush()
        await client.pump_until(lambda: True)
        await anyio.sleep(0.05)  # the reset reaches the server before the answer
        proceed.set()
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [FAILED]
    assert (recorder.events[0].head_bytes, recorder.events[0].body_bytes) == (0, 0)


async def test_unobserved_streams_beside_an_observed_one_are_unaffected() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        if request.uri.path == "/":
            return _stream_of([b"x" * 1000], recorder)
        return Response(200, body=Full(b"plain"))

    async with serve(service, "h2") as port:
        client = H2Client(port)
        await client.flush()
        first = await client.request()
        second = client.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", "/b"), (":scheme", "http"), (":authority", "x")]
        client.h2.send_headers(second, headers, end_stream=True)
        await client.flush()
        await client.pump_until(lambda: client.ended(first) and client.ended(second))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, FINISHED]
    assert recorder.body_bytes == 1000
    assert client.data_received(second) == 5


async def test_a_connect_tunnel_response_is_finished_once_its_head_is_written() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, body=Full(b""))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h2") as port:
        client = H2Client(port)
        await client.flush()
        sid = client.h2.get_next_available_stream_id()
        client.h2.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.com:443")])
        await client.flush()
        await recorder.wait_for(lambda: recorder.ended)
        await client.pump_until(lambda: client.head_frame_bytes(sid) > 0)
        client.close()
    assert recorder.stages == [HEAD, FINISHED]
    assert recorder.events[0].head_bytes == client.head_frame_bytes(sid)
