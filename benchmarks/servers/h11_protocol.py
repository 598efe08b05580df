"""Baseline: a bare h11 server loop on an asyncio ``Protocol``.

This is the floor cost of the h11 codec with the cheapest I/O Python offers:
no tasks, no streams, no awaits; ``data_received`` feeds h11 and writes the
response synchronously on the transport. It sends the same bytes a hyper
server sends for the benchmark (status line, ``Content-Type``,
``Content-Length``, ``Date``), so the gap between this and hyper-core is the
cost of everything around h11. It is a baseline, not a server: no timeouts,
no backpressure, no request bodies beyond what h11 discards.

Usage: ``python h11_protocol.py --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from email.utils import formatdate

import h11

BODY = b"Hello, World!"

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


class HelloProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.conn = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        transport = self.transport
        assert transport is not None
        try:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.EndOfMessage):
                    transport.write(
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
                        transport.close()
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    transport.close()
                    return
        except h11.RemoteProtocolError:
            transport.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HelloProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
