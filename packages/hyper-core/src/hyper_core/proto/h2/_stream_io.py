"""The IO of an HTTP/2 stream turned into a tunnel (CONNECT, extended CONNECT).

What belongs here: :class:`H2StreamIO`, the :class:`~hyper_core.rt.IO` that
:func:`hyper_core.upgrade.on` hands out for an HTTP/2 CONNECT stream, and the
small :class:`TunnelOwner` protocol the connection (server or client)
implements behind it.

Strategy: the received half is the stream's :class:`~hyper_core.body.Incoming`
body, so reading the tunnel is reading that body (and releases flow-control
window as it goes, exactly as for a request body); empty DATA frames never
reach it. The sending half asks the owning connection to write DATA frames,
which waits on the peer's window like any response body. A reset stream
surfaces as ``anyio.BrokenResourceError`` on both halves, the END_STREAM flag
as end of stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, final

import anyio

from hyper_core.body import Incoming
from hyper_core.error import HyperError

__all__ = ["H2StreamIO", "TunnelOwner"]


class TunnelOwner(Protocol):
    """What the HTTP/2 connection provides to the tunnel of one of its streams."""

    async def tunnel_send(self, stream_id: int, data: bytes) -> None:
        """Send ``data`` on the stream under flow control.

        Raises:
            anyio.BrokenResourceError: the stream or connection is gone.
        """
        ...

    def tunnel_send_eof(self, stream_id: int) -> None:
        """End the sending half (END_STREAM); a no-op if already ended or gone."""
        ...

    def tunnel_close(self, stream_id: int) -> None:
        """Drop the tunnel: reset the stream with CANCEL unless both halves ended."""
        ...


@final
class H2StreamIO:
    """One HTTP/2 stream as a byte stream (see the module docstring).

    Reads and writes may run in two tasks at once, one of each.
    """

    __slots__ = ("_body", "_closed", "_leftover", "_owner", "_stream_id")

    def __init__(self, owner: TunnelOwner, stream_id: int, body: Incoming) -> None:
        self._owner = owner
        self._stream_id = stream_id
        self._body = body
        self._leftover = b""
        self._closed = False

    @property
    def stream_id(self) -> int:
        """The HTTP/2 stream this tunnel runs over."""
        return self._stream_id

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Return up to ``max_bytes`` bytes from the peer.

        Raises:
            anyio.EndOfStream: the peer ended its half (END_STREAM).
            anyio.BrokenResourceError: the stream was reset or the connection lost.
            anyio.ClosedResourceError: this tunnel was closed.

        Cancel safety: nothing is lost if cancelled while waiting.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        data = self._leftover
        while not data:
            try:
                frame = await self._body.frame()
            except HyperError as exc:
                raise anyio.BrokenResourceError(str(exc)) from exc
            if frame is None:
                raise anyio.EndOfStream
            data = frame.data_ref or b""
        if len(data) > max_bytes:
            self._leftover = data[max_bytes:]
            return data[:max_bytes]
        self._leftover = b""
        return data

    async def send(self, item: bytes, /) -> None:
        """Send ``item`` to the peer, waiting for flow-control window as needed.

        Raises:
            anyio.BrokenResourceError: the stream was reset or the connection lost.
            anyio.ClosedResourceError: this tunnel was closed or its send half ended.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if item:
            await self._owner.tunnel_send(self._stream_id, item)

    async def send_many(self, items: Sequence[bytes], /) -> None:
        """Send several chunks in order (as one DATA payload where they fit)."""
        await self.send(b"".join(items))

    async def send_eof(self) -> None:
        """End the sending half with END_STREAM; receiving still works."""
        if not self._closed:
            self._owner.tunnel_send_eof(self._stream_id)

    async def aclose(self) -> None:
        """Close the tunnel; the stream is reset with CANCEL unless it ended cleanly."""
        if not self._closed:
            self._closed = True
            await self._body.aclose()
            self._owner.tunnel_close(self._stream_id)

    def __repr__(self) -> str:
        return f"<H2StreamIO stream={self._stream_id}{' closed' if self._closed else ''}>"
