"""Routes bound to modules from the registry: HTTP handlers, WASI commands
and compute functions (route parameters as numbers, the result as JSON), and
the startup check of compute routes against the functions their modules export."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence

from wasmkernel_wasm import ArrayIn, ModuleInfo, ModuleLoader, WasmRequest
from wasmkernel_wasm.engine import ModuleSpec, ModuleTable, cgi_env, kernel_response

from wasmkernel import BadRequest, JSONResponse, PathPattern, Request, Response, ResponseSpec, Route, StartupError
from wasmkernel_wasm_http.config import RouteSpec

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


def bind_routes(loader: ModuleLoader, table: ModuleTable, specs: Iterable[RouteSpec], withheld: Callable[[str], frozenset[str]]) -> list[Route]:
    """Kernel routes serving `specs` with the modules of `table`; no module
    sees the request headers `withheld(module)` names."""
    routes = []
    for spec in specs:
        module = table.spec(spec.module)
        kind = module.kind
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


def _http_endpoint(loader: ModuleLoader, module: str, withheld: Callable[[str], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request, withheld(module))
        async with request.cancelled_on_disconnect():
            result = await loader.handle_http(module, wreq)
        return kernel_response(result)

    return endpoint


def _wasi_endpoint(loader: ModuleLoader, module: str, route: str, withheld: Callable[[str], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request, withheld(module))
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


def check_compute_routes(specs: Sequence[RouteSpec], table: ModuleTable, infos: Iterable[ModuleInfo], where: str) -> None:
    """`StartupError` for a compute route whose function the module does not
    export, or whose path parameters do not match its parameters (count,
    number types); `where` is the registry key of the routes (``{where}[i]``)."""
    by_name = {info.name: info for info in infos}
    for index, route in enumerate(specs):
        info = by_name.get(route.module)
        if info is None or info.kind != "compute":
            continue
        at = f"{where}[{index}] ({route.path})"
        signature = next((found for found in info.signatures if found[0] == route.function), None)
        if signature is None:
            raise StartupError(f"{at}: module '{route.module}' exports no function '{route.function}'")
        params = PathPattern.parse(route.path).params
        compute_body = table.spec(route.module).compute_body
        if compute_body:
            _check_body_signature(at, route.function, compute_body, signature, len(params))
            continue
        if len(params) != len(signature[1]) or not set(signature[1]) <= {"i32", "i64", "f32", "f64"}:
            raise StartupError(
                f"{at}: function '{route.function}' takes ({', '.join(signature[1])}); "
                f"a compute route passes its {len(params)} path parameter(s) as numbers, in order"
            )


_BODY_RESULTS = {"bytes": (("i64",),), "u64": (("i32",), ("i64",))}


def _check_body_signature(where: str, function: str, compute_body: str, signature: tuple[str, tuple[str, ...], tuple[str, ...]], params: int) -> None:
    """`StartupError` unless a `compute_body` route has no path parameters and
    `function` is (i32 ptr, i32 len) -> i64 packed ("bytes") or -> one integer ("u64")."""
    if params:
        raise StartupError(f"{where}: module with compute_body = {compute_body!r} gets the body, not path parameters: remove them")
    if signature[1] != ("i32", "i32") or signature[2] not in _BODY_RESULTS[compute_body]:
        expected = "(i32, i32) -> i64" if compute_body == "bytes" else "(i32, i32) -> i32 or i64"
        shape = f"({', '.join(signature[1])}) -> {', '.join(signature[2]) or 'nothing'}"
        raise StartupError(f"{where}: function '{function}' is {shape}; compute_body = {compute_body!r} needs {expected}")
