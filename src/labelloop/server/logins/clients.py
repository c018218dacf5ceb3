"""Who is asking: the client address and scheme behind trusted reverse proxies.

:class:`ProxyHeaders` (pure ASGI, the outermost middleware) believes ``X-Forwarded-For`` and
``X-Forwarded-Proto`` only when the connection comes from an address of ``trusted_proxies``.
Then the client is the right-most address of ``X-Forwarded-For`` that is not a trusted proxy
(each proxy appends the address it got the request from; everything left of the first
untrusted one may be made up by the client), and the scheme is the one in
``X-Forwarded-Proto`` (``http`` or ``https``). The request's ``scope["client"]`` and
``scope["scheme"]`` are rewritten, so the failed-login limit, the log and the ``Secure``
cookie flag all see the real client. Uvicorn's own proxy handling is off (``serve`` passes
``proxy_headers=False``), so that nothing else trusts the headers from anyone.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from labelloop.config import Network, proxy_networks


def client_of(request: Request) -> str:
    """The client's address (after :class:`ProxyHeaders`), at most 100 characters."""
    return (request.client.host if request.client else "unknown")[:100]


class ProxyHeaders:
    """Rewrite the client address and scheme from a trusted proxy's forwarding headers."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: str = ""):
        self.app = app
        self.networks: tuple[Network, ...] = proxy_networks(trusted_proxies)

    def trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client_behind(self, forwarded_for: str) -> str | None:
        """The right-most address of an ``X-Forwarded-For`` chain that is not a trusted proxy
        (the left-most one when all are); None for an empty chain."""
        chain = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(chain):
            if not self.trusted(hop):
                return hop
        return chain[0] if chain else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            peer = scope.get("client")
            if peer and self.trusted(peer[0]):
                scope = self._rewritten(scope)
        await self.app(scope, receive, send)

    def _rewritten(self, scope: Scope) -> Scope:
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
        scope = dict(scope)
        client = self.client_behind(",".join(forwarded_for))
        if client is not None:
            scope["client"] = (client[:100], 0)
        if proto is not None:
            # The value the nearest proxy set (proxies that append put theirs last).
            scheme = proto.split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
        return scope
