"""The proxy-headers plugin: behind reverse proxies, `request.client` is the
client the trusted proxies report, not the proxy.

Config (`[plugins.proxy-headers.config]`):
- `trusted_proxies`: the proxies whose ``X-Forwarded-For`` (and
  ``X-Forwarded-Proto``) are believed, as addresses or CIDR networks
  (default ["127.0.0.1", "::1"]: a proxy on the same host); at least one.
  A request from any other peer keeps its peer's address, whatever it sends.
- `forwarded_proto`: also take the scheme from a trusted ``X-Forwarded-Proto``
  of "http" or "https" (default true)

It rewrites the request's ASGI scope (``client``, and ``scheme``) before any
other middleware runs (its `order` is the lowest), so the metrics plugin's
`allow_networks`, the limits plugin's per-client buckets and connection
limits, the access log and every endpoint see the client. How the client is
read from the chain: `wasmkernel_proxy_headers.forwarded`.
"""

from __future__ import annotations

from typing import Any

import attrs
import structlog

from wasmkernel import Application, ConfiguredPlugin, Connection, Handler, Middleware, Request, Response, Route, WebSocket, WebSocketHandler, hookimpl
from wasmkernel_proxy_headers.forwarded import TrustedProxies, forwarded_client

log = structlog.get_logger("wasmkernel.proxy_headers")


def _proxies(instance: Any, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("list at least one proxy (an address or a network): with none, the plugin would trust nobody")
    for entry in value:
        try:
            TrustedProxies.parse([entry])
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None


@attrs.frozen
class Config:
    trusted_proxies: tuple[str, ...] = attrs.field(default=("127.0.0.1", "::1"), validator=_proxies)
    forwarded_proto: bool = True


class Plugin(ConfiguredPlugin[Config]):
    order = -200  # before every other middleware: they all see the client
    config_class = Config

    def configured(self) -> None:
        self.trusted = TrustedProxies.parse(self.config.trusted_proxies)
        if any(network.prefixlen == 0 for network in self.trusted.networks):
            log.warning("proxy_headers.trusts_everyone", hint="any client can then choose its address; list your proxies")

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("proxy-headers", self.wrap, websocket=self.wrap_websocket)]

    def adopt(self, connection: Connection, plain: str, secure: str) -> None:
        """From a trusted proxy, make the client and the scheme (`plain` or
        `secure` for this kind of connection) the ones it reports."""
        peer = connection.client
        if peer is None or not self.trusted.trusts(peer[0]):
            return
        chain = [entry for value in connection.headers.getall("x-forwarded-for") for entry in value.split(",")]
        client = forwarded_client(chain, self.trusted)
        if client is not None:
            connection.scope["client"] = (client, 0)
        if self.config.forwarded_proto:
            proto = (connection.headers.get("x-forwarded-proto") or "").strip().lower()
            if proto in ("http", "https"):
                connection.scope["scheme"] = secure if proto == "https" else plain

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        async def handler(request: Request) -> Response:
            self.adopt(request, "http", "https")
            return await next_handler(request)

        return handler

    def wrap_websocket(self, next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        async def handler(ws: WebSocket) -> Response:
            self.adopt(ws, "ws", "wss")
            return await next_handler(ws)

        return handler
