"""Filter modules (kind = "filter"): WebAssembly middleware (see docs/wasm-abi.md).

A ``[[plugins.wasm-filters.config.filters]]`` entry names a filter module and selects the routes
it guards (route names, tags, path prefixes); every other route is built
without it (per-route elision). A prefix selects every route that *can serve*
a path under it, placeholders included (``/pp/admin`` selects
``/pp/{section}/{x}`` and ``/pp/{rest:path}``); such a route runs the filter
for the requests whose path, normalised (``//`` and dot segments resolved),
is under the prefix. A selector that selects nothing (a route name nobody
declares, a tag no route has, a prefix no route can serve) stops startup,
unless the entry says ``allow_unused = true`` (then it is logged as a warning).

On a WebSocket route a filter runs `on_request` on the handshake only (never
reading from the connection): it may refuse the handshake or edit the
request's headers. The handshake's answer (101) is the server's, so response
edits and `on_response` do not apply there; `body = true` selecting a
WebSocket route stops startup (a handshake has no body). On a request the middleware calls the
module's `on_request` with the request (and, if `body = true`, the body up
to `max_body_bytes`; more is a 413) and then responds for it, or edits the
request's headers and calls the next handler; the answer may also edit the
response's headers, and an `on_response` export is called with the final
status and headers. What a module returns is checked by the host (the
engine's filter wire format): anything unsendable is a 502.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog
from wasmkernel_wasm import FilterDecision, FilterRequest, FilterResponse, HeaderEdits, ModuleLoader
from wasmkernel_wasm.engine import kernel_response

from wasmkernel import (
    Connection,
    Handler,
    Headers,
    Middleware,
    PathPattern,
    PayloadTooLarge,
    Request,
    Response,
    Route,
    StartupError,
    WebSocket,
    WebSocketHandler,
)
from wasmkernel_wasm_filters.config import FilterSpec

log = structlog.get_logger("wasmkernel.wasm")


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base + "/")


def normalised(path: str) -> str:
    """`path` with empty and ``.`` segments dropped and ``..`` resolved (what a prefix is compared with)."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    return "/" + "/".join(kept)


def _segment_pattern(segment: str) -> PathPattern | None:
    """One template segment as a pattern, or None if it holds a `path` placeholder (it may span segments)."""
    pattern = PathPattern.parse("/" + segment)
    return None if any(kind == "path" for _, kind in pattern.params) else pattern


def can_serve(route: Route, prefix: str) -> bool:
    """Whether `route` matches some path that is `prefix` or under it (whole segments)."""
    base = normalised(prefix)
    if base == "/":
        return True
    wanted = base.split("/")[1:]
    template = route.path.split("/")[1:]
    for index, segment in enumerate(wanted):
        if index >= len(template):
            return False
        pattern = _segment_pattern(template[index])
        if pattern is None:
            return True  # a `path` placeholder can serve anything from here
        if pattern.match("/" + segment) is None:
            return False
    return True


def selects(spec: FilterSpec, route: Route | None) -> bool:
    """Whether the filter guards `route` (for some of its requests): by name, tag, or a prefix it can serve."""
    if route is None:
        return False
    return _named(spec, route) or any(can_serve(route, prefix) for prefix in spec.prefixes)


def _named(spec: FilterSpec, route: Route) -> bool:
    return route.name in spec.routes or bool(set(route.tags) & set(spec.tags))


def _unused(spec: FilterSpec, routes: list[Route]) -> list[str]:
    """The selectors of `spec` that select no route, as ``key: value``."""
    unused = [f"routes: {name!r}" for name in spec.routes if not any(route.name == name for route in routes)]
    unused += [f"tags: {tag!r}" for tag in spec.tags if not any(tag in route.tags for route in routes)]
    unused += [f"prefixes: {prefix!r}" for prefix in spec.prefixes if not any(can_serve(route, prefix) for route in routes)]
    return unused


def _apply(headers: Headers, edits: HeaderEdits) -> None:
    for name in edits.remove:
        headers.remove(name)
    for name, value in edits.add:
        headers.add(name, value)


def filter_middleware(
    loader: ModuleLoader, specs: Iterable[FilterSpec], withheld: Callable[[str], frozenset[str]], routes: Iterable[Route], where: str = "filters"
) -> list[Middleware]:
    """One `Middleware` per ``[[filters]]`` entry, in that order (the first is
    outermost); `withheld(module)` names the request headers the module must
    not see. `StartupError` (naming ``{where}[i]``) for a selector that selects
    no route (unless `allow_unused`) and for a selection a filter cannot guard."""
    known = list(routes)
    links = []
    for index, spec in enumerate(specs):
        unused = _unused(spec, known)
        if unused and not spec.allow_unused:
            raise StartupError(
                f"{where}[{index}] (filter module {spec.module!r}) selects no route with {', '.join(unused)}: "
                "fix the selector, or set allow_unused = true in that entry to start without it"
            )
        if unused:
            log.warning("wasm.filter_unused", module=spec.module, selectors=unused, entry=f"{where}[{index}]")
        websockets = [route.name for route in known if route.websocket and selects(spec, route)]
        if spec.body and websockets:
            raise StartupError(
                f"{where}[{index}] (filter module {spec.module!r}) has body = true but selects WebSocket route {websockets[0]!r}, "
                "whose handshake has no body: narrow the selection or drop body"
            )
        wrap, wrap_websocket = _wrappers(loader, spec, withheld)
        links.append(Middleware(f"wasm-filter:{spec.module}", wrap, websocket=wrap_websocket))
    return links


def _wrappers(
    loader: ModuleLoader, spec: FilterSpec, withheld: Callable[[str], frozenset[str]]
) -> tuple[Callable[[Handler, Route | None], Handler], Callable[[WebSocketHandler, Route | None], WebSocketHandler]]:
    """The filter's wrapper for HTTP routes and for WebSocket routes (the handshake only)."""
    module = spec.module
    bases = [normalised(prefix) for prefix in spec.prefixes]

    def guards(route: Route, connection: Connection) -> bool:
        whole = _named(spec, route) or "/" in bases
        return whole or any(_under(normalised(connection.path), base) for base in bases)

    async def decide(connection: Connection, route: Route, method: str, body: bytes | None) -> FilterDecision:
        hidden = withheld(module)
        seen = FilterRequest(
            method=method,
            path=connection.path,
            query=connection.query_string.decode("latin-1"),
            route=route.name,
            headers=tuple((key.lower(), value) for key, value in connection.headers if key.lower() not in hidden),
            body=body,
        )
        return await loader.filter_request(module, seen)

    def wrap(next_handler: Handler, route: Route | None) -> Handler:
        if route is None or not selects(spec, route):
            return next_handler

        async def filtered(request: Request) -> Response:
            if not guards(route, request):
                return await next_handler(request)
            body = None
            if spec.body:
                body = await request.body()
                if len(body) > spec.max_body_bytes:
                    raise PayloadTooLarge(f"Request body exceeds {spec.max_body_bytes} bytes (filter '{module}')")
            async with request.cancelled_on_disconnect():
                decision = await decide(request, route, request.method, body)
            if decision.respond is not None:
                return kernel_response(decision.respond)
            if decision.request:
                _apply(request.headers, decision.request)
            response = await next_handler(request)
            if decision.response:
                _apply(response.headers, decision.response)
            edits = await loader.filter_response(module, FilterResponse(request.method, request.path, response.status, tuple(response.headers)))
            if edits:
                _apply(response.headers, edits)
            return response

        return filtered

    def wrap_websocket(next_handler: WebSocketHandler, route: Route | None) -> WebSocketHandler:
        if route is None or not selects(spec, route):
            return next_handler

        async def filtered(websocket: WebSocket) -> Response:
            # The handshake: nothing is read from the connection (that would take `websocket.connect`).
            if not guards(route, websocket):
                return await next_handler(websocket)
            decision = await decide(websocket, route, "GET", None)
            if decision.respond is not None:
                return kernel_response(decision.respond)
            if decision.request:
                _apply(websocket.headers, decision.request)
            return await next_handler(websocket)

        return filtered

    return wrap, wrap_websocket
