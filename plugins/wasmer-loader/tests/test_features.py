"""wasmer-only behaviour: features wasmer 1.1 cannot run are refused at startup
with the feature named; modules compile in a Python 3.10 process, never in the server."""

from __future__ import annotations

import os
import sys
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


async def test_modules_compile_in_a_python_310_process_never_in_the_server(make_app: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiling, "PROGRESS_BYTES", 0)  # log every compile, with the compiling process's pid
    with capture_logs() as logs:
        async with running(make_app(config)) as client:
            response = await client.get("/hello/child")
    assert (response.status_code, response.text) == (200, "Hello, child!\n")
    compiled = {entry["module"]: entry["pid"] for entry in logs if entry["event"] == "wasm.compiling"}
    assert set(compiled) == {"matmul", "hello", "faults", "wagi"}
    assert len(set(compiled.values())) == 1 and os.getpid() not in compiled.values()  # one compile process for the batch
    assert "wasmer" not in sys.modules
