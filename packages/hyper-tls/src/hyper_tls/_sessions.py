"""``SessionCache``: TLS sessions kept per origin so new connections resume them.

What belongs here: the client's session store (:class:`SessionCache`) and
the test of whether a session can be resumed (:func:`resumable`).

Strategy: resuming a session skips the certificate exchange and its
verification on both sides (the costliest part of a handshake after the
key exchange), as curl and browsers do. A session is only ever offered to
the origin it was made with: the key is the host connected to, its port and
the SNI name the certificate was verified against, so a session verified
for one name is never presented to another (the server would accept it for
any of its virtual hosts, and nothing would be verified again). A TLS 1.3
session is used once (RFC 8446 C.4: a ticket used twice lets an observer
link the connections); every connection offers the newest ticket it
received, so a client that keeps opening connections keeps a fresh supply.
A TLS 1.2 session may be resumed by any number of connections (RFC 5246
F.1.4), so connections opened at once all resume the one the cache holds.
Expired sessions (the ticket's lifetime, which OpenSSL stores as the
session's timeout) are dropped when found. The store is bounded: the least
recently used origins go first, and each origin keeps its newest few.
"""

from __future__ import annotations

import ssl
import time
from typing import Final, TypeAlias, final

__all__ = ["DEFAULT_SESSION_CACHE_SIZE", "SessionCache", "SessionKey", "resumable"]

#: Origins whose sessions are kept (256: a client talks to a few hosts; each
#: session is about a kilobyte).
DEFAULT_SESSION_CACHE_SIZE: Final = 256

#: Sessions kept per origin: one per connection opened at once, up to this.
_PER_ORIGIN: Final = 8

#: ``(host connected to, port, SNI / verified name)``.
SessionKey: TypeAlias = tuple[str, int, str]


def resumable(
    ssl_object: ssl.SSLObject, resumed_from: ssl.SSLSession | None = None
) -> ssl.SSLSession | None:
    """The session of ``ssl_object`` if a later handshake can resume it, else ``None``.

    ``resumed_from`` is the session given to the handshake, if any. A TLS
    1.2 connection that resumed it has that same session, which may be
    resumed again: it is returned as it is, because reading
    ``ssl_object.session`` costs as much as a certificate check (CPython
    copies the session through its DER encoding, certificate included). TLS
    1.3 sessions become resumable when the server's ticket arrives, after
    the handshake; until then ``session`` holds nothing to resume, or the
    spent ticket the connection was resumed with.
    """
    tls13 = ssl_object.version() == "TLSv1.3"
    if resumed_from is not None and not tls13 and ssl_object.session_reused:
        return resumed_from
    session = ssl_object.session
    if session is None:
        return None
    if tls13:
        spent = resumed_from is not None and session.id == resumed_from.id
        return session if session.has_ticket and not spent else None
    return session if session.has_ticket or session.id else None


@final
class SessionCache:
    """TLS client sessions per origin; TLS 1.3 ones handed out once.

    Args:
        max_origins: Origins to remember; the least recently used is
            forgotten first.

    Raises:
        ValueError: ``max_origins`` is not positive.
    """

    __slots__ = ("_max_origins", "_origins")

    def __init__(self, max_origins: int = DEFAULT_SESSION_CACHE_SIZE) -> None:
        if max_origins <= 0:
            raise ValueError("max_origins must be positive")
        self._max_origins = max_origins
        # Insertion order is recency: put() moves an origin to the end.
        self._origins: dict[SessionKey, list[tuple[ssl.SSLSession, bool]]] = {}

    def take(self, key: SessionKey) -> ssl.SSLSession | None:
        """Return the newest unexpired session for ``key``, or ``None``.

        A TLS 1.3 session is removed (used once); a TLS 1.2 one stays, for
        the connections opened at the same time.
        """
        sessions = self._origins.get(key)
        if sessions is None:
            return None
        now = time.time()
        found = None
        while sessions:
            session, reusable = sessions[-1]
            alive = session.time + session.timeout > now
            if not (reusable and alive):
                sessions.pop()
            if alive:
                found = session
                break
        if not sessions:
            del self._origins[key]
        return found

    def put(self, key: SessionKey, session: ssl.SSLSession, reusable: bool) -> None:
        """Keep ``session`` for later connections to ``key``.

        ``reusable``: several connections may resume it (TLS 1.2).
        """
        sessions = self._origins.pop(key, None)
        if sessions is None:
            sessions = []
        elif reusable:  # a resumed TLS 1.2 session comes back: keep it once
            sessions = [entry for entry in sessions if entry[0] is not session]
        sessions.append((session, reusable))
        if len(sessions) > _PER_ORIGIN:
            del sessions[0]
        self._origins[key] = sessions
        if len(self._origins) > self._max_origins:
            del self._origins[next(iter(self._origins))]

    def clear(self) -> None:
        """Forget every session."""
        self._origins.clear()

    def __len__(self) -> int:
        """The number of sessions held."""
        return sum(len(sessions) for sessions in self._origins.values())

    def __repr__(self) -> str:
        return f"SessionCache(origins={len(self._origins)}, sessions={len(self)})"
