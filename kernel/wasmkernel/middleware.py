"""The per-request chain: handlers and the middleware that wraps them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from wasmkernel.http import Request
from wasmkernel.responses import Response
from wasmkernel.routing import Protection, Route

if TYPE_CHECKING:
    from wasmkernel.websocket import WebSocket

#: One link of an HTTP chain: takes the request, returns the response.
Handler = Callable[[Request], Awaitable[Response]]
#: One link of a WebSocket chain, around the whole connection: returns the
#: handshake's answer (the kernel's 101 placeholder once accepted).
WebSocketHandler = Callable[["WebSocket"], Awaitable[Response]]
H = TypeVar("H", Handler, WebSocketHandler)

#: Builds a handler around `next_handler` for one route (None: the fallback
#: that answers 404/405). Called once per route at startup; returning
#: `next_handler` unchanged keeps a route free of the middleware's cost.
Wrapper = Callable[[Handler, Route | None], Handler]
WebSocketWrapper = Callable[[WebSocketHandler, Route | None], WebSocketHandler]


@attrs.frozen
class Middleware:
    """A middleware contributed by a plugin.

    It handles the connection kinds it has a wrapper for: `wrap` for HTTP
    routes, `websocket` for WebSocket routes (the chain around the whole
    connection, whose handshake the middleware may refuse); the kernel leaves
    it off the other kind's chains. The chain is in plugin order, then in the
    order a plugin lists its middleware: the first is outermost (sees the
    request first and the response last). The `next_handler` a middleware
    wraps never raises an error: the kernel has already turned it into a
    response (``response.error`` says which), so headers are added to error
    and normal responses alike. `enforces` lists the route protections the
    middleware checks (on the kinds it handles): a route declaring one that no
    middleware enforces stops startup. `owner` is filled in by the kernel.
    """

    name: str
    wrap: Wrapper | None
    websocket: WebSocketWrapper | None = None
    owner: str = ""
    enforces: frozenset[Protection[Any]] = frozenset()

    def wrapper(self, websocket: bool) -> Callable[[Any, Route | None], Any] | None:
        return self.websocket if websocket else self.wrap


def build_chain(endpoint: H, route: Route | None, middleware: tuple[Middleware, ...], guard: Callable[[H], H], websocket: bool = False) -> H:
    """Wrap `endpoint` in the `middleware` handling its kind, outermost
    first, with `guard` at every boundary a link adds (elided links add none)."""
    handler = guard(endpoint)
    for link in reversed(middleware):
        wrap = link.wrapper(websocket)
        wrapped = wrap(handler, route) if wrap is not None else handler
        handler = handler if wrapped is handler else guard(wrapped)
    return handler
