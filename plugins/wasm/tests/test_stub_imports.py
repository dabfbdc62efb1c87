"""`stub_imports` on every loader: imports the host does not provide, named in
the registry, linked as stubs that trap when called (a program's optional
host imports), instead of refusing the module; misnamed stubs stop startup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import loader_of

from wasmkernel import StartupError
from wasmkernel.testing import running

PROGRAM = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "env" "optional_hook" (func $hook (param i32) (result i32)))
  (import "mp.js" "yield" (func $yield))
  (memory (export "memory") 1)
  (data (i32.const 64) "ok")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))
  (func (export "hooked")
    (drop (call $hook (i32.const 7)))))
"""


def with_program(config: dict[str, Any], tmp_path: Path, entry: str = "_start", **module: Any) -> dict[str, Any]:
    path = tmp_path / "program.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(PROGRAM)))
    spec = {"name": "prog", "path": str(path), "kind": "wasi", "output": "raw", "entry": entry, **module}
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/prog", "module": "prog", "methods": ["POST"]}],
    }


STUBS = ["env.optional_hook", "mp.js.yield"]


async def test_stubbed_imports_link_and_trap_only_when_called(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_program(config, tmp_path, stub_imports=STUBS))) as client:
        response = await client.post("/prog")
        assert (response.status_code, response.content) == (200, b"ok"), response.text
    async with running(make_app(with_program(config, tmp_path, entry="hooked", stub_imports=STUBS))) as client:
        with capture_logs() as logs:
            called = [await client.post("/prog") for _ in range(2)]  # the module keeps serving
    assert [response.status_code for response in called] == [500, 500]
    assert all("module 'prog'" in response.json()["detail"] for response in called)
    reasons = [str(entry.get("reason", "")) for entry in logs if entry["event"] == "wasm.call_failed"]
    assert len(reasons) == 2 and all("env.optional_hook, which is linked as a stub" in reason for reason in reasons), logs


async def test_without_stubs_the_module_is_refused(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"imports function 'env\.optional_hook'"):
        loader_of(make_app(with_program(config, tmp_path, stub_imports=["mp.js.yield"]))).prepare("prog")


@pytest.mark.parametrize(
    ("stubs", "problem"),
    [
        ([*STUBS, "env.absent"], "imports no function 'env.absent'"),
        ([*STUBS, "wasi_snapshot_preview1.fd_write"], "is provided by the host"),
        ([*STUBS, "nodot"], "is not 'module.name'"),
        ([*STUBS, "env."], "is not 'module.name'"),
    ],
)
async def test_misnamed_stubs_stop_startup_naming_the_key(make_app: Any, config: dict[str, Any], tmp_path: Path, stubs: list[str], problem: str) -> None:
    with pytest.raises(StartupError, match=rf"plugins\.wasm\.config\.modules\[\d+\]\.stub_imports: .*{problem}"):
        loader_of(make_app(with_program(config, tmp_path, stub_imports=stubs))).prepare("prog")
