"""Without the ``http3`` extra, HTTP/3 fails with one clear error (run by ``nox -s isolated``).

hyper-core is installed alone, so aioquic is absent: every module still
imports (``isolated_import.py`` checks that), and asking for QUIC raises
``ImportError`` naming the extra.
"""

from __future__ import annotations

import importlib.util

import anyio

from hyper_core import quic


async def main() -> None:
    assert importlib.util.find_spec("aioquic") is None, "aioquic is installed here"
    message = ""
    try:
        async with quic.listen("127.0.0.1", 0, certfile="unused.pem"):
            pass
    except ImportError as exc:
        message = str(exc)
    assert "pip install 'hyper-core[http3]'" in message, message or "listen() worked"
    print(f"hyper_core without aioquic: {message}")


if __name__ == "__main__":
    anyio.run(main)
