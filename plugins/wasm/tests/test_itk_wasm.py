"""Real itk-wasm pipelines (PyPI `itkwasm-compress-stringify-wasi`,
`itkwasm-downsample-wasi`) on every loader: reactors whose entry export is `""`
(run after `_initialize`), reading the request body from a named scratch file
and leaving their answer in another."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm.testing import loader_of

from wasmkernel import StartupError
from wasmkernel.testing import running

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def pipeline(package: str = "itkwasm_compress_stringify_wasi", name: str = "compress-stringify") -> Path:
    """A pipeline as its itk-wasm wheel ships it (its Python wrapper is not imported)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        pytest.skip(f"{package} is not installed (the wasm plugin's test extra)")
    return Path(next(iter(found.submodule_search_locations))) / "wasm_modules" / f"{name}.wasi.wasm"


def compress_config(config: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "name": "compress",
        "path": str(pipeline()),
        "kind": "wasi",
        "entry": "",
        "scratch": "/work",
        "body_file": "/work/input.bin",
        "output_file": "/work/output.txt",
        "args": ["/work/input.bin", "/work/output.txt", "--stringify", "--compression-level", "{level}"],
        "output": "raw",
        "content_type": "text/plain",
    }
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/compress/{level}", "module": "compress", "methods": ["POST"]}],
    }


async def test_itk_wasm_pipeline_compresses_the_body(make_app: Any, config: dict[str, Any], loader_name: str) -> None:
    if loader_name == "wasmer-loader":
        # Its SIMD operators are beyond wasmer 1.1's cranelift; wasmtime's validator accepts it.
        with pytest.raises(StartupError, match=r"SIMD operators .* serve it with wasmtime-loader instead"):
            loader_of(make_app(compress_config(config))).prepare("compress")
        return
    body = b"WasmKernel " * 1000
    async with running(make_app(compress_config(config))) as client:
        response = await client.post("/compress/5", content=body)
    assert response.status_code == 200, response.text
    prefix = b"data:application/zstd;base64,"
    assert response.content.startswith(prefix)
    compressed = base64.b64decode(response.content[len(prefix) :])
    assert compressed.startswith(ZSTD_MAGIC) and len(compressed) < len(body) // 10


def kernel_radius_config(config: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "name": "radius",
        "path": str(pipeline("itkwasm_downsample_wasi", "gaussian-kernel-radius")),
        "kind": "wasi",
        "entry": "",
        "scratch": "/work",
        "output_file": "/work/radius.json",
        "args": ["/work/radius.json", "--size", "64", "64", "--sigma", "{sigma}", "{sigma}"],
        "output": "raw",
        "content_type": "application/json",
    }
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/radius/{sigma}", "module": "radius"}],
    }


async def test_itk_wasm_pipeline_answers_from_its_output_file(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(kernel_radius_config(config))) as client:
        radii = [await client.get(f"/radius/{sigma}") for sigma in ("0.5", "2.5", "5")]
    assert all(response.status_code == 200 for response in radii), radii[0].text
    assert [response.json() for response in radii] == [[2, 2], [7, 7], [13, 13]]
