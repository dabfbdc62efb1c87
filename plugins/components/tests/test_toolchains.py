"""Components built from source as a user builds them, then served.

`wasmkernel wasm build` builds the repository's Python (componentize-py),
JavaScript (componentize-js) and Spin Python SDK 3 components, and the
components `wasmkernel new-module --lang python|javascript --kind http`
scaffolds. Each build takes a minute or more and hundreds of MB (then the
host's first compile of an 18 MB component 10-60 s more): the builds start
together (two at a time, the machine has two cores) once per session, into
wasm_modules/dist (incremental: a second run rebuilds nothing), and share
one compile cache.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wat import ROOT

from wasmkernel.cli import main
from wasmkernel.testing import running

pytestmark = pytest.mark.slow

REPOSITORY = ("py_http", "js_http", "spin_kv")
SCAFFOLDED = {"my-py": "python", "my-js": "javascript"}


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--registry", str(ROOT / "plugin_registry.components.toml"), *args])
    return code, out.getvalue()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every component built: {name: path} and the scaffolds' printed registry lines."""
    base = tmp_path_factory.mktemp("scaffolded")
    printed = {}
    for name, lang in SCAFFOLDED.items():
        code, lines = cli("new-module", name, "--lang", lang, "--kind", "http", "--directory", str(base / name))
        assert code == 0, lines
        printed[name] = tomllib.loads(lines.split(":\n\n", 1)[1])["plugins"]["components"]["config"]
    wasmkernel = str(Path(sys.executable).with_name("wasmkernel"))
    jobs = [[name] for name in REPOSITORY] + [[str(base / name), "--out", str(base / "dist")] for name in SCAFFOLDED]
    running_builds: list[tuple[list[str], subprocess.Popen[str]]] = []
    failures = []
    while jobs or running_builds:
        while jobs and len(running_builds) < 2:
            job = jobs.pop(0)
            command = [wasmkernel, "--registry", str(ROOT / "plugin_registry.components.toml"), "wasm", "build", *job]
            running_builds.append((job, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        job, process = running_builds.pop(0)
        output, _ = process.communicate(timeout=1800)
        if process.returncode != 0:
            failures.append(f"{job[0]}: {output[-2000:]}")
    assert not failures, "\n".join(failures)
    paths = {name: ROOT / "wasm_modules" / "dist" / f"{name}.wasm" for name in REPOSITORY}
    paths.update({name: base / "dist" / f"{name}.wasm" for name in SCAFFOLDED})
    yield {"paths": paths, "printed": printed}


async def test_python_and_javascript_components_serve(make_app: Callable[..., Any], built: dict[str, Any]) -> None:
    paths = built["paths"]
    async with running(make_app({"py": paths["py_http"], "js": paths["js_http"]})) as client:
        for name, language in (("py", "Python"), ("js", "JavaScript")):
            hello = await client.get(f"/{name}", params={"name": "Ann"})
            echo = await client.post(f"/{name}/echo", content=bytes(range(256)) * 1000)
            headers = await client.get(f"/{name}/headers", headers={"x-probe": "1", "authorization": "Bearer secret"})
            assert hello.status_code == 200 and hello.text == f"Hello, Ann, from {language}!\n"
            assert echo.status_code == 200 and echo.content == bytes(range(256)) * 1000
            assert "x-probe: 1" in headers.text and "authorization" not in headers.text  # credentials stay in the host


async def test_outgoing_http_only_to_allowed_origins(make_app: Callable[..., Any], built: dict[str, Any], upstream: int) -> None:
    paths = built["paths"]
    origin = f"http://127.0.0.1:{upstream}"
    granted = {"http": {"allow": [origin], "timeout": 5.0}}
    app = make_app({"py": {"path": str(paths["py_http"]), **granted}, "js": {"path": str(paths["js_http"]), **granted}})
    async with running(app) as client:
        for name in ("py", "js"):
            allowed = await client.get(f"/{name}/fetch", params={"url": f"{origin}/ok"})
            denied = await client.get(f"/{name}/fetch", params={"url": "http://127.0.0.1:9/x"})
            assert allowed.status_code == 200 and allowed.text == "upstream said 200: pong", (name, allowed.text)
            assert denied.status_code == 502 and "outgoing request failed" in denied.text, (name, denied.text)


async def test_spin_app_uses_key_value_and_variables(make_app: Callable[..., Any], built: dict[str, Any], tmp_path: Path) -> None:
    spin = {"path": str(built["paths"]["spin_kv"]), "vars": {"greeting": "Hi"}, "kv": {"backend": "sqlite", "path": str(tmp_path / "kv.sqlite3")}}
    async with running(make_app({"spin": spin, "bare": {"path": str(built["paths"]["spin_kv"])}})) as client:
        first = await client.get("/spin")
        second = await client.get("/spin")
        bare = await client.get("/bare")
    assert first.text == "Hi! visit 1 (keys: visits)\n" and second.text == "Hi! visit 2 (keys: visits)\n"
    assert bare.status_code == 500  # no vars, no kv granted: the SDK raises, the app fails


async def test_scaffolded_components_build_and_serve(make_app: Callable[..., Any], built: dict[str, Any]) -> None:
    for name, config in built["printed"].items():
        (module,) = config["modules"]
        (route,) = config["routes"]
        assert module["kind"] == "wasi-http" and route["prefix"] == f"/{name}"
        async with running(make_app({name: built["paths"][name]})) as client:
            hello = await client.get(f"/{name}", params={"name": "Ann"})
            echo = await client.post(f"/{name}/echo", content=b"x" * 100_000)
        assert hello.text == "Hello, Ann!\n" and echo.content == b"x" * 100_000, name
