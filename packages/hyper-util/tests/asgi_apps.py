"""Real ASGI applications for the ASGI server tests: one Starlette app, one FastAPI app.

What belongs here: the two applications the framework tests serve, built the
way their users build them. Both have the same routes, so one set of checks
runs against both:

* ``GET /json?name=...``: a JSON route that also reports the lifespan state
  and the scope's ``http_version``;
* ``POST /echo``: the raw body back;
* ``POST /form``: a multipart form with a file (python-multipart);
* ``GET /stream``: a streaming response of 5 lines;
* ``GET /file``: a file response (``http.response.pathsend`` when offered);
* ``POST /background``: answers at once, then a background task records the
  body (``GET /background`` reports what it recorded);
* ``WS /ws``: echo of text and binary messages, with a subprotocol.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, File, Form, UploadFile, WebSocket
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

FILE_PATH = Path(__file__).with_name("asgi_apps.py")
RECORDED: dict[str, list[bytes]] = {"starlette": [], "fastapi": []}


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan", "pid": os.getpid()}


async def _lines() -> AsyncIterator[bytes]:
    for i in range(5):
        yield b"line %d\n" % i


# -- Starlette ----------------------------------------------------------------


async def s_json(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "name": request.query_params.get("name"),
            "greeting": request.state.greeting,
            "http_version": request.scope["http_version"],
            "scheme": request.url.scheme,
        }
    )


async def s_echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def s_form(request: Request) -> JSONResponse:
    async with request.form() as form:
        upload: Any = form["file"]
        content = await upload.read()
        fields = {"field": form["field"], "file": content.decode(), "size": len(content)}
        return JSONResponse(fields)


async def s_stream(request: Request) -> StreamingResponse:
    return StreamingResponse(_lines(), media_type="text/plain")


async def s_file(request: Request) -> FileResponse:
    return FileResponse(FILE_PATH, media_type="text/plain")


async def _record(kind: str, body: bytes) -> None:
    RECORDED[kind].append(body)


async def s_background(request: Request) -> Response:
    if request.method == "GET":
        return JSONResponse([b.decode() for b in RECORDED["starlette"]])
    body = await request.body()
    return Response(b"accepted", background=BackgroundTask(_record, "starlette", body))


async def s_ws(websocket: Any) -> None:
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol="echo" if "echo" in offered else None)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


starlette_app = Starlette(
    routes=[
        Route("/json", s_json),
        Route("/echo", s_echo, methods=["POST"]),
        Route("/form", s_form, methods=["POST"]),
        Route("/stream", s_stream),
        Route("/file", s_file),
        Route("/background", s_background, methods=["GET", "POST"]),
        WebSocketRoute("/ws", s_ws),
    ],
    lifespan=lifespan,
)

# -- FastAPI ------------------------------------------------------------------

fastapi_app = FastAPI(lifespan=lifespan)


@fastapi_app.get("/json")
async def f_json(request: Request, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "greeting": request.state.greeting,
        "http_version": request.scope["http_version"],
        "scheme": request.url.scheme,
    }


@fastapi_app.post("/echo")
async def f_echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@fastapi_app.post("/form")
async def f_form(field: str = Form(), file: UploadFile = File()) -> dict[str, Any]:  # noqa: B008
    content = await file.read()
    return {"field": field, "file": content.decode(), "size": len(content)}


@fastapi_app.get("/stream")
async def f_stream() -> StreamingResponse:
    return StreamingResponse(_lines(), media_type="text/plain")


@fastapi_app.get("/file")
async def f_file() -> FileResponse:
    return FileResponse(FILE_PATH, media_type="text/plain")


@fastapi_app.get("/background")
async def f_background_get() -> list[str]:
    return [b.decode() for b in RECORDED["fastapi"]]


@fastapi_app.post("/background")
async def f_background(request: Request, tasks: BackgroundTasks) -> Response:
    tasks.add_task(_record, "fastapi", await request.body())
    return Response(b"accepted")


@fastapi_app.websocket("/ws")
async def f_ws(websocket: WebSocket) -> None:
    await s_ws(websocket)


APPS = {"starlette": starlette_app, "fastapi": fastapi_app}
