"""hyper_core.service: any async function from request to response is a service."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

import hyper_core.service
from hyper_core.body import Body, ChannelBody, Full, Incoming, channel, collect
from hyper_core.http import Request, Response
from hyper_core.service import Service

pytestmark = pytest.mark.anyio

SRC = Path(__file__).resolve().parents[1] / "src"
B = TypeVar("B", bound=Body)


def test_all_is_exactly_the_public_names() -> None:
    assert hyper_core.service.__all__ == ["Service"]


async def echo(req: Request[Incoming]) -> Response[Full]:
    data = (await collect(req.body)).data
    return Response(200, headers={"x-method": str(req.method)}, body=Full(data))


class Counter:
    """A stateful service: a class with an async ``__call__``."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: Request[Incoming]) -> Response[Full]:
        self.calls += 1
        return Response(200, body=Full(b"%d" % self.calls))


async def streaming(request: Request[Incoming]) -> Response[ChannelBody]:
    sender, body = channel()

    async def produce() -> None:
        async with sender:
            await sender.send_data(b"streamed")

    # A real service would spawn through an Executor; sending before
    # returning is enough here as the buffer holds the frame.
    await produce()
    return Response(200, body=body)


async def drive(service: Service[B], request: Request[Incoming]) -> bytes:
    """What a connection does: call the service, then read the response body."""
    response = await service(request)
    try:
        return (await collect(response.body)).data
    finally:
        await response.body.aclose()


def make_request(data: bytes) -> Request[Incoming]:
    sender, body = Incoming.from_channel()
    sender.send_data_nowait(data)
    sender.finish()
    return Request("POST", "/echo", body=body)


async def test_a_plain_async_function_is_a_service() -> None:
    service: Service[Full] = echo  # no wrapper: the function is the service
    response = await service(make_request(b"ping"))
    assert response.status == 200
    assert response.headers.get("x-method") == "POST"
    assert await drive(echo, make_request(b"pong")) == b"pong"


async def test_an_object_with_async_call_is_a_service() -> None:
    counter = Counter()
    service: Service[Full] = counter
    assert await drive(service, make_request(b"")) == b"1"
    assert await drive(counter, make_request(b"")) == b"2"


async def test_a_lambda_returning_a_coroutine_is_a_service() -> None:
    service: Service[Full] = lambda request: echo(request)  # noqa: E731
    assert await drive(service, make_request(b"via lambda")) == b"via lambda"


async def test_a_service_may_stream_its_response() -> None:
    service: Service[ChannelBody] = streaming
    with anyio.fail_after(5):
        assert await drive(service, make_request(b"")) == b"streamed"


def test_mypy_rejects_what_is_not_a_service(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    source = textwrap.dedent(
        """
        from __future__ import annotations

        from hyper_core.body import Full, Incoming
        from hyper_core.http import Request, Response
        from hyper_core.service import Service


        async def good(any_name: Request[Incoming]) -> Response[Full]:
            return Response(200, body=Full(b""))


        def not_async(request: Request[Incoming]) -> Response[Full]:
            return Response(200, body=Full(b""))


        async def wrong_request(request: int) -> Response[Full]:
            return Response(200, body=Full(b""))


        ok: Service[Full] = good
        bad_sync: Service[Full] = not_async
        bad_param: Service[Full] = wrong_request
        bad_body: Service[str]
        """
    )
    snippet.write_text(source)
    lines = source.splitlines()
    expected = {
        lines.index("bad_sync: Service[Full] = not_async") + 1,
        lines.index("bad_param: Service[Full] = wrong_request") + 1,
        lines.index("bad_body: Service[str]") + 1,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ],
        env={"MYPYPATH": str(SRC), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    error_lines = {
        int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line
    }
    assert error_lines == expected, result.stdout + result.stderr
