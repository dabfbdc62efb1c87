"""The per-request chain: handlers and the middleware that wraps them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from wasmkernel.http import Request
from wasmkernel.responses import Response
from wasmkernel.routing import Route

#: One link of the chain: takes the request, returns the response.
Handler = Callable[[Request], Awaitable[Response]]

#: Builds a handler around `next_handler` for one route (None: the fallback
#: that answers 404/405). Called once per route at startup; returning
#: `next_handler` unchanged keeps a route free of the middleware's cost.
Wrapper = Callable[[Handler, "Route | None"], Handler]

#: Turns what a link raised into the response (see `Application.guard`).
Guard = Callable[[Handler], Handler]


@attrs.frozen
class Middleware:
    """A middleware contributed by a plugin.

    The chain is in plugin order, then in the order a plugin lists its
    middleware: the first is outermost (sees the request first and the
    response last). The `next_handler` a middleware wraps never raises an
    `HTTPError` or any other error: the kernel has already turned it into a
    response (``response.error`` says which), so headers are added to error
    and normal responses alike. `enforces` names the route protections the
    middleware is responsible for ("auth", "schema"): a route declaring one
    that no middleware enforces stops startup. `owner` is filled in by the kernel.
    """

    name: str
    wrap: Wrapper
    owner: str = ""
    enforces: frozenset[str] = frozenset()


def build_chain(endpoint: Handler, route: Route | None, middleware: tuple[Middleware, ...], guard: Guard) -> Handler:
    """Wrap `endpoint` in `middleware`, outermost first, with `guard` at every
    boundary a link adds (elided links add none)."""
    handler = guard(endpoint)
    for link in reversed(middleware):
        wrapped = link.wrap(handler, route)
        handler = handler if wrapped is handler else guard(wrapped)
    return handler
