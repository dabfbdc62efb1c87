"""The public API is the contract between plugins and the kernel.

A plugin's product code (plugins/<name>/wasmkernel_<name>/) imports the
kernel only as `wasmkernel`, its own package freely, and another plugin only
through that plugin's public API: its top-level package, plus the
submodules its pyproject lists as public (``[tool.wasmkernel]
public-modules``, documented in those modules). Test-support
modules (`testing.py`) may use `wasmkernel.testing`; plugins' tests may also use
`wasmkernel.cli`.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from wasmkernel.testing import project_root

PLUGINS = project_root() / "plugins"

TEST_SUPPORT = {"wasmkernel", "wasmkernel.testing"}
IN_TESTS = {"wasmkernel", "wasmkernel.testing", "wasmkernel.cli"}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `path`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def public_modules() -> dict[str, set[str]]:
    """Each plugin package → the modules other plugins may import: the package
    and the submodules its pyproject lists under ``[tool.wasmkernel] public-modules``."""
    public = {}
    for pyproject in PLUGINS.glob("*/pyproject.toml"):
        package = "wasmkernel_" + pyproject.parent.name.replace("-", "_")
        listed = tomllib.loads(pyproject.read_text()).get("tool", {}).get("wasmkernel", {}).get("public-modules", [])
        public[package] = {package, *(f"{package}.{name}" for name in listed)}
    return public


def _violation(module: str, own_package: str | None, kernel_allowed: set[str], public: Mapping[str, set[str]]) -> str | None:
    """Why importing `module` breaks the contract, or None; `own_package`
    None: any plugin module may be imported (tests)."""
    top = module.split(".", maxsplit=1)[0]
    if top == "wasmkernel":
        return None if module in kernel_allowed else "imports a kernel submodule: use `from wasmkernel import ...`"
    if own_package is None or not top.startswith("wasmkernel_") or top == own_package or module in public.get(top, {top}):
        return None
    return f"imports the private module {module} of another plugin: use its package {top} or a module its pyproject lists as public"


def _violations(files: list[Path], package_of: dict[Path, str], kernel_allowed: dict[Path, set[str]]) -> list[str]:
    found = []
    public = public_modules()
    for path in files:
        for line, module in _imports(path):
            reason = _violation(module, package_of.get(path), kernel_allowed[path], public)
            if reason is not None:
                found.append(f"{path.relative_to(PLUGINS)}:{line}: {reason}")
    return found


def _product_files() -> list[Path]:
    return sorted(p for p in PLUGINS.glob("*/wasmkernel_*/**/*.py") if ".egg-info" not in str(p))


def test_public_modules_are_listed_in_one_place() -> None:
    """No exemption in this test: a package's public submodules are the ones its pyproject lists, and they exist."""
    public = public_modules()
    assert public["wasmkernel_wasm"] == {"wasmkernel_wasm", "wasmkernel_wasm.engine", "wasmkernel_wasm.portable"}
    for package, modules in public.items():
        folder = next(PLUGINS.glob(f"*/{package}"))
        assert all((folder / f"{name.split('.', 1)[1]}.py").is_file() for name in modules - {package}), package


def test_there_is_product_code_to_check() -> None:
    files = _product_files()
    assert len({path.parts[len(PLUGINS.parts)] for path in files}) >= 20
    assert any(module == "wasmkernel" for path in files for _, module in _imports(path))


def test_plugins_product_code_imports_only_public_apis() -> None:
    files = _product_files()
    package_of = {path: path.parts[len(PLUGINS.parts) + 1] for path in files}
    kernel_allowed = {path: TEST_SUPPORT if path.name == "testing.py" else {"wasmkernel"} for path in files}
    assert _violations(files, package_of, kernel_allowed) == []


def test_plugins_tests_import_only_the_kernels_public_api() -> None:
    files = sorted(PLUGINS.glob("*/tests/**/*.py"))
    assert files
    assert _violations(files, {}, dict.fromkeys(files, IN_TESTS)) == []


@pytest.mark.parametrize(
    ("module", "own", "expected"),
    [
        ("wasmkernel", "wasmkernel_a", None),
        ("wasmkernel.app", "wasmkernel_a", "kernel submodule"),
        ("wasmkernel_a.table", "wasmkernel_a", None),
        ("wasmkernel_b", "wasmkernel_a", None),
        ("wasmkernel_b.table", "wasmkernel_a", "private module wasmkernel_b.table"),
        ("wasmkernel_b.engine", "wasmkernel_a", None),
        ("wasmkernel_b.config", "wasmkernel_a", "private module wasmkernel_b.config"),
        ("attrs", "wasmkernel_a", None),
        ("wasmkernel_b.table", None, None),
    ],
)
def test_the_rule(module: str, own: str | None, expected: str | None) -> None:
    reason = _violation(module, own, {"wasmkernel"}, {"wasmkernel_b": {"wasmkernel_b", "wasmkernel_b.engine"}})
    assert reason is None if expected is None else expected in (reason or "")
