"""Filter modules (kind = "filter"): WebAssembly middleware (see docs/wasm-abi.md).

A loader's ``[[filters]]`` entry names a filter module and selects the routes
it guards (route names, tags, path prefixes); every other route is built
without it (per-route elision). On a request the middleware calls the
module's `on_request` with the request (and, if `body = true`, the body up
to `max_body_bytes`; more is a 413) and then responds for it, or edits the
request's headers and calls the next handler; the answer may also edit the
response's headers, and an `on_response` export is called with the final
status and headers. Every byte a module returns is checked: a final status,
RFC 9110 header names and values, no connection-specific, `host` or
`content-length` header; anything else is a 502.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import structlog

from wasmkernel import Handler, Headers, Middleware, PayloadTooLarge, Request, Response, Route, StartupError, header_problem
from wasmkernel_wasm import (
    FilterDecision,
    FilterRequest,
    FilterResponse,
    HeaderEdits,
    ModuleLoader,
    WasmBadResponse,
    WasmResponse,
)
from wasmkernel_wasm.config import FilterSpec, LoaderConfig
from wasmkernel_wasm.wire import Fields, checked_response

log = structlog.get_logger("wasmkernel.wasm")

_U32 = struct.Struct("<I")
CONTINUE, RESPOND = 0, 1
#: Headers a filter may not add or remove: the server owns them.
RESERVED = frozenset({"host", "content-length"})


# -- wire format ------------------------------------------------------------------


def _field(out: bytearray, value: bytes) -> None:
    out += _U32.pack(len(value))
    out += value


def _pairs(out: bytearray, pairs: Iterable[tuple[str, str]]) -> None:
    items = list(pairs)
    out += _U32.pack(len(items))
    for name, value in items:
        _field(out, name.encode())
        _field(out, value.encode())


def encode_filter_request(request: FilterRequest) -> bytes:
    """field(method) field(path) field(query) field(route) pairs(headers) u32 has_body field(body)."""
    out = bytearray()
    for value in (request.method, request.path, request.query, request.route):
        _field(out, value.encode())
    _pairs(out, request.headers)
    out += _U32.pack(0 if request.body is None else 1)
    _field(out, request.body or b"")
    return bytes(out)


def encode_filter_response(response: FilterResponse) -> bytes:
    """field(method) field(path) u32 status pairs(headers)."""
    out = bytearray()
    _field(out, response.method.encode())
    _field(out, response.path.encode())
    out += _U32.pack(response.status)
    _pairs(out, response.headers)
    return bytes(out)


class _Reader(Fields):
    def count(self, least: int) -> int:
        count = self.u32()
        if count * least > len(self.data) - self.pos:
            raise ValueError("count exceeds the buffer")
        return count

    def edits(self) -> HeaderEdits:
        add = tuple((self.field().decode(), self.field().decode()) for _ in range(self.count(8)))
        remove = tuple(self.field().decode() for _ in range(self.count(4)))
        return HeaderEdits(add, remove)


def _checked_edits(edits: HeaderEdits, module: str) -> HeaderEdits:
    for name, value in (*edits.add, *((name, "") for name in edits.remove)):
        problem = header_problem(name, value)
        if problem is None and name.lower() in RESERVED:
            problem = f"header {name!r} is set by the server, not by a filter"
        if problem is not None:
            raise WasmBadResponse(f"filter module '{module}' returned an unusable header edit: {problem}")
    return HeaderEdits(tuple((name.lower(), value) for name, value in edits.add), tuple(name.lower() for name in edits.remove))


def decode_decision(data: bytes, module: str) -> FilterDecision:
    """Parse what `on_request` returned; `WasmBadResponse` (502) if it is malformed or unsendable."""
    reader = _Reader(data)
    try:
        action = reader.u32()
        if action == RESPOND:
            status = reader.u32()
            headers = tuple((reader.field().decode(), reader.field().decode()) for _ in range(reader.count(8)))
            body = reader.field()
            reader.end()
        elif action == CONTINUE:
            request, response = reader.edits(), reader.edits()
            reader.end()
        else:
            raise ValueError(f"unknown action {action}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"filter module '{module}' returned a malformed decision ({exc})") from None
    if action == RESPOND:
        return FilterDecision(respond=checked_response(status, headers, body, module))
    return FilterDecision(request=_checked_edits(request, module), response=_checked_edits(response, module))


def decode_edits(data: bytes, module: str) -> HeaderEdits:
    """Parse what `on_response` returned (`WasmBadResponse` if malformed or unsendable)."""
    reader = _Reader(data)
    try:
        edits = reader.edits()
        reader.end()
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmBadResponse(f"filter module '{module}' returned malformed response edits ({exc})") from None
    return _checked_edits(edits, module)


# -- the middleware ------------------------------------------------------------------


def selects(spec: FilterSpec, route: Route | None) -> bool:
    """Whether the filter guards `route`: by name, by tag, or by a path prefix (whole segments)."""
    if route is None:
        return False
    if route.name in spec.routes or set(route.tags) & set(spec.tags):
        return True
    return any(route.path == prefix.rstrip("/") or route.path.startswith(prefix.rstrip("/") + "/") for prefix in spec.prefixes)


def _apply(headers: Headers, edits: HeaderEdits) -> None:
    for name in edits.remove:
        headers.remove(name)
    for name, value in edits.add:
        headers.add(name, value)


def filter_middleware(loader: ModuleLoader, config: LoaderConfig, withheld: Callable[[str], frozenset[str]], routes: Iterable[Route]) -> list[Middleware]:
    """One `Middleware` per ``[[filters]]`` entry, in that order (the first is outermost);
    `withheld(module)` names the request headers the module must not see."""
    known = list(routes)
    links = []
    for spec in config.filters:
        if not any(selects(spec, route) for route in known):
            log.warning("wasm.filter_unused", module=spec.module, routes=spec.routes, tags=spec.tags, prefixes=spec.prefixes)
        websockets = [route.name for route in known if route.websocket and selects(spec, route)]
        if websockets:  # it would not guard them: fail closed
            named = ", ".join(websockets)
            raise StartupError(f"filter module '{spec.module}' selects WebSocket route(s) {named}; filters run on HTTP routes only: narrow its selector")
        links.append(Middleware(f"wasm-filter:{spec.module}", _wrapper(loader, spec, withheld)))
    return links


def _wrapper(loader: ModuleLoader, spec: FilterSpec, withheld: Callable[[str], frozenset[str]]) -> Callable[[Handler, Route | None], Handler]:
    module = spec.module

    def wrap(next_handler: Handler, route: Route | None) -> Handler:
        if not selects(spec, route):
            return next_handler
        assert route is not None
        name = route.name

        async def filtered(request: Request) -> Response:
            body = None
            if spec.body:
                body = await request.body()
                if len(body) > spec.max_body_bytes:
                    raise PayloadTooLarge(f"Request body exceeds {spec.max_body_bytes} bytes (filter '{module}')")
            hidden = withheld(module)
            seen = FilterRequest(
                method=request.method,
                path=request.path,
                query=request.query_string.decode("latin-1"),
                route=name,
                headers=tuple((key.lower(), value) for key, value in request.headers if key.lower() not in hidden),
                body=body,
            )
            async with request.cancelled_on_disconnect():
                decision = await loader.filter_request(module, seen)
            if decision.respond is not None:
                return _response(decision.respond)
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

    return wrap


def _response(result: WasmResponse) -> Response:
    return Response(result.body, status=result.status, headers=list(result.headers))
