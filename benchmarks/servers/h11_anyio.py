"""Baseline: a bare h11 server loop on anyio byte streams.

Same wire bytes as ``h11_protocol.py``, but the I/O goes through an anyio TCP
listener and ``await stream.receive()`` / ``await stream.send()``, one task
per connection: the structure hyper-core's server has, with nothing else. The
gap between this and ``h11_protocol.py`` is the cost of anyio streams and
tasks; the gap between this and hyper-core is the cost of hyper-core itself.

Usage: ``python h11_anyio.py --port N [--backend asyncio|trio]``.
"""

from __future__ import annotations

import argparse
import time
from email.utils import formatdate

import anyio
import h11
from anyio.abc import SocketStream

BODY = b"Hello, World!"
# h11's default read size; the loopback requests are ~40 bytes anyway.
RECEIVE_BYTES = 65536

_date_second = 0
_date_value = b""


def date_header() -> bytes:
    """The IMF-fixdate of now, formatted at most once per second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_value = formatdate(now, usegmt=True).encode("ascii")
    return _date_value


async def handle(stream: SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive(RECEIVE_BYTES)
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        data = b""
                    conn.receive_data(data)
                elif isinstance(event, h11.EndOfMessage):
                    await stream.send(
                        conn.send(
                            h11.Response(
                                status_code=200,
                                headers=[
                                    (b"content-type", b"text/plain"),
                                    (b"content-length", b"13"),
                                    (b"date", date_header()),
                                ],
                            )
                        )
                        + conn.send(h11.Data(data=BODY))
                        + conn.send(h11.EndOfMessage())
                    )
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
        except (h11.RemoteProtocolError, anyio.BrokenResourceError):
            return


async def serve(port: int) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    await listener.serve(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(serve, args.port, backend=args.backend)


if __name__ == "__main__":
    main()
