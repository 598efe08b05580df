"""Internal HTTP/2 machinery (h2 glue) shared by the server and client connections.

What belongs here: adapters between h2's sans-I/O connection and hyper-core's
messages and bodies. ``_common`` holds the role-independent pieces (settings,
header conversion, errors), ``_stream_io`` the upgraded-stream IO of CONNECT
tunnels, ``_server`` and ``_server_stream`` the server dispatcher. Nothing here is public API.
"""

from __future__ import annotations

__all__: list[str] = []
