"""Baseline: a bare h2 loop on anyio streams that answers every request inline.

Not a server: one task per connection feeds received bytes to
``h2.connection.H2Connection`` and, for each ``RequestReceived`` in the
batch, queues the hello-world response (status 200, ``content-type:
text/plain``, ``content-length: 13``, ``date``) at once, then sends
everything h2 produced in one write. No per-stream concurrency, no flow
control waits, no request bodies, no limits: it shows what h2 itself costs
with the I/O structure hyper-core has, which is the floor for hyper-core's
per-stream machinery.

Usage: ``python h2_bare.py --port N [--loop asyncio|uvloop|trio]``.
"""

from __future__ import annotations

import argparse
import time
from email.utils import formatdate

import anyio
import h2.config
import h2.connection
import h2.events
from anyio.abc import SocketStream

from hyper_util.rt import run

BODY = b"Hello, World!"
_date_second = 0
_date_value = b""


def http_date() -> bytes:
    """The ``date`` value, formatted once per second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_value = formatdate(now, usegmt=True).encode("ascii")
    return _date_value


async def handle(stream: SocketStream) -> None:
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    async with stream:
        await stream.send(conn.data_to_send())
        while True:
            try:
                data = await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    sid = event.stream_id
                    conn.send_headers(
                        sid,
                        [
                            (b":status", b"200"),
                            (b"content-type", b"text/plain"),
                            (b"content-length", b"13"),
                            (b"date", http_date()),
                        ],
                    )
                    conn.send_data(sid, BODY, end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    await stream.send(conn.data_to_send())
                    return
            out = conn.data_to_send()
            if out:
                await stream.send(out)


async def serve(port: int) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    await listener.serve(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    args = parser.parse_args()
    run(serve, args.port, loop=args.loop)


if __name__ == "__main__":
    main()
