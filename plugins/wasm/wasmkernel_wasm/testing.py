"""Fixtures shared by the module-loader test suites: a pytest plugin (entry
point ``pytest11`` of `wasmkernel-wasm`), so tests take them as arguments.

The suites of the host and its triggers run against every installed loader
plugin (`loader_name` is parametrized over `LOADERS`); a loader plugin's own
tests define `loader_name` as itself. The guest modules are found under the
project's root (`wasmkernel.testing.project_root`): ``wasm_modules/dist``.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from wasmkernel import Application
from wasmkernel.testing import app_from, project_root
from wasmkernel_wasm import MODULE_LOADER, ModuleLoader
from wasmkernel_wasm.config import ModuleTable

#: The keys of the host's module table (``[plugins.wasm.config]``).
TABLE_KEYS = frozenset(field.name for field in attrs.fields(ModuleTable))
#: The keys configured in a trigger plugin's section: key → plugin.
TRIGGER_KEYS = {"routes": "wasm-http", "filters": "wasm-filters"}

MODULES = ("matmul", "hello", "wagi_echo", "faults", "hostcalls", "c_forward", "c_numbers")
LOADERS = ["wasmer-loader", "wasmtime-loader"]


def modules_dir() -> Path:
    """Where `wasm_modules/build.sh` puts the guest modules."""
    return project_root() / "wasm_modules" / "dist"


def __getattr__(name: str) -> Path:
    """`ROOT` and `DIST`, as earlier versions had them (looked up when used)."""
    if name == "ROOT":
        return project_root()
    if name == "DIST":
        return modules_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def unavailable(loader: str) -> str | None:
    """Why the loader plugin `loader` cannot run here, or None if it can."""
    entry = {ep.name: ep for ep in importlib.metadata.entry_points(group="wasmkernel.plugins")}.get(loader)
    if entry is None:
        return f"{loader} is not installed"
    try:
        entry.load()
    except ImportError as exc:  # e.g. wasmer's stub wheel on Python 3.11+
        return f"{loader} cannot be imported: {exc}"
    return None


def use_loader(name: str) -> str:
    """`name`, or skip the test when that loader cannot run here."""
    reason = unavailable(name)
    if reason is not None:
        pytest.skip(reason)
    return name


@pytest.fixture(scope="session")
def dist() -> Path:
    """The built guest modules (built once with wasm_modules/build.sh if missing)."""
    dist = modules_dir()
    if not all((dist / f"{name}.wasm").is_file() for name in MODULES):
        if shutil.which("bash") is None:
            pytest.skip("bash is needed to build the guest modules")
        result = subprocess.run(["bash", str(project_root() / "wasm_modules" / "build.sh")], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"guest modules cannot be built (no Rust wasm32 target?): {result.stderr.strip()[-300:]}")
    return dist


def base_config(dist: Path, cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Every guest module, hot reload off; time limits no loaded machine
    reaches by accident (a test of time limits sets its own)."""
    config: dict[str, Any] = {
        "cache_dir": str(cache_dir),
        "workers": 2,
        "default_timeout": 30.0,
        "watch": False,
        "modules": [
            {"name": "matmul", "path": str(dist / "matmul.wasm")},
            {"name": "hello", "path": str(dist / "hello.wasm"), "kind": "http"},
            {"name": "faults", "path": str(dist / "faults.wasm"), "kind": "http", "timeout": 30.0},
            {"name": "wagi", "path": str(dist / "wagi_echo.wasm"), "kind": "wasi"},
        ],
        "routes": [
            {"path": "/hello/{name}", "module": "hello"},
            {"path": "/faults/{what}", "module": "faults"},
            {"path": "/wagi/{rest:path}", "module": "wagi", "methods": ["GET", "POST"]},
        ],
    }
    config.update(overrides)
    return config


@pytest.fixture
def config(dist: Path, tmp_path: Path) -> dict[str, Any]:
    return base_config(dist, tmp_path / "cache")


def wasm_plugins(loader: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The registry's plugin tables for a flat `config` (engine settings,
    module table and triggers together, as `base_config` makes it): the module
    table under ``wasm``, the routes under ``wasm-http`` and the filters
    under ``wasm-filters`` (`TRIGGER_KEYS`), the engine settings under the loader `loader`."""
    table = {key: value for key, value in config.items() if key in TABLE_KEYS}
    engine = {key: value for key, value in config.items() if key not in TABLE_KEYS and key not in TRIGGER_KEYS}
    triggers = {plugin: {"config": {key: config[key]}} for key, plugin in TRIGGER_KEYS.items() if key in config}
    return {"wasm": {"config": table}, **triggers, loader: {"config": engine}}


def module_tables(plugins: Mapping[str, Any]) -> dict[str, Any]:
    """The flat module table and triggers (as `wasm_plugins` takes them) of a
    registry's ``plugins`` tables: ``wasm``'s config and the trigger plugins' keys."""
    flat = dict(plugins.get("wasm", {}).get("config", {}))
    for key, plugin in TRIGGER_KEYS.items():
        flat[key] = list(plugins.get(plugin, {}).get("config", {}).get(key, []))
    return flat


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    """Each loader plugin in turn (skipped where one cannot run): the suites
    that run against every loader; a loader plugin's own tests override it."""
    return use_loader(str(request.param))


@pytest.fixture
def make_app(loader_name: str) -> Any:
    def make(config: Mapping[str, Any]) -> Application:
        return app_from({"router": {}, **wasm_plugins(loader_name, config)})

    return make


def loader_of(app: Application) -> ModuleLoader:
    """The application's module loader (the `MODULE_LOADER` service)."""
    return app.services.get(MODULE_LOADER, needed_by="tests")
