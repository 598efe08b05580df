"""The ASGI ``lifespan`` protocol: startup and shutdown of an application.

What belongs here: :class:`Lifespan` and :class:`LifespanFailure`.

Strategy (uvicorn's ``--lifespan`` semantics, which users know):

* ``on``: the app must support lifespan; an error or ``startup.failed``
  stops the server before it listens.
* ``auto`` (default): an app that raises before answering the startup
  event does not support lifespan (spec: the server continues without it),
  logged at INFO; ``startup.failed`` still stops the server.
* ``off``: no lifespan scope at all.

The app's lifespan call runs in a task of the server's task group from
startup to shutdown; ``state`` is the dict every request scope gets a
shallow copy of.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
import anyio.abc

from ._types import ASGI_VERSION, ASGIApp, Message

__all__ = ["Lifespan", "LifespanFailure", "LifespanMode"]

_log = logging.getLogger("hyper_util.asgi")

LifespanMode = Literal["auto", "on", "off"]


class LifespanFailure(Exception):
    """The application's startup (or, with ``lifespan on``, its lifespan support) failed."""


class Lifespan:
    """Runs one application's lifespan scope.

    Args:
        app: The ASGI application.
        mode: ``auto``, ``on`` or ``off`` (see the module docstring).
        state: The dict the app may fill at startup (``scope["state"]``).
    """

    def __init__(self, app: ASGIApp, mode: LifespanMode, state: dict[str, Any]) -> None:
        self._app = app
        self._mode = mode
        self.state = state
        self._messages: list[Message] = []
        self._wake_app = anyio.Event()
        self._answered = anyio.Event()
        self._answer: Message | None = None
        self._supported = mode != "off"
        self._error: BaseException | None = None
        self._done = anyio.Event()

    @property
    def supported(self) -> bool:
        """False when lifespan is off or the app showed it does not support it."""
        return self._supported

    async def startup(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start the app's lifespan scope and wait for its startup answer.

        Raises:
            LifespanFailure: startup failed (the message says why).
        """
        if not self._supported:
            return
        task_group.start_soon(self._run)
        answer = await self._event("lifespan.startup")
        if answer is None:
            if self._mode == "on":
                raise LifespanFailure(f"the application's lifespan failed: {self._error!r}")
            _log.info("ASGI 'lifespan' is not supported by the application; continuing without it")
            self._supported = False
            return
        if answer["type"] == "lifespan.startup.failed":
            message = answer.get("message", "")
            raise LifespanFailure(f"application startup failed{': ' + message if message else ''}")
        _log.debug("application startup complete")

    async def shutdown(self) -> None:
        """Send the shutdown event and wait for the answer (failures are logged)."""
        if not self._supported:
            return
        if self._done.is_set():
            _log.debug("the lifespan task ended before shutdown (cancelled)")
            return
        answer = await self._event("lifespan.shutdown")
        if answer is None:
            _log.error("application shutdown failed: %r", self._error)
        elif answer["type"] == "lifespan.shutdown.failed":
            _log.error("application shutdown failed: %s", answer.get("message", ""))
        else:
            _log.debug("application shutdown complete")

    async def _event(self, kind: str) -> Message | None:
        self._answer = None
        self._answered = anyio.Event()
        self._messages.append({"type": kind})
        self._wake_app.set()
        waiter = anyio.Event()

        async def either() -> None:
            await self._answered.wait()
            waiter.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(either)
            tg.start_soon(self._wait_done, waiter)
            await waiter.wait()
            tg.cancel_scope.cancel()
        return self._answer

    async def _wait_done(self, waiter: anyio.Event) -> None:
        await self._done.wait()
        waiter.set()

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": ASGI_VERSION, "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:
            self._error = exc
            if self._mode == "on" or self._answer is not None:
                _log.error("exception in the ASGI lifespan", exc_info=exc)
        finally:
            self._done.set()

    async def _receive(self) -> Message:
        while not self._messages:
            self._wake_app = anyio.Event()
            await self._wake_app.wait()
        return self._messages.pop(0)

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        self._answer = dict(message)
        self._answered.set()
