"""Credentials never reach guests (both loaders, both module kinds): no
module sees Authorization, Cookie, Proxy-Authorization, the API-key header
auth-apikey is configured with, or a header the registry marks secret,
unless its own entry grants it; a header name with an underscore never
overrides its dashed twin in the CGI environment; a NUL is a 400."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm.testing import DIST, LOADERS, base_config, dist, use_loader, wasm_plugins

from wasmkernel.testing import app_from, running

__all__ = ["dist"]

API_KEY = "guest-test-key-0123456789"
SECRET_HEADERS = {
    "Authorization": "Bearer secret-jwt",
    "Cookie": "session=secret-cookie",
    "Proxy-Authorization": "Basic secret-proxy",
    "X-Custom-Key": API_KEY,
    "X-Internal-Token": "secret-internal",
}


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return str(use_loader(str(request.param)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile cache for the module's apps (compiling is most of their startup)."""
    return tmp_path_factory.mktemp("guest-cache")


def make_app(loader: str, dist: Path, cache: Path) -> Any:
    config = base_config(dist, cache, secret_headers=["X-Internal-Token"])
    config["modules"] += [
        {"name": "mirror", "path": str(DIST / "mirror.wasm"), "kind": "http"},
        {"name": "mirror_granted", "path": str(DIST / "mirror.wasm"), "kind": "http", "grant_headers": ["x-internal-token", "Cookie"]},
        {"name": "wagi_granted", "path": str(dist / "wagi_echo.wasm"), "kind": "wasi", "grant_headers": ["X-Internal-Token"]},
    ]
    config["routes"] += [
        {"path": "/mirror", "module": "mirror"},
        {"path": "/mirror-granted", "module": "mirror_granted"},
        {"path": "/wagi-granted/{rest:path}", "module": "wagi_granted"},
    ]
    plugins = {
        "router": {},
        "auth-jwt": {"config": {"secret": "s" * 64}},
        "auth-apikey": {"config": {"keys": f"ci:{API_KEY}", "header": "X-Custom-Key"}},
        **wasm_plugins(loader, config),
    }
    return app_from(plugins)


def secrets_in(text: str) -> list[str]:
    return [value for value in SECRET_HEADERS.values() if value in text]


async def test_no_guest_sees_credentials(loader_name: str, dist: Path, cache: Path) -> None:
    async with running(make_app(loader_name, dist, cache)) as client:
        wagi = await client.get("/wagi/x?headers=1", headers={**SECRET_HEADERS, "X-Visible": "yes"})
        handler = await client.get("/mirror", headers={**SECRET_HEADERS, "X-Visible": "yes"})
    assert wagi.status_code == handler.status_code == 200
    assert "header.x-visible=yes" in wagi.text and "x-visible: yes" in handler.text
    assert secrets_in(wagi.text) == [] and secrets_in(handler.text) == []


async def test_a_module_sees_only_the_headers_its_entry_grants(loader_name: str, dist: Path, cache: Path) -> None:
    async with running(make_app(loader_name, dist, cache)) as client:
        wagi = await client.get("/wagi-granted/x?headers=1", headers=SECRET_HEADERS)
        handler = await client.get("/mirror-granted", headers=SECRET_HEADERS)
    assert secrets_in(wagi.text) == ["secret-internal"]
    assert sorted(secrets_in(handler.text)) == ["secret-internal", "session=secret-cookie"]


async def test_underscore_header_never_overrides_its_dashed_twin(loader_name: str, dist: Path, cache: Path) -> None:
    async with running(make_app(loader_name, dist, cache)) as client:
        both = await client.get("/wagi/x?headers=1", headers=[("X-Forwarded-For", "10.0.0.1"), ("X_Forwarded_For", "6.6.6.6")])
        alone = await client.get("/wagi/x?headers=1", headers=[("X_Forwarded_For", "6.6.6.6"), ("Client_IP", "6.6.6.6")])
    assert "header.x-forwarded-for=10.0.0.1" in both.text.splitlines() and "6.6.6.6" not in both.text
    assert "6.6.6.6" not in alone.text


@pytest.mark.parametrize("path", ["/wagi/a%00b", "/wagi/x?a=1"])
async def test_nul_in_a_wagi_request_is_400(loader_name: str, dist: Path, cache: Path, path: str) -> None:
    headers = {"X-Nul": "a\x00b"} if path.endswith("a=1") else {}
    async with running(make_app(loader_name, dist, cache)) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["detail"]
