"""The default plugin_registry.toml: it assembles, and every plugin in it can
be disabled without stopping the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernel import Application
from kernel.registry import load_registry, parse_registry
from kernel.testing import running
from tests.conftest import ROOT

DEFAULT = ROOT / "plugin_registry.toml"
NAMES = [entry.name for entry in load_registry(DEFAULT).plugins if entry.enabled]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMKERNEL_JWT_SECRET", "test-secret-" + "x" * 40)


def without(name: str) -> Application:
    registry = load_registry(DEFAULT)
    tables: dict[str, dict[str, Any]] = {
        entry.name: {
            "enabled": entry.enabled and entry.name != name,
            "order": entry.order,
            "before": list(entry.before),
            "after": list(entry.after),
            "config": dict(entry.config),
        }
        for entry in registry.plugins
    }
    return Application.assemble(parse_registry({"plugins": tables}, Path(DEFAULT)))


def test_the_default_registry_assembles() -> None:
    app = Application.assemble(load_registry(DEFAULT))
    assert {route.path for route in app.routes} >= {"/health", "/matmul", "/api/matmul", "/hello/{name}", "/metrics", "/openapi.json"}


@pytest.mark.parametrize("name", NAMES)
def test_any_plugin_can_be_disabled(name: str) -> None:
    app = without(name)
    assert name not in {plugin.name for plugin in app.plugins}
    assert all(route.owner != name for route in app.routes)


async def test_the_server_starts_without_the_module_loader() -> None:
    async with running(without("wasmer-loader")) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/matmul?n=2")).status_code == 503
