"""Internal HTTP/2 machinery (h2 glue) shared by the server and client connections.

What belongs here: adapters between h2's sans-I/O connection and hyper-core's
messages and bodies. ``_common`` holds the role-independent pieces (settings,
header conversion, errors), ``_stream_io`` the upgraded-stream IO of CONNECT
tunnels; the server connection is ``_server`` (reader and lifecycle) with
``_server_events`` (h2 event handlers, limits), ``_server_stream`` (stream
serving) and ``_writer`` (output queue, writer task). Nothing here is public API.
"""

from __future__ import annotations

__all__: list[str] = []
