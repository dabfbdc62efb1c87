"""Routes bound to HTTP-handler and WASI modules from the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kernel import Request, Response, Route
from wasmkernel_wasm import (
    ModuleLoader,
    WasmRequest,
    WasmResponse,
)
from wasmkernel_wasm.cgi import cgi_env
from wasmkernel_wasm.config import LoaderConfig


async def wasm_request(request: Request) -> WasmRequest:
    """The `WasmRequest` for a kernel request (route params as strings)."""
    return WasmRequest(
        method=request.method,
        path=request.path,
        query=request.query_string.decode("latin-1"),
        params=tuple((name, str(value)) for name, value in request.path_params.items()),
        headers=tuple((name.lower(), value) for name, value in request.headers),
        body=await request.body(),
    )


def _to_response(result: WasmResponse) -> Response:
    return Response(result.body, status=result.status, headers=list(result.headers))


def bind_routes(loader: ModuleLoader, config: LoaderConfig) -> list[Route]:
    """Kernel routes serving the configured http and wasi modules."""
    routes = []
    for spec in config.routes:
        kind = config.spec(spec.module).kind
        routes.append(
            Route(
                spec.path,
                _http_endpoint(loader, spec.module) if kind == "http" else _wasi_endpoint(loader, spec.module, spec.path),
                methods=tuple(spec.methods),
                name=spec.name or f"wasm:{spec.module}:{spec.path}",
                auth=spec.requirement(),
                summary=f"WebAssembly module '{spec.module}' ({kind})",
                tags=("wasm",),
            )
        )
    return routes


def _http_endpoint(loader: ModuleLoader, module: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _to_response(await loader.handle_http(module, await wasm_request(request)))

    return endpoint


def _wasi_endpoint(loader: ModuleLoader, module: str, route: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request)
        host = (request.headers.get("host") or "localhost").rsplit(":", 1)
        server = request.scope.get("server") or ("localhost", 80)
        env = cgi_env(wreq, route, server_name=host[0], server_port=str(server[1]))
        return _to_response(await loader.run_wasi(module, wreq, env))

    return endpoint
