"""wasmer-only behaviour: features wasmer 1.1 cannot run are refused at startup
with the feature named; large modules compile in a child process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import loader_of, use_loader
from wasmkernel_wasmer_loader import compile as compiling

from wasmkernel import StartupError
from wasmkernel.testing import running


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmer-loader"))


UNSUPPORTED = {
    "exception handling": "(module (tag $e))",
    "threads (a shared memory)": '(module (memory (export "memory") 1 1 shared))',
    "wasi_snapshot_preview1.sock_accept": '(module (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32))))',
    "newer SIMD operators (relaxed SIMD)": '(module (func (export "f") (param v128) (result v128) local.get 0 local.get 0 i8x16.relaxed_swizzle))',
}


@pytest.mark.parametrize("feature", sorted(UNSUPPORTED))
def test_unsupported_feature_is_refused_with_a_hint(make_app: Any, config: dict[str, Any], tmp_path: Path, feature: str) -> None:
    path = tmp_path / "module.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(UNSUPPORTED[feature])))
    config["modules"].append({"name": "newer", "path": str(path)})
    with pytest.raises(StartupError) as info:
        loader_of(make_app(config)).prepare("newer")
    message = str(info.value)
    assert "module 'newer'" in message and feature in message and "wasmtime-loader" in message


async def test_large_module_compiles_in_a_child_process(make_app: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiling, "CHILD_COMPILE_BYTES", 0)
    with capture_logs() as logs:
        async with running(make_app(config)) as client:
            response = await client.get("/hello/child")
    assert (response.status_code, response.text) == (200, "Hello, child!\n")
    compiled = {entry["module"] for entry in logs if entry["event"] == "wasm.compiling"}
    assert compiled == {"matmul", "hello", "faults", "wagi"}
