from __future__ import annotations

from typing import Any

import httpx
import pytest

from wasmkernel import Application, RegistryError, Request, Route, Unauthorized, hookimpl
from wasmkernel.testing import app_from, running

APP_ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example.net"


class Routes:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [Route("/data", self.data, methods=["GET", "PUT"]), Route("/private", self.private)]

    async def data(self, request: Request) -> dict[str, bool]:
        return {"ok": True}

    async def private(self, request: Request) -> None:
        raise Unauthorized("log in first", headers={"WWW-Authenticate": "Bearer"})


def make_app(**config: Any) -> Application:
    return app_from({"cors": {"config": config}, "router": {}, "t": {}}, extra_plugins={"t": Routes()})


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def preflight_headers(origin: str, method: str = "PUT", headers: str | None = None) -> dict[str, str]:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return sent


async def test_simple_request_from_listed_origin() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN], expose_headers=["X-Total"])) as client:
        response = await client.get("/data", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert cors_headers(response) == {"access-control-allow-origin": APP_ORIGIN, "access-control-expose-headers": "X-Total"}
    assert response.headers["vary"] == "Origin"


async def test_wildcard_without_credentials_sends_star_and_no_vary() -> None:
    async with running(make_app(allow_origins=["*"])) as client:
        response = await client.get("/data", headers={"Origin": EVIL_ORIGIN})
    assert cors_headers(response) == {"access-control-allow-origin": "*"}
    assert "vary" not in response.headers


async def test_credentials_echo_the_origin() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN], allow_credentials=True)) as client:
        response = await client.get("/data", headers={"Origin": APP_ORIGIN})
    assert cors_headers(response) == {"access-control-allow-origin": APP_ORIGIN, "access-control-allow-credentials": "true"}


async def test_disallowed_origin_gets_no_cors_headers() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN])) as client:
        response = await client.get("/data", headers={"Origin": EVIL_ORIGIN})
        without_origin = await client.get("/data")
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert response.headers["vary"] == "Origin"
    assert cors_headers(without_origin) == {}
    assert without_origin.headers["vary"] == "Origin"


async def test_preflight_is_answered_with_204() -> None:
    config = {"allow_origins": [APP_ORIGIN], "allow_methods": ["GET", "PUT"], "allow_headers": ["X-Token"], "max_age": 60}
    async with running(make_app(**config)) as client:
        response = await client.options("/data", headers=preflight_headers(APP_ORIGIN, "PUT", "x-token, content-type"))
    assert response.status_code == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": APP_ORIGIN,
        "access-control-allow-methods": "GET, PUT",
        "access-control-allow-headers": "accept, accept-language, content-language, content-type, x-token",
        "access-control-max-age": "60",
    }
    assert response.headers["vary"] == "Origin"
    assert "allow" not in response.headers


async def test_preflight_on_unknown_path_is_answered() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN])) as client:
        response = await client.options("/nowhere", headers=preflight_headers(APP_ORIGIN, "GET"))
        actual = await client.get("/nowhere", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 204
    assert actual.status_code == 404
    assert actual.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (preflight_headers(EVIL_ORIGIN, "PUT"), "origin"),
        (preflight_headers(APP_ORIGIN, "DELETE"), "method"),
        (preflight_headers(APP_ORIGIN, "PUT", "X-Secret"), "headers"),
    ],
)
async def test_disallowed_preflight_is_refused_without_cors_headers(headers: dict[str, str], reason: str) -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN], allow_methods=["GET", "PUT"])) as client:
        response = await client.options("/data", headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == f"Disallowed CORS {reason}"
    assert cors_headers(response) == {}


async def test_wildcard_methods_and_headers_echo_the_request() -> None:
    async with running(make_app(allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])) as client:
        response = await client.options("/data", headers=preflight_headers(APP_ORIGIN, "PATCH", "X-Anything"))
    assert cors_headers(response) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "PATCH",
        "access-control-allow-headers": "x-anything",
        "access-control-max-age": "600",
    }


async def test_plain_options_reaches_the_router() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN])) as client:
        response = await client.options("/data", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_errors_carry_cors_headers() -> None:
    async with running(make_app(allow_origins=[APP_ORIGIN], allow_credentials=True)) as client:
        response = await client.get("/private", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert cors_headers(response) == {"access-control-allow-origin": APP_ORIGIN, "access-control-allow-credentials": "true"}
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"allow_origins": ["*"], "allow_credentials": True}, "allow_credentials"),
        ({"allow_origins": ["https://app.example.com/"]}, "allow_origins"),
        ({"allow_origins": ["app.example.com"]}, "allow_origins"),
        ({"allow_headers": ["bad header"]}, "allow_headers"),
        ({"max_age": -1}, "max_age"),
    ],
)
def test_invalid_config_is_refused(config: dict[str, Any], key: str) -> None:
    with pytest.raises(RegistryError, match=key):
        make_app(**config)
