"""What a user adds to a Starlette or FastAPI app to match WasmKernel's default
chain: request id, Prometheus metrics (pure ASGI middleware, as the usual
recipes write them), JWT bearer auth with a scope check, the JSON body's
schema, and the `POST /api/matmul` work itself ({a, b} → {c}).

CORS and gzip come from Starlette's own middleware (see the apps).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import jwt
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app

SECRET_ENV = "WASMKERNEL_JWT_SECRET"  # the benchmark runner sets it, as for WasmKernel
SCOPE = "matrix:compute"
MAX_DIM = 512

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

_MATRIX = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_DIM,
    "items": {"type": "array", "minItems": 1, "maxItems": MAX_DIM, "items": {"type": "number"}},
}
#: The same JSON Schema as WasmKernel's `POST /api/matmul`.
BODY_SCHEMA = {"type": "object", "required": ["a", "b"], "properties": {"a": _MATRIX, "b": _MATRIX}, "additionalProperties": False}


class RequestIdMiddleware:
    """Keep a sane incoming ``X-Request-ID`` or make one; echo it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class PrometheusMiddleware:
    """Count requests and time them by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
        self.duration = Histogram("http_request_duration_seconds", "HTTP request duration", ["method", "route"], registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.requests.labels(scope["method"], template, str(status)).inc()
            self.duration.labels(scope["method"], template).observe(time.perf_counter() - started)


def metrics_endpoint(registry: CollectorRegistry) -> ASGIApp:
    app: ASGIApp = make_asgi_app(registry)
    return app


class TokenError(Exception):
    """Missing, malformed, expired or wrongly signed bearer token."""


def secret() -> str:
    value = os.environ.get(SECRET_ENV)
    if not value:
        raise SystemExit(f"{SECRET_ENV} must hold the JWT secret")
    return value


def scopes_of(authorization: str | None, key: str) -> tuple[str, set[str]]:
    """(subject, granted scopes) of an ``Authorization: Bearer`` header."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise TokenError("bearer token required")
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]}, leeway=30)
    except jwt.InvalidTokenError as exc:
        raise TokenError(str(exc)) from None
    granted = claims.get("scope", "")
    return str(claims.get("sub", "")), set(granted.split() if isinstance(granted, str) else granted)


def multiply(a: list[list[float]], b: list[list[float]]) -> list[list[float]] | str:
    """A·B, or why the shapes do not fit."""
    cols = len(a[0])
    if any(len(row) != cols for row in a) or any(len(row) != len(b[0]) for row in b):
        return "rows must all have the same length"
    if len(b) != cols:
        return f"a has {cols} columns but b has {len(b)} rows"
    bt = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in bt] for row in a]
