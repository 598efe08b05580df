"""Echo: stream each request body back as the response body.

Run it, then send it something::

    python examples/echo_server.py --port 8080
    python examples/client.py http://127.0.0.1:8080/ -d 'hello'
    python examples/client.py http://127.0.0.1:8080/ -d @big.file > copy.file

The point of this example is what the service does *not* do: it never reads
the body into memory. The request body, an :class:`~hyper_core.body.Incoming`,
is itself a body, so it can be handed straight back as the response body
(as hyper's own ``echo`` example does with ``req.into_body()``). The
connection writes the response head at once and then pulls each chunk of
the request as it writes the response, so a gigabyte upload costs a few
reads' worth of memory and the first bytes come back before the client has
finished sending. A ``Content-Length`` request gets a ``Content-Length``
response (the body's size hint is exact), a chunked one a chunked response,
and trailers pass through.

The listener, the signal handling and the command line are
``hello_server.py``'s.
"""

from __future__ import annotations

import contextlib

import anyio
from hello_server import parse_args, run_server

from hyper_core.body import Incoming
from hyper_core.http import Request, Response


async def echo(request: Request[Incoming]) -> Response[Incoming]:
    """Answer with the request's own body, and its Content-Type, if any."""
    content_type = request.headers.get("content-type")
    headers = {} if content_type is None else {"content-type": content_type}
    # A client that sent `Expect: 100-continue` gets its `100 Continue` when
    # the connection first pulls from this body, i.e. right after our
    # response head: the body is only asked for once someone wants it.
    return Response(200, headers=headers, body=request.body)


if __name__ == "__main__":
    args = parse_args("Stream each HTTP/1.1 request body back as the response.")
    # KeyboardInterrupt only on Windows: elsewhere stop_on_signal() handles Ctrl-C.
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run_server, echo, args.port, backend=args.backend)
