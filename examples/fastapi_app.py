"""A FastAPI application, run on hyper with one command.

Install FastAPI next to hyper-util (``pip install fastapi``), then::

    python -m hyper_util run fastapi_app:app --app-dir examples
    curl http://127.0.0.1:8000/items/3?q=x
    curl --http2-prior-knowledge http://127.0.0.1:8000/items/3

The app has a JSON route, a streamed response, a lifespan that fills the
state every request sees, and a WebSocket echo (on HTTP/1.1 and HTTP/2).
Nothing in it knows about hyper: any ASGI server runs it the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"server_name": "hyper"}


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def read_item(item_id: int, request: Request, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "served_by": request.state.server_name}


@app.get("/count")
async def count() -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(1, 4):
            yield b"%d\n" % i

    return StreamingResponse(numbers(), media_type="text/plain")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
