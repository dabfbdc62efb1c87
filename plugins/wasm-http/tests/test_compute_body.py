"""`compute_body` on every loader: bytes-in/bytes-out exports
`f(ptr, len) -> (ptr << 32 | len)` serving the body's bytes, and integer
results read as unsigned; hostile packed pointers and bad signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running

MODULE = """
(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))
  (func (export "dealloc") (param i32 i32))
  ;; upper-cases ASCII letters in place, returns the same buffer
  (func (export "shout") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "outside") (param i32 i32) (result i64) (i64.const 0x0001fff0_00100000))
  (func (export "huge") (param i32 i32) (result i64) (i64.const -1))
  (func (export "sum64") (param $ptr i32) (param $len i32) (result i64)
    (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $len))))
  (func (export "sum32") (param $ptr i32) (param $len i32) (result i32)
    (i32.sub (i32.const 0) (local.get $len)))
  (func (export "wrong") (param i32) (result i64) (i64.const 0)))
"""


def with_module(config: dict[str, Any], tmp_path: Path, compute_body: str, *functions: str, **module: Any) -> dict[str, Any]:
    path = tmp_path / "bytes.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(MODULE)))
    spec = {"name": "bytes", "path": str(path), "compute_body": compute_body, **module}
    routes = [{"path": f"/bytes/{name}", "module": "bytes", "function": name, "methods": ["POST"]} for name in functions]
    return {**config, "modules": [*config["modules"], spec], "routes": [*config["routes"], *routes]}


async def test_bytes_in_bytes_out(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_module(config, tmp_path, "bytes", "shout", content_type="text/plain"))) as client:
        for body in (b"hello, wasm", b""):
            response = await client.post("/bytes/shout", content=body)
            assert (response.status_code, response.content) == (200, body.upper()), response.text
            assert response.headers["content-type"] == "text/plain"


async def test_packed_pointer_outside_memory_is_refused(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_module(config, tmp_path, "bytes", "outside", "huge"))) as client:
        for name in ("outside", "huge"):
            response = await client.post(f"/bytes/{name}", content=b"abc")
            assert response.status_code == 500 and "outside its memory" in response.text


async def test_integer_results_as_unsigned(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    async with running(make_app(with_module(config, tmp_path, "u64", "sum64", "sum32"))) as client:
        wide = await client.post("/bytes/sum64", content=b"abc")
        narrow = await client.post("/bytes/sum32", content=b"abc")
    assert wide.json() == {"value": (1 << 64) - 3} and narrow.json() == {"value": (1 << 32) - 3}


@pytest.mark.parametrize(("compute_body", "function"), [("bytes", "wrong"), ("bytes", "sum32"), ("u64", "wrong")])
async def test_bad_signature_stops_startup(make_app: Any, config: dict[str, Any], tmp_path: Path, compute_body: str, function: str) -> None:
    with pytest.raises(StartupError, match=rf"function '{function}' is .*compute_body = '{compute_body}' needs"):
        async with running(make_app(with_module(config, tmp_path, compute_body, function))):
            pass


async def test_path_parameters_are_refused(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    entry = with_module(config, tmp_path, "bytes", "shout")
    entry["routes"][-1]["path"] = "/bytes/{n:int}"
    with pytest.raises(StartupError, match="gets the body, not path parameters"):
        async with running(make_app(entry)):
            pass


def test_compute_body_only_for_compute_modules(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][1]["compute_body"] = "bytes"
    with pytest.raises(RegistryError, match=r"compute_body.*only for kind = 'compute'"):
        make_app(config)
