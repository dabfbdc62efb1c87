"""Routes bound to modules from the registry: HTTP handlers, WASI commands
and compute functions (route parameters as numbers, the result as JSON)."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable

from wasmkernel import BadRequest, JSONResponse, Request, Response, ResponseSpec, Route
from wasmkernel_wasm import (
    ArrayIn,
    ModuleLoader,
    WasmRequest,
    WasmResponse,
)
from wasmkernel_wasm.cgi import cgi_env
from wasmkernel_wasm.config import ModuleSpec, ModuleTable
from wasmkernel_wasm.requests import CREDENTIAL_HEADERS

#: What a compute route answers: the function's result.
COMPUTE_RESULT = ResponseSpec(
    "The function's result",
    schema={"type": "object", "required": ["value"], "properties": {"value": {"type": ["number", "null"]}}, "additionalProperties": False},
)


async def wasm_request(request: Request, withheld: frozenset[str] = frozenset()) -> WasmRequest:
    """The `WasmRequest` for a kernel request (route params as strings),
    without the `withheld` headers (lower-case names)."""
    return WasmRequest(
        method=request.method,
        path=request.path,
        query=request.query_string.decode("latin-1"),
        params=tuple((name, str(value)) for name, value in request.path_params.items()),
        headers=tuple((name.lower(), value) for name, value in request.headers if name.lower() not in withheld),
        body=await request.body(),
    )


def _withheld(config: ModuleTable, module: str, credentials: Callable[[], Iterable[str]]) -> Callable[[], frozenset[str]]:
    """The headers `module` must not see, worked out on first use (once every
    authenticator is known)."""

    @functools.cache
    def names() -> frozenset[str]:
        return config.withheld_headers(config.spec(module), credentials())

    return names


def kernel_response(result: WasmResponse) -> Response:
    """The kernel response for what a module answered."""
    return Response(result.body, status=result.status, headers=list(result.headers))


def bind_routes(loader: ModuleLoader, config: ModuleTable, credentials: Callable[[], Iterable[str]] = lambda: CREDENTIAL_HEADERS) -> list[Route]:
    """Kernel routes serving the configured http and wasi modules; no module
    sees a header named by `credentials()` or the config's `secret_headers`
    unless its `grant_headers` lists it."""
    routes = []
    for spec in config.routes:
        kind = config.spec(spec.module).kind
        withheld = _withheld(config, spec.module, credentials)
        module = config.spec(spec.module)
        if kind == "compute" and module.compute_body:
            endpoint = _body_endpoint(loader, module, spec.function)
        elif kind == "compute":
            endpoint = _compute_endpoint(loader, spec.module, spec.function)
        elif kind == "http":
            endpoint = _http_endpoint(loader, spec.module, withheld)
        else:
            endpoint = _wasi_endpoint(loader, spec.module, spec.path, withheld)
        routes.append(
            Route(
                spec.path,
                endpoint,
                methods=tuple(spec.methods),
                name=spec.name or f"wasm:{spec.module}:{spec.path}",
                auth=spec.requirement(),
                summary=f"WebAssembly module '{spec.module}' ({kind}{', ' + spec.function if spec.function else ''})",
                tags=("wasm", *spec.tags),
                responses={200: COMPUTE_RESULT} if kind == "compute" and module.compute_body != "bytes" else {},  # http and wasi modules answer anything
            )
        )
    return routes


def _http_endpoint(loader: ModuleLoader, module: str, withheld: Callable[[], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request, withheld())
        async with request.cancelled_on_disconnect():
            result = await loader.handle_http(module, wreq)
        return kernel_response(result)

    return endpoint


def _wasi_endpoint(loader: ModuleLoader, module: str, route: str, withheld: Callable[[], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request, withheld())
        host = (request.headers.get("host") or "localhost").rsplit(":", 1)
        server = request.scope.get("server") or ("localhost", 80)
        env = cgi_env(wreq, route, server_name=host[0], server_port=str(server[1]))
        async with request.cancelled_on_disconnect():
            result = await loader.run_wasi(module, wreq, env)
        return kernel_response(result)

    return endpoint


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def _number(name: str, value: object) -> int | float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    match = _NUMBER.fullmatch(text)
    if match is None or len(text) > 40:
        raise BadRequest(f"path parameter {name!r} must be a number")
    return int(text) if match.group(1) is None and match.group(2) is None else float(text)


def _body_endpoint(loader: ModuleLoader, module: ModuleSpec, function: str) -> Callable[[Request], Awaitable[Response]]:
    """Call `function(ptr, len)` on the request body: the bytes it returns, or its integer result as unsigned."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        async with request.cancelled_on_disconnect():
            if module.compute_body == "bytes":
                return Response(await loader.call_bytes(module.name, function, body), headers=[("content-type", module.content_type)])
            result = await loader.call(module.name, function, ArrayIn(body), len(body))
        info = next(info for info in loader.modules() if info.name == module.name)
        bits = 32 if next(found for found in info.signatures if found[0] == function)[2] == ("i32",) else 64
        return JSONResponse({"value": int(result.value or 0) % (1 << bits)})

    return endpoint


def _compute_endpoint(loader: ModuleLoader, module: str, function: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        args = [_number(name, value) for name, value in request.path_params.items()]
        async with request.cancelled_on_disconnect():
            result = await loader.call(module, function, *args)
        return JSONResponse({"value": result.value})

    return endpoint
