"""`argv_pointer` on every loader: a reactor's entry called as
`entry(argc, argv)` with argv copied in through the module's allocator (a
JavaScript interpreter built as a reactor, QuickJS-NG's `qjs_init_argv`);
a hostile allocator and bad entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmkernel_wasm.testing import loader_of

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running

REACTOR = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "_initialize"))
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))
  (func (export "bad_malloc") (param i32) (result i32) (i32.const 0xfffff000))
  (func (export "free") (param i32))
  (func $strlen (param $s i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  ;; writes argv[argc - 1] and argc (as one digit) to stdout
  (func (export "qjs_init_argv") (param $argc i32) (param $argv i32) (result i32)
    (local $last i32)
    (local.set $last (i32.load (i32.add (local.get $argv) (i32.mul (i32.sub (local.get $argc) (i32.const 1)) (i32.const 4)))))
    (i32.store (i32.const 0) (local.get $last))
    (i32.store (i32.const 4) (call $strlen (local.get $last)))
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (local.get $argc)))
    (i32.store (i32.const 8) (i32.const 100))
    (i32.store (i32.const 12) (i32.const 1))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))
    (i32.load (i32.add (local.get $argv) (i32.mul (local.get $argc) (i32.const 4)))))
  (func (export "no_args")))
"""


def with_reactor(config: dict[str, Any], tmp_path: Path, **module: Any) -> dict[str, Any]:
    path = tmp_path / "qjs.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(REACTOR)))
    spec = {
        "name": "qjs",
        "path": str(path),
        "kind": "wasi",
        "output": "raw",
        "entry": "qjs_init_argv",
        "argv_pointer": True,
        "alloc": "malloc",
        "dealloc": "free",
        "args": ["-e", "{script}"],
        **module,
    }
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/qjs/{script}", "module": "qjs", "methods": ["POST"]}],
    }


async def test_argv_by_pointer_through_the_allocator(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_reactor(config, tmp_path))) as client:
        response = await client.post("/qjs/print(1+1)")
    assert (response.status_code, response.content) == (200, b"print(1+1)3"), response.text


async def test_allocator_returning_a_pointer_outside_memory(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_reactor(config, tmp_path, alloc="bad_malloc"))) as client:
        response = await client.post("/qjs/x")
    assert response.status_code == 500 and "bad_malloc returned a buffer outside its memory" in response.text


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ({"entry": "no_args"}, r"argv_pointer: module 'qjs' export 'no_args' must take \(i32 argc, i32 argv\)"),
        ({"alloc": "alloc"}, r"argv_pointer: module 'qjs' does not export alloc"),
    ],
)
def test_bad_entries_stop_startup(make_app: Any, config: dict[str, Any], tmp_path: Path, module: dict[str, Any], problem: str) -> None:
    with pytest.raises(StartupError, match=problem):
        loader_of(make_app(with_reactor(config, tmp_path, **module))).prepare("qjs")


def test_argv_pointer_needs_a_reactor_entry(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"\[plugins\.wasm\] config\.modules\[\d+\]\.argv_pointer: .*_start takes no arguments"):
        make_app(with_reactor(config, tmp_path, entry="_start"))
