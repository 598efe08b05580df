"""The README's demo: a server and a client of hyper_core in one process.

Run it (it needs hyper-core, and hyper-util for the server's listener)::

    python examples/demo.py                  # on asyncio
    python examples/demo.py --backend trio   # the same code on trio

It starts ``hello_server``'s service, plus ``echo_server``'s at ``/echo``,
on a free port in a task group, opens one client connection to it, sends
three GETs one after another over that same keep-alive connection, then a
POST to the echo service, printing the status line, headers and body of
every response; then it stops the server and exits 0.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio
from echo_server import echo
from hello_server import HOST, hello, serve

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http1
from hyper_core.ext import ReasonPhrase
from hyper_core.http import Request, Response


async def app(request: Request[Incoming]) -> Response[Any]:
    """Route ``/echo`` to the echo service and everything else to hello."""
    if request.uri.path == "/echo":
        return await echo(request)
    return await hello(request)


async def show(response: Response[Incoming]) -> None:
    """Print a response as it came off the wire: status line, headers, body."""
    # The reason phrase is the canonical one unless the server sent another,
    # which the connection then keeps in the extensions.
    custom = response.extensions.get(ReasonPhrase)
    reason = response.status.reason if custom is None else custom.as_bytes().decode("latin-1")
    print(f"{response.version} {response.status} {reason}")
    for name, value in response.headers.items():
        print(f"{name}: {value}")
    print()
    # collect() reads the body to its end, which is also what frees the
    # connection for the next request.
    print((await collect(response.body)).to_bytes().decode(), end="")
    print()


async def main() -> None:
    async with anyio.create_task_group() as tg:
        # The server runs in this task group; start() returns once it is
        # listening, with the port the system picked.
        port = await tg.start(serve, app, 0)
        authority = f"{HOST}:{port}"
        print(f"server listening on http://{authority}\n")

        stream = await anyio.connect_tcp(HOST, port)
        sender, connection = await http1.handshake(stream)
        tg.start_soon(connection.serve)  # drives the client connection

        # Three requests, one connection: each is sent once the previous
        # response body has been read to its end.
        for i in range(1, 4):
            print(f"--- GET / (request {i} on the same connection)")
            get = Request("GET", "/", headers={"host": authority})
            await show(await sender.send_request(get))

        print("--- POST /echo")
        post = Request(
            "POST",
            "/echo",
            headers={"host": authority, "content-type": "text/plain"},
            body=Full(b"echo me, please\n"),
        )
        await show(await sender.send_request(post))

        await sender.aclose()  # the client connection ends...
        tg.cancel_scope.cancel()  # ...and so does the server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A hyper_core server and client, one process.")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    anyio.run(main, backend=parser.parse_args().backend)
