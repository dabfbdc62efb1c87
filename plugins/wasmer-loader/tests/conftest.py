"""Fixtures shared by the loader test suite.

The suite is written against `kernel.wasm.ModuleLoader` and the shared config
in `kernel.wasm_abi`, so another loader plugin runs it by adding its name to
`LOADERS`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kernel.app import Application
from kernel.testing import app_from

ROOT = Path(__file__).resolve().parents[3]
DIST = ROOT / "wasm_modules" / "dist"
MODULES = ("matmul", "hello", "wagi_echo", "faults")
LOADERS = ["wasmer-loader"]


@pytest.fixture(scope="session")
def dist() -> Path:
    """The built guest modules (built once with wasm_modules/build.sh if missing)."""
    if not all((DIST / f"{name}.wasm").is_file() for name in MODULES):
        if shutil.which("bash") is None:
            pytest.skip("bash is needed to build the guest modules")
        result = subprocess.run(["bash", str(ROOT / "wasm_modules" / "build.sh")], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"guest modules cannot be built (no Rust wasm32 target?): {result.stderr.strip()[-300:]}")
    return DIST


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def base_config(dist: Path, cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cache_dir": str(cache_dir),
        "workers": 2,
        "default_timeout": 5.0,
        "watch": False,
        "modules": [
            {"name": "matmul", "path": str(dist / "matmul.wasm")},
            {"name": "hello", "path": str(dist / "hello.wasm"), "kind": "http"},
            {"name": "faults", "path": str(dist / "faults.wasm"), "kind": "http", "timeout": 1.0},
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


@pytest.fixture
def make_app(loader_name: str) -> Any:
    def make(config: Mapping[str, Any]) -> Application:
        return app_from({"router": {}, loader_name: {"config": dict(config)}})

    return make
