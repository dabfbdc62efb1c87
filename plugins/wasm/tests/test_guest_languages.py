"""The C and AssemblyScript example modules (wasm_modules/c_hello, c_wagi,
as_hello, built by wasm_modules/build.sh) served as the default registry
declares them, on every loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli as tomllib
from wasmkernel_wasm.testing import ROOT

from kernel.testing import running

EXAMPLES = ("c_hello", "c_wagi", "as_hello")


@pytest.fixture
def examples(config: dict[str, Any], dist: Path) -> dict[str, Any]:
    """`config` plus the example modules and routes of plugin_registry.toml."""
    if not all((dist / f"{name}.wasm").is_file() for name in EXAMPLES):
        pytest.skip("C/AssemblyScript examples not built (make installs clang-14, wasi-libc and assemblyscript)")
    registry = tomllib.loads((ROOT / "plugin_registry.toml").read_text())["plugins"]["wasmer-loader"]["config"]
    modules = [dict(m, path=str(ROOT / m["path"])) for m in registry["modules"] if Path(m["path"]).stem in EXAMPLES]
    names = {m["name"] for m in modules}
    routes = [r for r in registry["routes"] if r["module"] in names]
    return {**config, "modules": [*config["modules"], *modules], "routes": [*config["routes"], *routes]}


async def test_c_http_handler(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        text = await client.get("/c/hello/ada")
        json = await client.get("/c/hello/ada", params={"format": "json"})
    assert (text.status_code, text.text, text.headers["x-guest-language"]) == (200, "Hello, ada!\n", "c")
    assert json.json() == {"message": "Hello, ada!"}


async def test_c_wasi_command_wagi_style(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        response = await client.post("/c/wagi/shout", content=b"quiet words")
    assert response.status_code == 200
    assert response.text.splitlines() == ["route=/c/wagi/{word}", "arg1=--word", "arg2=shout", "body=QUIET WORDS"]


async def test_assemblyscript_http_handler(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        response = await client.get("/as/hello/grace")
    assert (response.status_code, response.text, response.headers["x-guest-language"]) == (200, "Hello, grace!\n", "assemblyscript")
