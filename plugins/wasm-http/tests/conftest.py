"""Runs the loader-agnostic suite once per loader plugin (skipped where one cannot run)."""

from __future__ import annotations

import pytest
from wasmkernel_wasm.testing import LOADERS, config, dist, make_app, use_loader

__all__ = ["config", "dist", "make_app"]


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return str(use_loader(str(request.param)))
