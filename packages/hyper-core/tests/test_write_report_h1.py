"""ext.on_write on HTTP/1.1 server connections: what was written, byte for byte.

A raw socket is the client, so the head and body sizes the hook reports are
checked against the bytes that arrived, and a client that stops reading (small
socket buffers on both ends) shows that a report never runs ahead of the
transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from write_support import RawClient, Recorder, serve

from hyper_core import ext
from hyper_core.body import Frame, Full, Incoming, StreamBody
from hyper_core.error import BodyError, HyperError
from hyper_core.ext import WriteStage
from hyper_core.http import Headers, Request, Response

pytestmark = pytest.mark.anyio

HEAD, DATA, FINISHED, FAILED = (
    WriteStage.HEAD,
    WriteStage.DATA,
    WriteStage.FINISHED,
    WriteStage.FAILED,
)
GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def _head_size(received: bytes) -> int:
    end = received.find(b"\r\n\r\n")
    return len(received) + 1 if end < 0 else end + 4


async def test_full_body_reports_head_data_and_end_with_exact_counts() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, headers=Headers({"x-a": "b"}), body=Full(b"hello"))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await client.read_until(lambda got: got.endswith(b"hello"))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, FINISHED]
    head, data, end = recorder.events
    assert head.head_bytes == _head_size(bytes(client.received))
    assert (data.chunk_bytes, data.body_bytes) == (5, 5)
    assert (end.head_bytes, end.body_bytes, end.error) == (head.head_bytes, 5, None)


async def test_chunked_stream_reports_each_chunk_payload_and_the_end() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        async def frames() -> AsyncIterator[Frame]:
            for piece in (b"ab", b"cdef", b"g"):
                yield Frame.data(piece)

        response = Response(200, body=StreamBody(frames()))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await client.read_until(lambda got: got.endswith(b"0\r\n\r\n"))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert b"transfer-encoding: chunked" in client.received.lower()
    assert recorder.stages == [HEAD, DATA, DATA, DATA, FINISHED]
    assert recorder.events[0].head_bytes == _head_size(bytes(client.received))
    assert [e.chunk_bytes for e in recorder.events[1:4]] == [2, 4, 1]
    assert [e.body_bytes for e in recorder.events[1:]] == [2, 6, 7, 7]


async def test_head_request_reports_no_body_bytes() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, body=Full(b"not sent"))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        await client.read_until(lambda got: got.endswith(b"\r\n\r\n"))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, FINISHED]
    assert recorder.events[-1].head_bytes == len(client.received)
    assert recorder.events[-1].body_bytes == 0


CHUNK = 16384
CHUNKS = 256  # 4 MiB: far more than the small socket buffers and the transport's


def _big_stream(recorder: Recorder) -> Response[Any]:
    async def frames() -> AsyncIterator[Frame]:
        for _ in range(CHUNKS):
            yield Frame.data(b"x" * CHUNK)

    length = Headers({"content-length": str(CHUNK * CHUNKS)})
    response = Response(200, headers=length, body=StreamBody(frames()))
    ext.on_write(response, recorder)
    return response


async def test_reports_stop_while_the_client_does_not_read_and_resume_when_it_does() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _big_stream(recorder)

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        stalled_at = await recorder.settles()
        # Not read: at most the buffers' worth was handed over, far from all.
        assert stalled_at < CHUNK * CHUNKS // 2
        assert not recorder.ended
        total = CHUNK * CHUNKS
        await client.read_until(lambda got: len(got) - _head_size(got) >= total, timeout=10)
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages[-1] is FINISHED
    assert recorder.body_bytes == CHUNK * CHUNKS
    # Each report counts only bytes that had been handed over: the counts
    # never jump past what the client has received by more than the buffers.
    assert all(e.chunk_bytes == CHUNK for e in recorder.events if e.stage is DATA)


async def test_client_that_disconnects_midway_fails_the_report_with_counts() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        return _big_stream(recorder)

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await client.read_until(lambda got: len(got) > CHUNK)
        stalled_at = await recorder.settles()
        client.reset()
        await recorder.wait_for(lambda: recorder.ended)
    last = recorder.events[-1]
    assert last.stage is FAILED
    assert isinstance(last.error, HyperError)
    assert last.body_bytes == stalled_at < CHUNK * CHUNKS
    assert last.head_bytes > 0


async def test_a_failing_body_fails_the_report_after_what_was_written() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Any]:
        async def frames() -> AsyncIterator[Frame]:
            yield Frame.data(b"abc")
            raise RuntimeError("the producer broke")

        response = Response(200, body=StreamBody(frames()))
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, FAILED]
    assert isinstance(recorder.events[-1].error, BodyError)
    assert recorder.events[-1].body_bytes == 3


async def test_an_invalid_response_fails_before_its_head() -> None:
    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(103, body=Full(b""))  # 1xx is never a final response
        ext.on_write(response, recorder)
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await client.read_until(lambda got: b"500" in got)
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [FAILED]
    assert (recorder.events[0].head_bytes, recorder.events[0].body_bytes) == (0, 0)


async def test_an_observer_that_raises_does_not_break_the_response() -> None:
    def bad(event: ext.WriteEvent) -> None:
        raise ValueError("observer bug")

    recorder = Recorder()

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, body=Full(b"ok"))
        ext.on_write(response, bad)
        ext.on_write(response, recorder)  # a second callback: both run
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await client.read_until(lambda got: got.endswith(b"ok"))
        await recorder.wait_for(lambda: recorder.ended)
        client.close()
    assert recorder.stages == [HEAD, DATA, FINISHED]


async def test_keep_alive_responses_each_report_their_own_bytes() -> None:
    recorders = [Recorder(), Recorder()]
    served = iter(recorders)

    async def service(request: Request[Incoming]) -> Response[Full]:
        response = Response(200, body=Full(b"x" * (len(recorders[0].events) + 1)))
        ext.on_write(response, next(served))
        return response

    async with serve(service, "h1") as port:
        client = RawClient(port)
        await client.send(GET)
        await recorders[0].wait_for(lambda: recorders[0].ended)
        await client.send(GET)
        await recorders[1].wait_for(lambda: recorders[1].ended)
        client.close()
    assert [r.events[-1].body_bytes for r in recorders] == [1, 4]
