"""Assembling applications from registries: plugin errors, ordering, tracing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from tests.plugins_for_tests import Demo, FailingStartup, Tagger
from wasmkernel import Application, PluginLoadError, RegistryError, StartupError
from wasmkernel.registry import load_registry
from wasmkernel.testing import app_from, running


def test_each_application_has_its_own_plugin_manager() -> None:
    first = app_from({"router": {}, "health": {}})
    second = app_from({"router": {}})
    assert first.hooks.manager is not second.hooks.manager
    assert {route.path for route in first.routes} == {"/health", "/healthz", "/readyz"}
    assert second.routes == []


def test_route_owner_is_recorded() -> None:
    app = app_from({"router": {}, "health": {}, "demo": {}}, extra_plugins={"demo": Demo()})
    owners = {route.path: route.owner for route in app.routes}
    assert owners["/health"] == "health"
    assert owners["/echo"] == "demo"


def test_plugin_enabled_but_not_installed(tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.no-such-plugin]\n")
    with pytest.raises(PluginLoadError, match=r"plugin 'no-such-plugin' is enabled in .*registry.toml but not installed; install it with: pip install"):
        Application.assemble(load_registry(registry))


def test_bad_plugin_config_names_file_plugin_and_key(tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.logging.config]\nformat = 'xml'\n")
    with pytest.raises(RegistryError, match=r"registry.toml: \[plugins.logging\] config.format: expected one of 'json', 'console', got 'xml'"):
        Application.assemble(load_registry(registry))
    registry.write_text("[plugins.logging.config]\ncolour = true\n")
    with pytest.raises(RegistryError, match=r"\[plugins.logging\] config: unknown key\(s\): colour \(allowed: format, level, stream\)"):
        Application.assemble(load_registry(registry))


def test_plugin_raising_while_loading_is_named() -> None:
    class Broken:
        from wasmkernel import hookimpl

        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[object]:
            raise ValueError("bad table")

    with pytest.raises(PluginLoadError, match=r"plugin 'broken' failed in wasmkernel_routes: ValueError: bad table"):
        app_from({"router": {}, "broken": {}}, extra_plugins={"broken": Broken()})


def test_conflicting_routes_name_both_owners() -> None:
    with pytest.raises(StartupError, match=r"conflicting routes: GET /echo of plugin 'second' and GET /echo of plugin 'first'"):
        app_from({"router": {}, "first": {}, "second": {}}, extra_plugins={"first": Demo(), "second": Demo()})


def test_middleware_order_follows_the_registry() -> None:
    plugins = {"router": {}, "a": {"after": ["b"]}, "b": {}, "demo": {}}
    app = app_from(plugins, extra_plugins={"a": Tagger("a"), "b": Tagger("b"), "demo": Demo()})
    assert [m.owner for m in app.middleware] == ["b", "a"]


async def test_outermost_middleware_sees_the_response_last() -> None:
    plugins = {"router": {}, "a": {"after": ["b"]}, "b": {}, "demo": {}}
    app = app_from(plugins, extra_plugins={"a": Tagger("a"), "b": Tagger("b"), "demo": Demo()})
    async with running(app) as client:
        response = await client.get("/text")
    assert response.headers.get_list("x-order") == ["a", "b"]


async def test_startup_and_shutdown_hooks_run() -> None:
    demo = Demo()
    app = app_from({"router": {}, "demo": {}}, extra_plugins={"demo": demo})
    async with running(app):
        assert demo.started and app.ready
    assert demo.stopped and not app.ready


async def test_failing_startup_stops_with_the_plugin_name() -> None:
    app = app_from({"router": {}, "fragile": {}}, extra_plugins={"fragile": FailingStartup()})
    with pytest.raises(PluginLoadError, match=r"plugin 'fragile' failed to start: ConnectionError: database unreachable"):
        async with running(app):
            pass


async def test_optional_plugin_failing_is_skipped_and_its_routes_answer_503() -> None:
    plugins = {"router": {}, "health": {}, "fragile": {"optional": True}}
    app = app_from(plugins, extra_plugins={"fragile": FailingStartup()})
    with structlog.testing.capture_logs() as logs:
        async with running(app) as client:
            fragile = await client.get("/fragile")
            health = await client.get("/health")
            ready = await client.get("/readyz")
    assert fragile.status_code == 503
    assert "database unreachable" in fragile.json()["detail"]
    assert health.status_code == 200
    assert ready.json()["failed_plugins"] == {"fragile": "ConnectionError: database unreachable"}
    assert any(entry["event"] == "plugin.startup_failed" and entry["plugin"] == "fragile" for entry in logs)


def test_hook_tracing_switch(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WASMKERNEL_TRACE_HOOKS", "1")
    with structlog.testing.capture_logs() as logs:
        app_from({"router": {}, "health": {}})
    traced = [entry["trace"] for entry in logs if entry["event"] == "hook"]
    assert any("wasmkernel_routes" in line for line in traced)
    assert any("wasmkernel_router" in line for line in traced)
    assert logging.getLogger().level is not None
