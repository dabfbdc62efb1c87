"""Fixtures of the component host's tests: an application serving given components."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wasmkernel import Application
from wasmkernel.testing import app_from

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile cache for the session (keyed by content: safe to share)."""
    return tmp_path_factory.mktemp("component-cache")


@pytest.fixture
def make_app(cache_dir: Path) -> Callable[..., Application]:
    """``make_app({"name": path, ...}, routes=[...], **settings)``: the components
    plugin serving those components (kind wasi-http unless a spec says otherwise),
    each on ``/<name>`` and everything under it (GET and POST) unless `routes` is given."""

    def make(components: dict[str, Any], routes: list[dict[str, Any]] | None = None, **settings: Any) -> Application:
        modules = [{"name": name, "path": str(value)} if not isinstance(value, dict) else {"name": name, **value} for name, value in components.items()]
        config = {
            "cache_dir": str(cache_dir),
            "default_timeout": 5.0,
            "modules": modules,
            "routes": routes if routes is not None else [{"prefix": f"/{name}", "module": name, "methods": ["GET", "POST"]} for name in components],
            **settings,
        }
        return app_from({"router": {}, "wasm": {}, "components": {"config": config}})

    return make
