"""Filter modules (kind = "filter") in the middleware chain, on every loader, over HTTP."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from wasmkernel import Application, RegistryError, Route, StartupError, WebSocket, hookimpl
from wasmkernel.testing import app_from, running

KEY = "filter-test-key"


def filters_config(dist: Path, cache: Path, rule_vars: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """`hc` (the hostcalls module) behind two filters: `sign` (HMAC over the body) on
    route name "signed", `rule` (header rule) on the prefix /ruled; /open is guarded by none."""
    config: dict[str, Any] = {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [
            {"name": "hc", "path": str(dist / "hostcalls.wasm"), "kind": "http"},
            {"name": "sign", "path": str(dist / "hmac_filter.wasm"), "kind": "filter", "log": True, "vars": {"key": KEY}},
            {
                "name": "rule",
                "path": str(dist / "header_rule.wasm"),
                "kind": "filter",
                "log": True,
                "vars": rule_vars if rule_vars is not None else {"header": "user-agent", "deny": "badbot,scanner", "strip_response": "x-drop-me"},
            },
        ],
        "routes": [
            {"path": "/signed/{op}", "module": "hc", "methods": ["POST"], "name": "signed"},
            {"path": "/ruled/{op}", "module": "hc", "methods": ["GET", "POST"]},
            {"path": "/open/{op}", "module": "hc", "methods": ["GET", "POST"]},
        ],
        "filters": [
            {"module": "sign", "routes": ["signed"], "body": True, "max_body_bytes": 1024},
            {"module": "rule", "prefixes": ["/ruled"]},
        ],
    }
    config.update(overrides)
    return config


def make(loader_name: str, config: dict[str, Any]) -> Application:
    return app_from({"request-id": {}, "errors": {}, "router": {}, loader_name: {"config": config}})


def signature(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


async def test_hmac_filter_guards_its_route_over_http(loader_name: str, dist: Path, tmp_path: Path) -> None:
    app = make(loader_name, filters_config(dist, tmp_path / "cache"))
    assert [link.name for link in app.middleware if link.name.startswith("wasm-filter:")] == ["wasm-filter:sign", "wasm-filter:rule"]
    async with running(app) as client:
        body = b'{"url": "https://example.com"}'
        missing = await client.post("/signed/headers", content=body)
        assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
        assert "missing x-signature" in missing.json()["detail"]
        with capture_logs() as logs:
            wrong = await client.post("/signed/headers", content=body, headers={"x-signature": signature(body + b"x")})
        assert wrong.status_code == 401
        assert any(entry["event"] == "wasm.guest_log" and entry["module"] == "sign" and entry["message"] == "signature mismatch" for entry in logs)
        good = await client.post("/signed/headers", content=body, headers={"x-signature": "sha256=" + signature(body)})
        assert good.status_code == 200
        seen = good.text.splitlines()
        assert "x-signature-verified: hmac-sha256" in seen  # the filter's request edits reach the handler
        assert not any(line.startswith("x-signature:") for line in seen)
        too_big = await client.post("/signed/headers", content=b"x" * 2000, headers={"x-signature": signature(b"x" * 2000)})
        assert too_big.status_code == 413


async def test_header_rule_filter_rejects_edits_and_elides(loader_name: str, dist: Path, tmp_path: Path) -> None:
    async with running(make(loader_name, filters_config(dist, tmp_path / "cache"))) as client:
        with capture_logs() as logs:
            denied = await client.get("/ruled/headers", headers={"user-agent": "BadBot/1.0"})
        assert denied.status_code == 403 and "denied value (badbot)" in denied.json()["detail"]
        assert any(entry["event"] == "wasm.guest_log" and entry["module"] == "rule" for entry in logs)
        passed = await client.get("/ruled/headers", headers={"user-agent": "friendly", "x-drop-me": "1"})
        assert passed.status_code == 200 and passed.headers["x-header-rule"] == "pass"
        unguarded = await client.get("/open/headers", headers={"user-agent": "BadBot/1.0"})
        assert unguarded.status_code == 200 and "x-header-rule" not in unguarded.headers
        # The signature filter selects only the route named "signed": /open takes no signature.
        assert (await client.post("/open/headers", content=b"unsigned")).status_code == 200


@pytest.mark.parametrize(
    ("rule_vars", "reason"),
    [
        ({"header": "x-client", "required": "true", "status": "99"}, "not a final HTTP status"),
        ({"strip_response": "bad name"}, "is not an HTTP token"),
        ({"strip_response": "content-length"}, "set by the server"),
        ({"strip_response": "connection"}, "connection-specific"),
    ],
)
async def test_unsendable_filter_output_is_a_502(loader_name: str, dist: Path, tmp_path: Path, rule_vars: dict[str, str], reason: str) -> None:
    async with running(make(loader_name, filters_config(dist, tmp_path / "cache", rule_vars=rule_vars))) as client:
        with capture_logs() as logs:
            response = await client.get("/ruled/headers")
        assert response.status_code == 502
        (line,) = [entry for entry in logs if entry["event"] == "wasm.bad_response"]
        assert line["module"] == "rule" and reason in line["reason"]
        assert (await client.get("/open/headers")).status_code == 200


def test_filter_entries_are_checked(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = filters_config(dist, tmp_path / "cache")
    config["filters"] = [{"module": "hc", "prefixes": ["/"]}]
    with pytest.raises(RegistryError, match=r"filters\[0\].module.*kind 'http'"):
        make(loader_name, config)
    config["filters"] = [{"module": "rule"}]
    with pytest.raises(RegistryError, match="select the routes"):
        make(loader_name, config)
    config["filters"] = []
    config["routes"] = [{"path": "/x", "module": "rule"}]
    with pytest.raises(RegistryError, match="is a filter module"):
        make(loader_name, config)


async def test_a_filter_module_must_export_on_request(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = filters_config(dist, tmp_path / "cache")
    config["modules"][2]["path"] = str(dist / "hello.wasm")
    with pytest.raises(StartupError, match=r"kind filter\) does not export on_request"):
        async with running(make(loader_name, config)):
            pass


async def test_a_filter_selecting_a_websocket_route_stops_startup(loader_name: str, dist: Path, tmp_path: Path) -> None:
    """Issue 27: a filter read the body of every route it selected, a
    WebSocket's too, which consumed ``websocket.connect``: the handshake hung.
    Filters are HTTP middleware (the kernel leaves them off WebSocket chains),
    so one selecting a WebSocket route would not guard it: startup stops."""

    class Chat:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            async def chat(ws: WebSocket) -> None:
                await ws.accept()

            return [Route("/ruled/chat", chat, websocket=True, name="chat")]

    plugins = {"request-id": {}, "errors": {}, "router": {}, loader_name: {"config": filters_config(dist, tmp_path / "cache")}, "chat": {}}
    with pytest.raises(StartupError, match="filter module 'rule' selects WebSocket route"):
        app_from(plugins, extra_plugins={"chat": Chat()})
