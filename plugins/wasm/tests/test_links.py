"""The link shortener written as modules, as the default registry ships it, on every loader, over HTTP."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import module_tables, wasm_plugins

from wasmkernel import Application
from wasmkernel.testing import app_from, project_root, running

SECRET = "links-test-" + "s" * 40
KEY = "links-signing-key"


def shipped() -> dict[str, Any]:
    """The link shortener's modules, routes and filter from plugin_registry.toml."""
    with (project_root() / "plugin_registry.toml").open("rb") as file:
        host = module_tables(tomllib.load(file)["plugins"])
    modules = [spec for spec in host["modules"] if spec["name"] in ("links", "links_sign")]
    routes = [route for route in host["routes"] if route["module"] == "links"]
    filters = [entry for entry in host["filters"] if entry["module"] == "links_sign"]
    return {"modules": modules, "routes": routes, "filters": filters}


def links_config(tmp_path: Path, **kv: Any) -> dict[str, Any]:
    config = copy.deepcopy(shipped())
    for spec in config["modules"]:
        spec["path"] = str(project_root() / spec["path"])
        if "kv" in spec:
            spec["kv"].update(path=str(tmp_path / "data" / "links.sqlite3"), **kv)
    return {"cache_dir": str(tmp_path / "cache"), "workers": 2, "watch": False, **config}


def make(loader_name: str, config: dict[str, Any]) -> Application:
    return app_from(
        {
            "request-id": {},
            "errors": {},
            "authz": {},
            "auth-jwt": {"config": {"algorithms": ["HS256"], "secret": {"env": "LINKS_TEST_JWT"}, "scope_claim": "scope"}},
            "router": {},
            **wasm_plugins(loader_name, config),
        }
    )


def token(scope: str = "links:write") -> str:
    return jwt.encode({"sub": "ada", "scope": scope, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


def bearer(scope: str = "links:write") -> dict[str, str]:
    return {"authorization": f"Bearer {token(scope)}"}


def signed(body: bytes, scope: str = "links:write") -> dict[str, str]:
    signature = hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    return {"authorization": f"Bearer {token(scope)}", "x-signature": signature, "content-type": "application/json"}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch, dist: Path) -> None:
    monkeypatch.setenv("LINKS_TEST_JWT", SECRET)
    monkeypatch.setenv("WASMKERNEL_LINKS_KEY", KEY)


async def test_shorten_redirect_and_count_across_a_restart(loader_name: str, tmp_path: Path) -> None:
    config = links_config(tmp_path)
    body = json.dumps({"url": "https://example.com/a?b=c"}).encode()
    async with running(make(loader_name, config)) as client:
        assert (await client.post("/links", content=body)).status_code == 401  # authz: no token
        assert (await client.post("/links", content=body, headers=signed(body, scope="other"))).status_code == 403
        unsigned = await client.post("/links", content=body, headers={"authorization": f"Bearer {token()}"})
        assert unsigned.status_code == 401 and "x-signature" in unsigned.json()["detail"]  # the filter
        created = await client.post("/links", content=body, headers=signed(body))
        assert created.status_code == 201, created.text
        code = created.json()["code"]
        assert created.json()["url"] == "https://example.com/a?b=c" and len(code) == 8
        again = await client.post("/links", content=body, headers=signed(body))
        assert again.status_code == 201 and again.json()["code"] != code  # random codes: no oracle for "was this URL shortened?"
        with capture_logs() as logs:
            redirect = await client.get(f"/l/{code}")
        assert redirect.status_code == 302 and redirect.headers["location"] == "https://example.com/a?b=c"
        (line,) = [entry for entry in logs if entry["event"] == "wasm.guest_log" and entry["message"] == "redirect"]
        assert line["module"] == "links" and line["guest"]["code"] == code
        assert (await client.get(f"/links/{code}/stats")).status_code == 401  # stats are the creators'
        assert (await client.get(f"/links/{code}/stats", headers=bearer())).json() == {"code": code, "url": "https://example.com/a?b=c", "hits": 1}
        missing = await client.get("/l/nope123")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    async with running(make(loader_name, config)) as client:  # a restart: SQLite keeps links and hits
        assert (await client.get(f"/l/{code}")).status_code == 302
        assert (await client.get(f"/links/{code}/stats", headers=bearer())).json()["hits"] == 2


@pytest.mark.parametrize(
    ("url", "status", "detail"),
    [
        ("ftp://example.com/x", 422, 'URL scheme "ftp" is not allowed'),
        ("javascript://alert(1)", 422, "is not allowed"),
        ("https://", 422, "has no host"),
        ("https://exa mple.com", 422, "whitespace"),
        ("https://exa\u200bmple.com/", 422, "invisible"),
        ("https://example.com/\u2028x", 422, "whitespace"),
        ("https://bücher.example/x", 422, "host must be ASCII"),
        (5, 400, 'no string field "url"'),
    ],
)
async def test_bad_urls_are_problem_documents(loader_name: str, tmp_path: Path, url: Any, status: int, detail: str) -> None:
    body = json.dumps({"url": url}).encode()
    async with running(make(loader_name, links_config(tmp_path))) as client:
        response = await client.post("/links", content=body, headers=signed(body))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json" and detail in response.json()["detail"]


async def test_non_ascii_paths_are_percent_encoded_and_served(loader_name: str, tmp_path: Path) -> None:
    body = json.dumps({"url": "https://example.com/b\u00fccher?q=\u00e9"}).encode()
    async with running(make(loader_name, links_config(tmp_path))) as client:
        created = await client.post("/links", content=body, headers=signed(body))
        assert created.status_code == 201, created.text
        assert created.json()["url"] == "https://example.com/b%C3%BCcher?q=%C3%A9"
        redirect = await client.get(f"/l/{created.json()['code']}")
    assert redirect.status_code == 302 and redirect.headers["location"] == "https://example.com/b%C3%BCcher?q=%C3%A9"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"url": "https://a.example/", "url": "https://b.example/"}', "repeats a key"),
        (b'{"x": {"url": "https://a.example/"}}', 'no string field "url"'),
        (b'{"x": {"y": 1, "y": 2}, "url": "https://a.example/"}', "repeats a key"),
        (b'{"url": "https://a.example/"} trailing', "trailing"),
        (b'{"url": "https://a.example/\\ud800"}', "surrogate"),
        (b"[" * 100 + b"]" * 100, "nested too deeply"),
    ],
)
async def test_the_body_is_parsed_as_json_would_be(loader_name: str, tmp_path: Path, body: bytes, detail: str) -> None:
    """A signer (or any standard parser) and the module must agree on the URL: duplicates are refused."""
    async with running(make(loader_name, links_config(tmp_path))) as client:
        response = await client.post("/links", content=body, headers=signed(body))
    assert response.status_code == 400 and detail in response.json()["detail"], response.text


async def test_a_full_store_and_an_ungranted_store_fail_only_their_request(loader_name: str, tmp_path: Path) -> None:
    config = links_config(tmp_path, max_total_bytes=200)  # one link and its hit counter (each entry costs 64 bytes more), not two links
    first, second = (json.dumps({"url": f"https://example.com/{n}"}).encode() for n in ("one", "two-is-longer"))
    async with running(make(loader_name, config)) as client:
        created = await client.post("/links", content=first, headers=signed(first))
        assert created.status_code == 201
        with capture_logs() as logs:
            full = await client.post("/links", content=second, headers=signed(second))
        assert full.status_code == 507 and "max_total_bytes = 200" in full.json()["detail"]
        assert any(entry["event"] == "wasm.host_call_failed" and entry["module"] == "links" for entry in logs)
        assert (await client.get(f"/l/{created.json()['code']}")).status_code == 302
    del config["modules"][0]["kv"]
    async with running(make(loader_name, config)) as client:
        with capture_logs() as logs:
            denied = await client.get("/links/abc/stats", headers=bearer())
        assert denied.status_code == 500 and "refused" in denied.json()["detail"]
        (line,) = [entry for entry in logs if entry["event"] == "wasm.host_call_denied"]
        assert "not granted key-value" in line["reason"] and "kv = {" in line["reason"]
