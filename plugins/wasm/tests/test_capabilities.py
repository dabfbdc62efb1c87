"""Host capabilities as units contributed through hooks: the table, deny by default, pluggable key-value stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm.hostapi import GuestSide, HostCapabilities, KvBackendType, SingleStore
from wasmkernel_wasm.hostapi.capability import Capability, Granted
from wasmkernel_wasm.hostapi.kv import MemoryBackend
from wasmkernel_wasm.testing import wasm_plugins

from wasmkernel import Application, StartupError, hookimpl
from wasmkernel.testing import app_from, running


def hostcalls(dist: Path, cache: Path, **grants: Any) -> dict[str, Any]:
    """Module `hc` (hostcalls, granted `grants`) on /h/...."""
    return {
        "cache_dir": str(cache),
        "watch": False,
        "modules": [{"name": "hc", "path": str(dist / "hostcalls.wasm"), "kind": "http", **grants}],
        "routes": [
            {"path": "/h/{op}/{arg}", "module": "hc", "methods": ["GET", "PUT"]},
            {"path": "/h/{op}", "module": "hc", "methods": ["GET", "PUT"]},
        ],
    }


class Contributes:
    """A test plugin contributing host capabilities and key-value store types."""

    def __init__(self, capabilities: list[Capability] | None = None, stores: list[KvBackendType] | None = None) -> None:
        self.capabilities = capabilities or []
        self.stores = stores or []

    @hookimpl(optionalhook=True)
    def wasmkernel_host_capabilities(self, app: Application) -> list[Capability]:
        return self.capabilities

    @hookimpl(optionalhook=True)
    def wasmkernel_kv_backends(self, app: Application) -> list[KvBackendType]:
        return self.stores


def make(loader_name: str, config: dict[str, Any], extra: Contributes | None = None) -> Application:
    plugins = {"router": {}, **wasm_plugins(loader_name, config)}
    return app_from({**plugins, "extra": {}} if extra else plugins, {"extra": extra} if extra else None)


def test_a_grant_no_plugin_contributes_is_a_startup_error_naming_its_key() -> None:
    table = HostCapabilities.collect([("wasm", GuestSide("log")), ("wasm", GuestSide("vars"))])
    granted = Granted("hc", "plugins.wasm.config.modules[0]", {"allow": []})
    with pytest.raises(StartupError, match=r"plugins\.wasm\.config\.modules\[0\]\.http: no enabled plugin contributes the outbound HTTP capability"):
        table.capability(granted, "http")
    assert table.capability(granted, "log") == GuestSide("log")


def test_a_capability_the_abi_has_no_functions_for_is_refused() -> None:
    with pytest.raises(StartupError, match="plugin 'extra' contributes host capability 'sockets', which the host API has no functions for"):
        HostCapabilities.collect([("extra", GuestSide("sockets"))])


def test_two_plugins_contributing_one_capability_stop_startup(loader_name: str, dist: Path, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="plugins 'extra' and 'wasm' both contribute host capability 'log'"):
        make(loader_name, hostcalls(dist, tmp_path / "cache", log=True), Contributes(capabilities=[GuestSide("log")]))


def test_two_plugins_contributing_one_store_type_stop_startup(loader_name: str, dist: Path, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="plugins 'extra' and 'wasm' both contribute key-value backend 'sqlite'"):
        make(loader_name, hostcalls(dist, tmp_path / "cache"), Contributes(stores=[SingleStore("sqlite", lambda app, needed_by: MemoryBackend)]))


def test_redis_kv_without_the_redis_backend_plugin_names_the_key_and_the_plugin(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = hostcalls(dist, tmp_path / "cache", kv={"backend": "redis"})
    with pytest.raises(StartupError, match=r"plugins\.wasm\.config\.modules\[0\]\.kv\.backend: .*'redis': enable \[plugins\.wasm-kv-redis\]"):
        make(loader_name, config)


def test_an_unknown_store_type_names_the_key_and_the_enabled_ones(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = hostcalls(dist, tmp_path / "cache", kv={"backend": "etcd"})
    with pytest.raises(StartupError, match=r"modules\[0\]\.kv\.backend: no enabled plugin contributes key-value backend 'etcd' \(enabled: memory, sqlite\)"):
        make(loader_name, config)


def test_sqlite_without_a_path_names_the_key(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = hostcalls(dist, tmp_path / "cache", kv={"backend": "sqlite"})
    with pytest.raises(StartupError, match=r"needs kv\.path .*\(plugins\.wasm\.config\.modules\[0\]\.kv\)"):
        make(loader_name, config)


async def test_a_plugin_contributed_store_type_serves_a_module(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = hostcalls(dist, tmp_path / "cache", kv={"backend": "scratch"})
    async with running(make(loader_name, config, Contributes(stores=[SingleStore("scratch", lambda app, needed_by: MemoryBackend)]))) as client:
        assert (await client.put("/h/kv/k", content=b"stored")).status_code == 204
        assert (await client.get("/h/kv/k")).text == "stored"
        assert (await client.get("/h/kv/other")).status_code == 404
