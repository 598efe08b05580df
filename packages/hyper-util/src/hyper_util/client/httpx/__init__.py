"""httpx transports on the pooled client: every httpx program, one line changed.

What belongs here: :class:`AsyncHyperTransport` (for ``httpx.AsyncClient``)
and :class:`HyperTransport` (for ``httpx.Client``), httpx's transport
interface on :class:`hyper_util.client.legacy.Client`, and
:func:`proxy_mounts_from_env`, httpx's environment proxies for them::

    import httpx
    from hyper_util.client.httpx import AsyncHyperTransport

    async with httpx.AsyncClient(transport=AsyncHyperTransport(http2=True)) as client:
        response = await client.get("https://example.com/")

Everything above the transport stays httpx's (redirects, cookies, auth,
event hooks, decoding, ``.json()``); connections, HTTP/1.1 and HTTP/2, the
pool and the timeouts are hyper's. Needs httpx (``pip install
'hyper-util[httpx]'``); ``https`` needs hyper-tls. The guide is
``docs/guides/httpx.md``.
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401 (a clear message when the extra is missing)
except ModuleNotFoundError as exc:  # pragma: no cover (httpx is a test dependency)
    raise ModuleNotFoundError(
        "hyper_util.client.httpx needs httpx: pip install 'hyper-util[httpx]'", name=exc.name
    ) from exc

from hyper_util.client.httpx._async import DEFAULT_LIMITS, AsyncHyperTransport
from hyper_util.client.httpx._env import proxy_mounts_from_env
from hyper_util.client.httpx._sync import HyperTransport

__all__ = ["DEFAULT_LIMITS", "AsyncHyperTransport", "HyperTransport", "proxy_mounts_from_env"]
