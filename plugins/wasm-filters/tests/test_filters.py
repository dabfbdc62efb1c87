"""Filter modules (kind = "filter") in the middleware chain, on every loader, over HTTP."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import wasm_plugins

from wasmkernel import Application, RegistryError, Request, Route, StartupError, WebSocket, hookimpl
from wasmkernel.testing import WebSocketDenied, app_from, running, websocket_connect

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
    return app_from({"request-id": {}, "errors": {}, "router": {}, **wasm_plugins(loader_name, config)})


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


class WebSocketRoutes:
    """A WebSocket echo route and two placeholder routes beside the loader's."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def echo(ws: WebSocket) -> None:
            await ws.accept()
            await ws.send_text(await ws.receive_text())

        async def where(request: Request) -> dict[str, Any]:
            return dict(request.path_params)

        return [
            Route("/ruled/ws", echo, websocket=True, name="ruled-ws"),
            Route("/pp/{section}/{x}", where, name="pp-two"),
            Route("/files/{rest:path}", where, name="files"),
        ]


def with_routes(loader_name: str, config: dict[str, Any]) -> Application:
    return app_from({"request-id": {}, "errors": {}, "router": {}, "t": {}, **wasm_plugins(loader_name, config)}, extra_plugins={"t": WebSocketRoutes()})


async def test_a_filter_guards_a_websocket_handshake_without_taking_its_messages(loader_name: str, dist: Path, tmp_path: Path) -> None:
    """Issue 22 class 11: the handshake of a WebSocket route a filter selects
    completes (the filter reads nothing from the connection), and a refusal is a denial."""
    app = with_routes(loader_name, filters_config(dist, tmp_path / "cache"))
    async with running(app):
        with trio.fail_after(30):  # a hang detector: the handshake used to wait forever
            async with websocket_connect(app, "/ruled/ws", headers={"user-agent": "friendly"}) as ws:
                await ws.send("hi")
                assert await ws.receive() == "hi"
            with pytest.raises(WebSocketDenied) as denied:
                async with websocket_connect(app, "/ruled/ws", headers={"user-agent": "badbot"}):
                    pass
        assert denied.value.status == 403


def test_a_body_filter_cannot_select_a_websocket_route(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = filters_config(dist, tmp_path / "cache")
    config["filters"][0] = {"module": "sign", "prefixes": ["/ruled"], "body": True}
    with pytest.raises(StartupError, match=r"filters\[0\].*body = true but selects WebSocket route 'ruled-ws'"):
        with_routes(loader_name, config)


@pytest.mark.parametrize(
    ("prefix", "path", "guarded"),
    [
        ("/pp/admin", "/pp/admin/x", True),
        ("/pp/admin", "/pp/public/x", False),
        ("/pp/admin/x", "/pp/admin/x", True),
        ("/files/secret", "/files/secret/a/b", True),
        ("/files/secret", "/files//secret/a", True),
        ("/files/secret", "/files/./secret/a", True),
        ("/files/secret", "/files/other/../secret/a", True),
        ("/files/secret", "/files/secretly", False),
    ],
)
async def test_a_prefix_guards_every_route_that_can_serve_under_it(loader_name: str, dist: Path, tmp_path: Path, prefix: str, path: str, guarded: bool) -> None:
    """`prefixes = ["/pp/admin"]` guards `/pp/{section}/{x}` when section is
    admin, and `{rest:path}` routes for any path that resolves under it."""
    config = filters_config(dist, tmp_path / "cache")
    config["filters"][1] = {"module": "rule", "prefixes": [prefix]}
    async with running(with_routes(loader_name, config)) as client:
        answer = await client.get(path, headers={"user-agent": "badbot"})
    assert answer.status_code == (403 if guarded else 200), answer.text


@pytest.mark.parametrize(
    ("selection", "named"),
    [
        ({"routes": ["signed", "sigend"]}, "routes: 'sigend'"),
        ({"tags": ["nothing-has-this"]}, "tags: 'nothing-has-this'"),
        ({"prefixes": ["/nowhere"]}, "prefixes: '/nowhere'"),
    ],
)
def test_a_selector_that_selects_nothing_stops_startup(loader_name: str, dist: Path, tmp_path: Path, selection: dict[str, Any], named: str) -> None:
    """Issue 27 item 7: a typo in a route name must not leave a security filter off."""
    config = filters_config(dist, tmp_path / "cache")
    config["filters"][1] = {"module": "rule", **selection}
    with pytest.raises(StartupError, match=rf"plugins.wasm-filters.config.filters\[1\] \(filter module 'rule'\) selects no route with {named}"):
        make(loader_name, config)
    config["filters"][1]["allow_unused"] = True
    with capture_logs() as logs:
        make(loader_name, config)
    assert any(entry["event"] == "wasm.filter_unused" and named in entry["selectors"] for entry in logs)


def test_wasmkernel_check_refuses_a_filter_that_selects_nothing(loader_name: str, dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 27 item 7: `wasmkernel check` fails as startup would (a typo in a route name)."""
    from wasmkernel.cli import main

    registry = tmp_path / "registry.toml"
    registry.write_text(
        f"""
[plugins.router]
[plugins.{loader_name}.config]
cache_dir = "{tmp_path / "cache"}"
watch = false
[[plugins.wasm.config.modules]]
name = "hc"
path = "{dist / "hostcalls.wasm"}"
kind = "http"
[[plugins.wasm.config.modules]]
name = "rule"
path = "{dist / "header_rule.wasm"}"
kind = "filter"
[[plugins.wasm-http.config.routes]]
path = "/x/{{op}}"
module = "hc"
name = "links-create"
[[plugins.wasm-filters.config.filters]]
module = "rule"
routes = ["links-craete"]
"""
    )
    assert main(["check", "--registry", str(registry)]) == 1
    assert "selects no route with routes: 'links-craete'" in capsys.readouterr().err
