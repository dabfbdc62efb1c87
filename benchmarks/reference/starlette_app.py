"""Starlette served like WasmKernel (hypercorn, trio worker), bare and with the
middleware a user adds to match WasmKernel's default chain.

    python -m hypercorn --worker-class trio --bind 127.0.0.1:$PORT benchmarks.reference.starlette_app:bare
    python -m hypercorn --worker-class trio --bind 127.0.0.1:$PORT benchmarks.reference.starlette_app:full

``bare``: `GET /hello`, `POST /api/matmul` (JSON body, no auth, no schema).
``full``: request id, Prometheus metrics (+ `GET /metrics`), CORS, gzip, JWT
bearer auth (Starlette's AuthenticationMiddleware + ``@requires`` scope
check), the body checked against WasmKernel's JSON Schema (jsonschema).
"""

from __future__ import annotations

from typing import Any

import jsonschema
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from benchmarks.reference.stack import BODY_SCHEMA, SCOPE, PrometheusMiddleware, RequestIdMiddleware, TokenError, metrics_endpoint, multiply, scopes_of, secret

_VALIDATOR = jsonschema.Draft202012Validator(BODY_SCHEMA)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _product(request: Request, validate: bool) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(422, "body is not JSON")
    if validate:
        errors = [{"pointer": "/" + "/".join(map(str, e.absolute_path)), "message": e.message} for e in _VALIDATOR.iter_errors(body)]
        if errors:
            return _error(422, "invalid body", errors=errors[:20])
    elif not isinstance(body, dict) or "a" not in body or "b" not in body:
        return _error(422, "body must be {a, b}")
    try:
        c = multiply(body["a"], body["b"])
    except (TypeError, IndexError):  # only the bare app gets here with a malformed body
        return _error(422, "a and b must be matrices of numbers")
    return _error(422, c) if isinstance(c, str) else JSONResponse({"c": c})


async def api_matmul_bare(request: Request) -> Response:
    return await _product(request, validate=False)


@requires(SCOPE)
async def api_matmul_full(request: Request) -> Response:
    return await _product(request, validate=True)


class JWTBackend(AuthenticationBackend):
    def __init__(self) -> None:
        self.key = secret()

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        if "authorization" not in conn.headers:
            return None
        try:
            subject, granted = scopes_of(conn.headers["authorization"], self.key)
        except TokenError as exc:
            raise AuthenticationError(str(exc)) from None
        return AuthCredentials(sorted(granted)), SimpleUser(subject)


def _unauthorized(conn: HTTPConnection, exc: Exception) -> Response:
    return _error(401, str(exc))


def build_full() -> Starlette:
    registry = CollectorRegistry()
    return Starlette(
        routes=[Route("/hello", hello), Route("/api/matmul", api_matmul_full, methods=["POST"]), Mount("/metrics", metrics_endpoint(registry))],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(PrometheusMiddleware, registry=registry),
            Middleware(CORSMiddleware, allow_origins=[]),
            Middleware(GZipMiddleware, minimum_size=500),
            Middleware(AuthenticationMiddleware, backend=JWTBackend(), on_error=_unauthorized),
        ],
    )


bare = Starlette(routes=[Route("/hello", hello), Route("/api/matmul", api_matmul_bare, methods=["POST"])])
full = build_full()
