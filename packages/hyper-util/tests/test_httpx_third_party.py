"""Third-party libraries built on httpx, run unchanged on the hyper transports.

* The ``openai`` SDK (it takes ``http_client=``), against a fake of the API
  served by hypercorn: JSON requests and responses, server-sent events
  (``stream=True``), bearer auth, and the SDK's own retry after a 503 with
  ``retry-after-ms``. The SDK validates every response with pydantic, so a
  header or body mangled by the transport fails here.
* ``httpx-ws`` (WebSockets over httpx), against hypercorn's WebSocket
  support: it upgrades with ``client.stream()`` and then speaks WebSocket
  over ``response.extensions["network_stream"]``, the httpcore stream
  interface the transports offer after a 101.

Both async (asyncio, uvloop, trio) and sync.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketSession, aconnect_ws, connect_ws
from interop_peers import run_hypercorn

from hyper_util.client.httpx import AsyncHyperTransport, HyperTransport

pytestmark = pytest.mark.anyio

FAKE_API = """
import json


def completion(text):
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chunk(text):
    return {
        "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0, "model": "fake",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


async def read_body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def respond(send, status, body, content_type="application/json", extra=()):
    headers = [(b"content-type", content_type.encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def websocket(scope, receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        await send({"type": "websocket.send", "text": "echo: " + (text or "")})


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    body = await read_body(receive)
    if headers.get(b"authorization") != b"Bearer test-key":
        return await respond(send, 401, b'{"error": {"message": "bad key"}}')
    request = json.loads(body)
    if request["model"] == "flaky" and headers.get(b"x-stainless-retry-count") == b"0":
        return await respond(
            send, 503, b'{"error": {"message": "busy"}}', extra=[(b"retry-after-ms", b"10")]
        )
    text = " ".join(m["content"] for m in request["messages"])
    if not request.get("stream"):
        return await respond(send, 200, json.dumps(completion("echo: " + text)).encode())
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"text/event-stream")]}
    await send(start)
    for word in ("echo:", *text.split()):
        event = "data: " + json.dumps(chunk(word + " ")) + "\\n\\n"
        await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\\n\\n"})
"""


@pytest.fixture(scope="module")
def fake_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_hypercorn(tmp_path_factory.mktemp("fake_api"), FAKE_API, "fake_api") as port:
        yield f"http://127.0.0.1:{port}"


MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "hello there"}
]


# The SDK stops reading its SSE stream at "[DONE]", leaving its own and
# httpx's async generators unfinished, which trio reports when it collects
# them (the same happens with httpx's default transport).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_openai_async_sdk(fake_api: str) -> None:
    http_client = httpx.AsyncClient(transport=AsyncHyperTransport())
    # openai 3 is typed for httpx2, its fork of httpx, and accepts httpx's
    # own clients too ("legacy httpx"): that is the path taken here.
    async with openai.AsyncOpenAI(
        api_key="test-key",
        base_url=f"{fake_api}/v1",
        http_client=http_client,  # type: ignore[arg-type]
    ) as sdk:
        completion = await sdk.chat.completions.create(model="fake", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo: hello there"
        stream = await sdk.chat.completions.create(model="fake", messages=MESSAGES, stream=True)
        words = [chunk.choices[0].delta.content async for chunk in stream]
        assert "".join(w or "" for w in words) == "echo: hello there "
        retried = await sdk.chat.completions.with_raw_response.create(
            model="flaky", messages=MESSAGES
        )
        assert retried.retries_taken == 1
        assert retried.parse().choices[0].message.content == "echo: hello there"
        with pytest.raises(openai.AuthenticationError):
            await sdk.with_options(api_key="wrong").chat.completions.create(
                model="fake", messages=MESSAGES
            )


def test_openai_sync_sdk(fake_api: str) -> None:
    http_client = httpx.Client(transport=HyperTransport())
    with openai.OpenAI(
        api_key="test-key",
        base_url=f"{fake_api}/v1",
        http_client=http_client,  # type: ignore[arg-type]
    ) as sdk:
        completion = sdk.chat.completions.create(model="fake", messages=MESSAGES)
        assert completion.choices[0].message.content == "echo: hello there"
        stream = sdk.chat.completions.create(model="fake", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "echo: hello there "
        retried = sdk.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)
        assert retried.retries_taken == 1


async def test_httpx_ws_async(fake_api: str) -> None:
    ws: AsyncWebSocketSession
    async with (
        httpx.AsyncClient(transport=AsyncHyperTransport()) as client,
        aconnect_ws(f"{fake_api}/ws", client) as ws,
    ):
        for text in ("one", "two"):
            await ws.send_text(text)
            assert await ws.receive_text() == "echo: " + text


def test_httpx_ws_sync(fake_api: str) -> None:
    ws: WebSocketSession
    with (
        httpx.Client(transport=HyperTransport()) as client,
        connect_ws(f"{fake_api}/ws", client) as ws,
    ):
        ws.send_text("sync")
        assert ws.receive_text() == "echo: sync"
