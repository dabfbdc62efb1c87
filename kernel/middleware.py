"""The per-request chain: handlers and the middleware that wraps them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from kernel.http import Request
from kernel.responses import Response
from kernel.routing import Route

#: One link of the chain: takes the request, returns the response.
Handler = Callable[[Request], Awaitable[Response]]

#: Builds a handler around `next_handler` for one route (None: the fallback
#: that answers 404/405). Called once per route at startup; returning
#: `next_handler` unchanged keeps a route free of the middleware's cost.
Wrapper = Callable[[Handler, "Route | None"], Handler]


@attrs.frozen
class Middleware:
    """A middleware contributed by a plugin.

    The chain is ordered by the registry's plugin order, then by the order a
    plugin lists its middleware: the first is outermost (sees the request
    first and the response last). `owner` is filled in by the kernel.
    """

    name: str
    wrap: Wrapper
    owner: str = ""


def build_chain(endpoint: Handler, route: Route | None, middleware: tuple[Middleware, ...]) -> Handler:
    """Wrap `endpoint` in `middleware`, outermost first."""
    handler = endpoint
    for link in reversed(middleware):
        handler = link.wrap(handler, route)
    return handler
