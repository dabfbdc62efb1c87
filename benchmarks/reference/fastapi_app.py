"""FastAPI served like WasmKernel (hypercorn, trio worker: FastAPI runs on trio
through anyio), bare and with the middleware a user adds to match WasmKernel's
default chain.

    python -m hypercorn --worker-class trio --bind 127.0.0.1:$PORT benchmarks.reference.fastapi_app:bare
    python -m hypercorn --worker-class trio --bind 127.0.0.1:$PORT benchmarks.reference.fastapi_app:full

Both validate `POST /api/matmul`'s body with a pydantic model (that is how
FastAPI takes a body). ``full`` adds request id, Prometheus metrics (+ `GET
/metrics`), CORS, gzip and a JWT bearer dependency with a scope check
(``Security(..., scopes=[...])``). Handlers are ``async def`` (no threadpool).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

from benchmarks.reference.stack import MAX_DIM, SCOPE, PrometheusMiddleware, RequestIdMiddleware, TokenError, metrics_endpoint, multiply, scopes_of, secret

Row = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1, max_length=MAX_DIM)]
Matrix = Annotated[list[Row], Field(min_length=1, max_length=MAX_DIM)]


class Operands(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: Matrix
    b: Matrix


def _product(body: Operands) -> dict[str, Any]:
    c = multiply(body.a, body.b)
    if isinstance(c, str):
        raise HTTPException(422, c)
    return {"c": c}


bearer = HTTPBearer()


@functools.cache
def _key() -> str:
    return secret()


async def claims(security: SecurityScopes, credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> str:
    """The bearer token's subject, once its signature, expiry and scopes are checked."""
    try:
        subject, granted = scopes_of(f"Bearer {credentials.credentials}", _key())
    except TokenError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    missing = set(security.scopes) - granted
    if missing:
        raise HTTPException(403, f"missing scope {' '.join(sorted(missing))}")
    return subject


def build(full: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/hello", response_class=PlainTextResponse)
    async def hello() -> str:
        return "Hello, world!"

    if not full:

        @app.post("/api/matmul")
        async def api_matmul_bare(body: Operands) -> dict[str, Any]:
            return _product(body)

        return app

    _key()  # a missing secret stops the start, not the first request

    @app.post("/api/matmul")
    async def api_matmul(body: Operands, subject: Annotated[str, Security(claims, scopes=[SCOPE])]) -> dict[str, Any]:
        return _product(body)

    registry = CollectorRegistry()
    app.mount("/metrics", metrics_endpoint(registry))
    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(CORSMiddleware, allow_origins=[])
    app.add_middleware(PrometheusMiddleware, registry=registry)
    app.add_middleware(RequestIdMiddleware)
    return app


bare = build(full=False)
full = build(full=True)
