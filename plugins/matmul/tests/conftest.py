"""A stand-in module loader (numpy) so the plugin's HTTP behaviour is tested
without a WebAssembly runtime; the real loader is exercised in test_wasm.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from wasmkernel_wasm import ArrayIn, ArrayOut, CallResult, ModuleInfo, WasmRequest, WasmResponse

from wasmkernel import Application, hookimpl
from wasmkernel.testing import app_from


def bench_matrices(n: int) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]:
    idx = np.arange(n * n, dtype=np.int64).reshape(n, n)
    return (idx % 7) * 0.5, (idx % 5) * 0.25


class FakeLoader:
    """Implements `bench_checksum` and `matmul_fast` of the matmul module with numpy."""

    runtime = "fake"

    def __init__(self, exports: Sequence[str] = ("alloc", "dealloc", "bench_checksum", "matmul_fast", "matmul_naive")) -> None:
        self.exports = tuple(exports)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def modules(self) -> Sequence[ModuleInfo]:
        return [ModuleInfo("matmul", "compute", "matmul.wasm", 1, "0" * 64, self.exports, "fake", "none", 10.0, None)]

    async def call(self, module: str, function: str, *args: Any, timeout: float | None = None) -> CallResult:
        self.calls.append((function, args))
        if function == "bench_checksum":
            n, lo, hi, _fast = args
            a, b = bench_matrices(n)
            return CallResult(float((a[lo:hi] @ b).sum()), duration_ms=0.5)
        a_in, b_in, c_out, n, k, m = args
        assert isinstance(a_in, ArrayIn) and isinstance(b_in, ArrayIn) and isinstance(c_out, ArrayOut)
        a = np.frombuffer(a_in.data).reshape(n, k)
        b = np.frombuffer(b_in.data).reshape(k, m)
        with np.errstate(over="ignore", invalid="ignore"):
            c = a @ b
        return CallResult(None, (c.tobytes(),), 0.5)

    async def handle_http(self, module: str, request: WasmRequest) -> WasmResponse:
        raise NotImplementedError

    async def run_wasi(self, module: str, request: WasmRequest, env: Mapping[str, str]) -> WasmResponse:
        raise NotImplementedError

    async def call_bytes(self, module: str, function: str, body: bytes) -> bytes:
        raise NotImplementedError

    async def reload(self, module: str) -> ModuleInfo:
        raise NotImplementedError


class LoaderPlugin:
    def __init__(self, loader: FakeLoader | None) -> None:
        self.loader = loader

    @hookimpl
    def wasmkernel_module_loader(self, app: Any) -> FakeLoader | None:
        return self.loader


@pytest.fixture
def fake_loader() -> FakeLoader:
    return FakeLoader()


AppFactory = Callable[..., Application]


@pytest.fixture
def make_app() -> AppFactory:
    """``make_app(loader, plugins=(...), **matmul_config)``: router + matmul over
    `loader` (None: no loader), after the installed `plugins` (default configs)."""

    def make(loader: FakeLoader | None, plugins: Sequence[str] = (), **config: Any) -> Application:
        registry = {"loader": {}, **{name: {} for name in plugins}, "router": {}, "matmul": {"config": config}}
        # matmul checks its own query; authz/validation are enabled where a test needs them.
        return app_from(registry, extra_plugins={"loader": LoaderPlugin(loader)}, kernel={"allow_unenforced": True})

    return make


@pytest.fixture
def loader_class() -> type[FakeLoader]:
    return FakeLoader
