"""Malformed or oversized input that reached a 500 (or was accepted) before:
JSON nested 100 000 deep, a 401-digit integer in a matrix, `exp` as a
string or 1e30, a 60 KB path in the access log, `/metrics` open to anyone,
anonymous `GET /matmul` with a huge n."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import base_config, dist, use_loader, wasm_plugins

from wasmkernel import Application, AuthRequirement, Request, Route, hookimpl
from wasmkernel.errors import StartupError
from wasmkernel.testing import app_from, running

__all__ = ["dist"]

SECRET = "s" * 64
API_KEY = "bounds-test-key-0123456789"
WEAK_KEY = "bounds-weak-key-0123456789"


class Echo:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def echo(request: Request) -> Any:
            return {"got": type(await request.json()).__name__}

        return [Route("/echo", echo, methods=("POST",)), Route("/long/{rest:path}", echo, methods=("POST",))]


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, '{"a":' * 100_000, "[" * 65 + "]" * 65, '{"a":' * 20_000 + "1" + "}" * 20_000],
    ids=["arrays", "objects", "65-deep", "closed-20000-deep"],
)
async def test_deep_json_is_400(body: str) -> None:
    async with running(app_from({"router": {}, "t": {}}, {"t": Echo()})) as client:
        response = await client.post("/echo", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert "nested deeper" in response.json()["detail"]
        shallow = await client.post("/echo", content='["[[[[", ' + "[" * 60 + "]" * 60 + "]")
        assert shallow.json() == {"got": "list"}


def jwt_token(**claims: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "ann", "scope": "matrix:compute", "iat": now, "exp": now + 300, **claims}, SECRET, algorithm="HS256")


def matmul_app(loader: str, dist: Path, cache: Path) -> Application:
    return app_from(
        {
            "router": {},
            "auth-jwt": {"config": {"secret": SECRET}},
            "auth-apikey": {"config": {"key": [{"name": "ci", "key": API_KEY, "scopes": ["matrix:compute"]}, {"name": "weak", "key": WEAK_KEY}]}},
            "authz": {},
            "validation": {},
            **wasm_plugins(loader, base_config(dist, cache)),
            "matmul": {"config": {"public_max_n": 10, "max_n": 40}},
        }
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bounds-cache")


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmer-loader"))


async def test_anonymous_matmul_is_bounded(loader_name: str, dist: Path, cache: Path) -> None:
    async with running(matmul_app(loader_name, dist, cache)) as client:
        assert (await client.get("/matmul?n=10")).status_code == 200
        anonymous = await client.get("/matmul?n=11")
        assert anonymous.status_code == 401 and "www-authenticate" in anonymous.headers
        assert (await client.get("/matmul?n=11", headers={"X-API-Key": WEAK_KEY})).status_code == 403
        assert (await client.get("/matmul?n=11", headers={"X-API-Key": "wrong-key-0123456789"})).status_code == 401
        assert (await client.get("/matmul?n=40", headers={"X-API-Key": API_KEY})).status_code == 200
        assert (await client.get("/matmul?n=40", headers={"Authorization": f"Bearer {jwt_token()}"})).status_code == 200
        assert (await client.get("/matmul?n=41", headers={"X-API-Key": API_KEY})).status_code == 422


@pytest.mark.parametrize("digits", [309, 401, 4000])
async def test_huge_integer_in_a_matrix_is_422(loader_name: str, dist: Path, cache: Path, digits: int) -> None:
    body = '{"a": [[1, %s]], "b": [[1], [2]]}' % ("9" * digits)
    async with running(matmul_app(loader_name, dist, cache)) as client:
        response = await client.post("/api/matmul", content=body, headers={"X-API-Key": API_KEY, "content-type": "application/json"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "claims",
    [{"exp": "9999999999"}, {"exp": 1e30}, {"exp": float("inf")}, {"exp": True}, {"nbf": "0"}, {"iat": 1e30}, {"exp": 10**30}],
    ids=["exp-string", "exp-1e30", "exp-inf", "exp-bool", "nbf-string", "iat-1e30", "exp-10**30"],
)
async def test_time_claims_must_be_numeric_dates(claims: dict[str, Any]) -> None:
    class Whoami:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            async def me(request: Request) -> dict[str, Any]:
                assert request.identity is not None
                return {"sub": request.identity.subject}

            return [Route("/me", me, auth=AuthRequirement())]

    app = app_from({"router": {}, "auth-jwt": {"config": {"secret": SECRET}}, "authz": {}, "t": {}}, {"t": Whoami()})
    async with running(app) as client:
        assert (await client.get("/me", headers={"Authorization": f"Bearer {jwt_token()}"})).status_code == 200
        try:
            bad = jwt_token(**claims)
        except (TypeError, ValueError, OverflowError):
            pytest.skip("PyJWT refuses to encode this claim")
        response = await client.get("/me", headers={"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401, response.text


async def test_access_log_truncates_long_fields() -> None:
    app = app_from({"access-log": {}, "router": {}, "t": {}}, {"t": Echo()})
    with capture_logs() as logs:
        async with running(app) as client:
            await client.post("/long/" + "a" * 60_000, content="1")
    lines = [entry for entry in logs if entry.get("event") == "request"]
    assert lines and len(lines[0]["path"]) < 1100 and lines[0]["path"].endswith("chars]")


async def test_metrics_can_be_restricted_to_networks() -> None:
    app = app_from({"metrics": {"config": {"allow_networks": ["10.0.0.0/8"]}}, "router": {}})
    async with running(app) as client:
        assert (await client.get("/metrics")).status_code == 403
    async with running(app, client=("10.1.2.3", 4000)) as client:
        assert (await client.get("/metrics")).status_code == 200


async def test_metrics_auth_needs_an_enforcer() -> None:
    with pytest.raises(StartupError, match="route 'metrics' of plugin 'metrics' declares auth checks no enabled plugin enforces: enable authz"):
        app_from({"metrics": {"config": {"require_auth": True}}, "router": {}})
