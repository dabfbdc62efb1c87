"""WasmKernel as a third party gets it: every distribution's wheel
(scripts/build-wheels.sh), `pip install wasmkernel[standard]` from those
wheels into a fresh virtual environment outside the repository, then, with
the checkout on no path (PATH, PYTHONPATH, working directory):

- `wasmkernel init` and `wasmkernel run` serve a module route and a Python route;
- `new-plugin` scaffolds a plugin whose own tests pass and which `mypy --strict`
  accepts against the installed (non-editable) wheels;
- `new-module` writes a module of each language and kind in a folder
  elsewhere, which `wasmkernel wasm build` builds there and the project serves.

Building and installing cost minutes of CPU: one set of wheels and one
environment per session. Module builds cost what the README's "Writing a
WebAssembly module" says (C ≈ 1 CPU-second, Rust ≈ 6, AssemblyScript ≈ 10):
CI builds every C kind, an AssemblyScript and a Rust handler; the other
combinations are marked slow, as in plugins/wasm/tests/test_new_module.py."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import wasmkernel
from tests.conftest import ROOT, free_port, wait_until_serving

pytestmark = pytest.mark.server
Serve = Callable[[Path], str]

#: Every distribution: the kernel, wasmkernel-modules, each plugin with a pyproject.toml.
DISTRIBUTIONS = 2 + sum(1 for folder in (ROOT / "plugins").iterdir() if (folder / "pyproject.toml").is_file())
FAST = [("c", "compute"), ("c", "http"), ("c", "filter"), ("c", "wasi"), ("assemblyscript", "http"), ("rust", "http")]
SLOW = [(lang, kind) for lang in ("assemblyscript", "rust") for kind in ("compute", "http", "filter", "wasi") if (lang, kind) not in FAST]


def run(*argv: str | Path, cwd: Path, env: dict[str, str], timeout: float = 1200) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def outside(venv: Path, tools: Path | None = None) -> dict[str, str]:
    """The environment of a user who installed the wheels into `venv`: the
    checkout on no path (its .venv/bin off PATH, no PYTHONPATH)."""
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if not entry.startswith(str(ROOT))]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "MYPYPATH", "WASMKERNEL_REGISTRY")}
    return env | {"PATH": os.pathsep.join([str(venv / "bin"), *([str(tools)] if tools else []), *path])}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution's wheel, built the way deploy/Containerfile builds them."""
    out = tmp_path_factory.mktemp("wheels")
    env = {**os.environ, "PYTHON": sys.executable}
    run("bash", ROOT / "scripts" / "build-wheels.sh", out, "--no-build-isolation", cwd=ROOT, env=env)
    return out


@pytest.fixture(scope="session")
def venv(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment outside the repository with `wasmkernel[standard]` from the wheels."""
    home = tmp_path_factory.mktemp("user")
    venv = home / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home, env=outside(venv))
    pip = (venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "--find-links", wheels)
    run(*pip, f"wasmkernel[standard]=={wasmkernel.__version__}", cwd=home, env=outside(venv))
    found = run(
        venv / "bin" / "python", "-c", "import wasmkernel, wasmkernel_modules; print(wasmkernel.__file__, wasmkernel_modules.ROOT)", cwd=home, env=outside(venv)
    )
    assert str(ROOT) not in found and str(venv) in found, found
    return venv


@pytest.fixture
def project(venv: Path, tmp_path: Path) -> Path:
    """`wasmkernel init`'s project folder."""
    run("wasmkernel", "init", tmp_path / "project", cwd=tmp_path, env=outside(venv))
    return tmp_path / "project"


@pytest.fixture
def serve(venv: Path, tmp_path: Path) -> Iterator[Serve]:
    """Start `wasmkernel run` in a project folder; its base URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(project: Path) -> str:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        env = outside(venv) | {"WASMKERNEL_JWT_SECRET": secrets.token_urlsafe(48)}
        with log.open("wb") as output:
            processes.append(
                subprocess.Popen(["wasmkernel", "run", "--bind", f"127.0.0.1:{port}"], cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT)
            )
        wait_until_serving(f"http://127.0.0.1:{port}/health", processes[-1], timeout=300, log=log)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=60)


def test_every_distribution_builds_a_publishable_wheel(wheels: Path) -> None:
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == DISTRIBUTIONS, [wheel.name for wheel in built]
    for wheel in built:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), wheel.name
        assert any(name.endswith("/py.typed") for name in names), wheel.name
        assert "License-Expression: Apache-2.0" in metadata and "Classifier: Framework :: WasmKernel" in metadata, wheel.name
        assert "Description-Content-Type: text/markdown" in metadata, wheel.name


def test_the_modules_wheel_carries_the_sdks_the_build_script_and_the_prebuilt_modules(wheels: Path) -> None:
    (wheel,) = wheels.glob("wasmkernel_modules-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        registry = archive.read("wasmkernel_modules/plugin_registry.toml").decode()
    expected = {
        "build.sh",
        "sdk/Cargo.toml",
        "sdk/src/lib.rs",
        "sdk-c/wasmkernel.h",
        "sdk-as/wasmkernel.ts",
        "sdk-as/wasi.ts",
        "dist/manifest.txt",
        "dist/hello.wasm",
    }
    assert {f"wasmkernel_modules/{name}" for name in expected} <= names
    assert registry == (ROOT / "plugin_registry.toml").read_text()  # the default registry itself, not a link to it


def test_init_and_run_serve_a_module_and_a_python_route(venv: Path, project: Path, serve: Serve) -> None:
    """The README's third-party flow: pip install wasmkernel[standard], init, run, curl. No compiler involved."""
    assert sorted(path.name for path in (project / "wasm_modules" / "dist").iterdir())[:2] == ["as-filter.wasm", "as-wagi.wasm"]
    assert "[plugins.wasmtime-loader.config]" in (project / "plugin_registry.toml").read_text()
    base = serve(project)
    module = httpx.get(f"{base}/hello/world", timeout=60)
    assert (module.status_code, module.text) == (200, "Hello, world!\n")  # the Rust module
    python = httpx.get(f"{base}/hello", timeout=60)
    assert (python.status_code, python.text) == (200, "Hello, world!")
    assert httpx.get(f"{base}/c/hello/ada", timeout=60).status_code == 200
    assert httpx.get(f"{base}/openapi.json", timeout=60).json()["info"]["title"] == "WasmKernel"


def test_a_scaffolded_plugin_passes_its_tests_and_mypy_strict_against_the_wheels(venv: Path, wheels: Path, tmp_path: Path) -> None:
    env = outside(venv)
    run("wasmkernel", "new-plugin", "hello-world", "--directory", tmp_path / "hello-world", cwd=tmp_path, env=env)
    pip = (venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "--find-links", wheels)
    run(*pip, "-e", f"{tmp_path / 'hello-world'}[test]", cwd=tmp_path, env=env)
    run(venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path / "hello-world", env=env)
    # The checkout's mypy, resolving imports in the fresh environment only (PEP 561: py.typed, __all__).
    mypy = Path(sys.executable).parent / "mypy"
    checked = run(mypy, "--strict", "--no-incremental", "--python-executable", venv / "bin" / "python", ".", cwd=tmp_path / "hello-world", env=env)
    assert "Success: no issues found" in checked


def module_flow(venv: Path, project: Path, elsewhere: Path, combos: list[tuple[str, str]], serve: Serve) -> None:
    """new-module into `elsewhere` for each (language, kind), `wasm build`
    them there, append the printed registry lines, serve, call each."""
    tools = elsewhere / "tools"  # the AssemblyScript compiler, as a user has it on PATH (npm)
    tools.mkdir(parents=True)
    (tools / "asc").symlink_to((ROOT / "wasm_modules" / "node_modules" / ".bin" / "asc").resolve())
    env = outside(venv, tools)
    registry = project / "plugin_registry.toml"
    folders = []
    for lang, kind in combos:
        name = f"my-{lang[:2]}-{kind}"
        printed = run("wasmkernel", "new-module", name, "--lang", lang, "--kind", kind, "--directory", elsewhere / name, cwd=project, env=env)
        assert str(ROOT) not in "".join(path.read_text() for path in (elsewhere / name).rglob("*") if path.is_file())
        registry.write_text(registry.read_text() + "\n" + printed.split(":\n\n", 1)[1])
        folders.append(elsewhere / name)
    run("wasmkernel", "wasm", "build", *folders, cwd=project, env=env, timeout=3600)
    base = serve(project)
    for lang, kind in combos:
        name = f"my-{lang[:2]}-{kind}"
        if kind == "compute":
            response = httpx.get(f"{base}/{name}/add/40/2", timeout=60)
            assert (response.status_code, response.json()) == (200, {"value": 42}), name
        elif kind == "http":
            response = httpx.get(f"{base}/{name}/ada", timeout=60)
            assert (response.status_code, response.text, response.headers["x-module"]) == (200, "Hello, ada!\n", name)
        elif kind == "filter":  # its lines guard the prefix /hello
            passed = httpx.get(f"{base}/hello/ada", headers={"user-agent": "curl/8"}, timeout=60)
            refused = httpx.get(f"{base}/hello/ada", headers={"user-agent": "badbot/1.0"}, timeout=60)
            assert passed.status_code == 200 and name in passed.headers["x-filtered-by"], name
            assert refused.status_code == 403, name
        else:
            response = httpx.post(f"{base}/{name}/ada", content=b"three", timeout=60)
            assert (response.status_code, response.text) == (200, "Hello, ada! (POST with 5 bytes)\n"), name


def test_modules_are_authored_built_and_served_outside_the_repository(venv: Path, project: Path, tmp_path: Path, serve: Serve) -> None:
    module_flow(venv, project, tmp_path / "elsewhere", FAST, serve)


@pytest.mark.slow
def test_every_other_language_and_kind_outside_the_repository(venv: Path, project: Path, tmp_path: Path, serve: Serve) -> None:
    module_flow(venv, project, tmp_path / "elsewhere", SLOW, serve)
