"""The ASGI ``lifespan`` scope: startup, shutdown, state, and ``lifespan auto|on|off``.

What belongs here: how hyper_util.asgi.serve runs an application's lifespan,
with uvicorn's ``--lifespan`` semantics: a failed startup stops the server
before it listens (with the app's message), an app without lifespan support
is served anyway in ``auto`` and refused in ``on``, ``off`` never calls it,
and shutdown runs after the last request.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from asgi_helpers import running

from hyper_util.asgi import LifespanFailure, Receive, Scope, Send, serve

pytestmark = pytest.mark.anyio


class LifespanApp:
    def __init__(self, *, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            assert scope["asgi"]["version"] == "3.0"
            message = await receive()
            self.events.append(message["type"])
            scope["state"]["db"] = "connected"
            if self.startup == "failed":
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            self.events.append(message["type"])
            if self.shutdown == "failed":
                await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
            return
        self.events.append(f"request state={scope.get('state')}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_startup_state_and_shutdown_in_order() -> None:
    app = LifespanApp()
    async with running(app) as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).text == "ok"
    assert app.events == [
        "lifespan.startup",
        "request state={'db': 'connected'}",
        "lifespan.shutdown",
    ]


async def test_failed_startup_stops_the_server_with_the_apps_message() -> None:
    app = LifespanApp(startup="failed")
    with pytest.raises(LifespanFailure, match="application startup failed: no database"):
        with anyio.fail_after(5):
            await serve(app, port=0, handle_signals=False)
    assert app.events == ["lifespan.startup"]


async def test_failed_shutdown_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hyper_util.asgi")
    async with running(LifespanApp(shutdown="failed")):
        pass
    assert any(
        "application shutdown failed: flush failed" in r.getMessage() for r in caplog.records
    )


async def _no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise ValueError("this app does not do lifespan")
    assert "state" not in scope
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


async def test_auto_serves_an_app_without_lifespan(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyper_util.asgi")
    async with running(_no_lifespan, lifespan="auto") as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).text == "served"
    assert any("not supported" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_on_refuses_an_app_without_lifespan() -> None:
    with pytest.raises(LifespanFailure, match="this app does not do lifespan"):
        with anyio.fail_after(5):
            await serve(_no_lifespan, port=0, lifespan="on", handle_signals=False)


async def test_off_never_calls_the_lifespan_scope() -> None:
    scopes: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope["type"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with running(app, lifespan="off") as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 204
    assert scopes == ["http"]


async def test_limit_max_requests_shuts_down_after_n_requests() -> None:
    app = LifespanApp()
    async with anyio.create_task_group() as tg:
        bound: Any = await tg.start(
            partial(serve, app, port=0, handle_signals=False, limit_max_requests=2)
        )
        url = f"http://127.0.0.1:{bound[1]}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 200
            assert (await client.get(url)).status_code == 200
        # serve() returns by itself, so the task group exits (the test timeout bounds it).
    assert app.events[-1] == "lifespan.shutdown"


async def test_limit_concurrency_answers_503() -> None:
    release = anyio.Event()
    started = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"slow"})

    async with (
        running(app, lifespan="off", limit_concurrency=1) as url,
        httpx.AsyncClient() as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get, url)
        with anyio.fail_after(5):
            await started.wait()
        assert (await client.get(url)).status_code == 503
        release.set()
