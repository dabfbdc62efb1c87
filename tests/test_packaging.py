"""Every distribution is publishable: licence, metadata, typed packages,
bounded project requirements, declared direct imports; `wasmkernel[standard]`
is the default registry's plugin set; the committed prebuilt modules match
their sources. (Building and installing the wheels: tests/test_distribution.py.)"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from wasmkernel_scaffold.plugin import kernel_bounds
from wasmkernel_scaffold.project import init_project

import wasmkernel
from scripts.runtime_set import runtime_set
from tests.conftest import ROOT

#: Folder of each distribution → its packages' source folders (import name → folder).
DISTRIBUTIONS: dict[Path, dict[str, Path]] = {
    ROOT: {
        "wasmkernel": ROOT / "kernel" / "wasmkernel",
        **{f"wasmkernel_{name}": ROOT / "plugins" / name / f"wasmkernel_{name}" for name in ("server", "introspect", "scaffold")},
    },
    ROOT / "wasm_modules": {"wasmkernel_modules": ROOT / "wasm_modules"},
    **{
        folder: {f"wasmkernel_{folder.name.replace('-', '_')}": folder / f"wasmkernel_{folder.name.replace('-', '_')}"}
        for folder in sorted((ROOT / "plugins").iterdir())
        if (folder / "pyproject.toml").is_file()
    },
}
IDS = [str(folder.relative_to(ROOT)) or "." for folder in DISTRIBUTIONS]
CLASSIFIERS = {
    "Framework :: WasmKernel",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
    "Typing :: Typed",
}
KERNEL = Version(wasmkernel.__version__)
WORKER = ROOT / "plugins" / "wasmer-loader" / "wasmkernel_wasmer_loader" / "worker"


def project(folder: Path) -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return table


def requirements(folder: Path) -> Iterator[Requirement]:
    """Every requirement of the distribution in `folder`, its extras' included."""
    table = project(folder)
    for text in [*table["dependencies"], *(r for extra in table.get("optional-dependencies", {}).values() for r in extra)]:
        yield Requirement(text)


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_metadata_is_publishable(folder: Path) -> None:
    table = project(folder)
    assert table["license"] == "Apache-2.0"
    assert (folder / "LICENSE").resolve() == ROOT / "LICENSE"
    assert (folder / table["readme"]).is_file()
    assert set(table["classifiers"]) >= CLASSIFIERS
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(table["urls"])
    assert table.get("version", wasmkernel.__version__) == wasmkernel.__version__, "the distributions are released together"
    assert table["requires-python"] == ">=3.11"


def test_the_kernels_version_has_one_source() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["project"]["dynamic"] == ["version"]
    assert root["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wasmkernel.__version__"}


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_project_requirements_are_bounded(folder: Path) -> None:
    """`wasmkernel>=X,<Y`: the kernel's API within a minor release (0.x); the bounds admit today's kernel."""
    for requirement in requirements(folder):
        if requirement.name.startswith("wasmkernel"):
            operators = {spec.operator for spec in requirement.specifier}
            assert operators == {">=", "<"} and KERNEL in requirement.specifier, f"{folder.name}: {requirement}"


def test_patched_private_apis_are_bounded() -> None:
    """The server plugin replaces hypercorn's private H11Protocol: hypercorn has an upper bound."""
    (hypercorn,) = (r for r in requirements(ROOT) if r.name == "hypercorn")
    assert any(spec.operator == "<" for spec in hypercorn.specifier)


def test_a_scaffolded_plugin_states_the_kernels_bounds() -> None:
    assert Requirement(f"wasmkernel{kernel_bounds()}").specifier.contains(KERNEL)
    assert (kernel_bounds("0.4.2"), kernel_bounds("1.4.2")) == (">=0.4,<0.5", ">=1.4,<2")


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_every_package_is_typed(folder: Path) -> None:
    config = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, source in DISTRIBUTIONS[folder].items():
        assert (source / "py.typed").is_file(), package
        assert "py.typed" in config["package-data"].get("*", config["package-data"].get(package, [])), package


def test_the_kernel_exports_what_it_imports() -> None:
    """`__all__` lists the public API (mypy --strict against an installed kernel sees only that)."""
    tree = ast.parse((ROOT / "kernel" / "wasmkernel" / "__init__.py").read_text())
    typed = next(node for node in tree.body if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    imported = {alias.asname or alias.name for node in typed.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == set(wasmkernel.__all__)
    assert all(getattr(wasmkernel, name) is not None for name in wasmkernel.__all__)  # each one loads


def _imports(source: Path) -> Iterator[str]:
    """Top-level names of the modules imported anywhere in the package at `source` (absolute imports)."""
    files = [source / "__init__.py"] if source.name == "wasm_modules" else sorted(source.rglob("*.py"))
    # The Wasmer loader's worker code runs in its own Python 3.10 environment (worker/requirements.txt).
    files = [path for path in files if WORKER not in path.parents]
    for path in files:
        yield from _module_imports(path)


def _module_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@functools.cache
def _providers() -> dict[str, set[str]]:
    """Import name → the installed distributions providing it (from their files:
    `packages_distributions` reads only top_level.txt on Python 3.10); this
    repository's packages (installed editable) by their folders."""
    providers: dict[str, set[str]] = {}
    for distribution in importlib.metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        for file in distribution.files or ():
            if len(file.parts) > 1 or file.suffix == ".py":
                providers.setdefault(file.parts[0].removesuffix(".py"), set()).add(name)
    for folder, packages in DISTRIBUTIONS.items():
        for package in packages:
            providers[package] = {canonicalize_name(project(folder).get("name", "wasmkernel"))}
    return providers


def test_the_wasmer_workers_environment_pins_what_its_code_imports() -> None:
    pinned = {line.split("==")[0] for line in (WORKER / "requirements.txt").read_text().splitlines() if "==" in line}
    imported = {name for path in WORKER.rglob("*.py") for name in _module_imports(path)}
    imported -= {*sys.stdlib_module_names, "__future__", "wasmkernel_wasmer_loader"}
    assert imported <= pinned | {"wasmkernel_wasm"}, imported - pinned  # wasmkernel_wasm: the portable modules copied next to the worker code


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_direct_imports_are_declared(folder: Path) -> None:
    """Every third-party or project module a distribution's code imports comes
    from a distribution it requires (its extras included): h11, exceptiongroup…"""
    providers = _providers()
    own = {canonicalize_name(project(folder).get("name", "wasmkernel"))}
    declared = own | {canonicalize_name(r.name) for r in requirements(folder)}
    undeclared = set()
    for package, source in DISTRIBUTIONS[folder].items():
        for name in set(_imports(source)) - set(sys.stdlib_module_names) - {"__future__", "tomllib", package}:
            distributions = providers.get(name, set())
            assert distributions, f"{package} imports {name}, which no installed distribution provides"
            if not distributions & declared:
                undeclared.add(f"{name} ({', '.join(sorted(distributions))})")
    assert not undeclared, f"{folder.name}: imported but not required: {', '.join(sorted(undeclared))}"


def test_the_standard_extra_is_the_default_registrys_plugin_set(tmp_path: Path) -> None:
    """`pip install wasmkernel[standard]` = what `wasmkernel init` writes a
    registry for (the default registry, with the wasmtime loader) and the
    prebuilt modules it serves."""
    init_project(tmp_path / "project")
    needed = {f"wasmkernel-{folder.name}" for folder in runtime_set(str(tmp_path / "project" / "plugin_registry.toml"))}
    standard = {canonicalize_name(Requirement(r).name) for r in project(ROOT)["optional-dependencies"]["standard"]}
    assert standard == needed | {"wasmkernel-modules"}


def test_the_prebuilt_modules_match_their_sources() -> None:
    """wasm_modules/dist/ is committed: each module's source digest (its sources
    and its SDK) and its SHA-256 are in dist/manifest.txt. A change to a
    module's sources or SDK without a rebuild fails here."""
    check = subprocess.run(["bash", str(ROOT / "wasm_modules" / "build.sh"), "--check"], capture_output=True, text=True, timeout=120, check=False)
    stale = ", ".join(line.split()[1] for line in check.stdout.splitlines() if line.startswith("stale "))
    assert check.returncode == 0, f"not built from their sources: {stale or check.stderr}; run `bash wasm_modules/build.sh` and commit wasm_modules/dist/"


@pytest.mark.slow
def test_the_prebuilt_modules_rebuild_to_the_same_bytes(tmp_path: Path) -> None:
    """Built again from their sources in another folder, every module is the
    same file (the build does not depend on where the checkout is). Needs the
    toolchains of `make toolchains`; minutes of CPU."""
    modules = ROOT / "wasm_modules"
    copy = tmp_path / "elsewhere" / "wasm_modules"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(modules), str(copy.parent)], check=True, timeout=300)
    for output in ("dist", "target", "node_modules"):
        subprocess.run(["rm", "-rf", str(copy / output)], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WASMKERNEL_ASC": str(modules / "node_modules" / ".bin" / "asc")}
    built = subprocess.run(["bash", str(copy / "build.sh")], capture_output=True, text=True, timeout=1800, check=False, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (copy / "dist" / "manifest.txt").read_text() == (modules / "dist" / "manifest.txt").read_text()
