"""Same-server framework peers (benchmarks/reference): Starlette and FastAPI on
WasmKernel's server (hypercorn, trio worker), bare and with the middleware
matching WasmKernel's default chain. `specs` gives their processes; `POST_BODY`
and `token` the authenticated JSON request they and WasmKernel answer."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import jwt

from benchmarks.reference.stack import SCOPE, SECRET_ENV

__all__ = ["POST_BODY", "POST_PATH", "SECRET_ENV", "specs", "token"]
from benchmarks.servers import ROOT, ProcessSpec

POST_PATH = "/api/matmul"
POST_BODY = {"a": [[1.0, 2.0], [3.0, 4.0]], "b": [[5.0, 6.0], [7.0, 8.0]]}

_APPS = (
    ("starlette-bare", "Starlette, no middleware", "starlette_app:bare"),
    ("starlette-full", "Starlette + request id, metrics, CORS, gzip, JWT scope check, JSON Schema", "starlette_app:full"),
    ("fastapi-trio-bare", "FastAPI, no middleware (pydantic body)", "fastapi_app:bare"),
    ("fastapi-trio-full", "FastAPI + request id, metrics, CORS, gzip, JWT scope check (Security), pydantic body", "fastapi_app:full"),
)


def specs(env: Mapping[str, str]) -> list[ProcessSpec]:
    """The four apps, each under `hypercorn --worker-class trio` with one worker, like `wasmkernel run`."""
    hypercorn = f"exec {sys.executable} -m hypercorn --worker-class trio --workers 1 --bind 127.0.0.1:$PORT"
    return [
        ProcessSpec(name, "Python", f"{framework} on hypercorn (trio worker)", ROOT, f"{hypercorn} benchmarks.reference.{app}", env=dict(env))
        for name, framework, app in _APPS
    ]


def token(env: Mapping[str, str], ttl: int = 3600) -> str:
    """A bearer token with the scope `POST /api/matmul` needs, signed with the run's secret."""
    claims = {"sub": "benchmark", "scope": SCOPE, "exp": int(time.time()) + ttl}
    return jwt.encode(claims, env[SECRET_ENV], algorithm="HS256")
