"""Every plugin installs on its own into a virtual environment holding only
the kernel, and is then listed and loadable (`pip install ./plugins/<name>`,
with the repository's distributions it requires: other plugins,
wasmkernel-modules)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.server, pytest.mark.slow]

PLUGINS = sorted(path.name for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").is_file())


def pip(venv: Path, *args: str | Path) -> None:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def kernel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("kernel-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, "install", ROOT)
    return venv


def listing(venv: Path, registry: Path) -> subprocess.CompletedProcess[str]:
    """`wasmkernel plugins` in `venv` (introspect is built into the kernel)."""
    return subprocess.run([str(venv / "bin" / "wasmkernel"), "plugins", "--registry", str(registry)], capture_output=True, text=True, timeout=120, check=False)


def project_dependencies(name: str) -> list[Path]:
    """The repository's distributions plugin `name` requires, directly or
    through another (a loader: the WebAssembly host, which needs wasmkernel-modules)."""
    folders = {f"wasmkernel-{plugin}": ROOT / "plugins" / plugin for plugin in PLUGINS} | {"wasmkernel-modules": ROOT / "wasm_modules"}
    needed: list[Path] = []
    pending = [ROOT / "plugins" / name]
    while pending:
        text = (pending.pop() / "pyproject.toml").read_text()
        dependencies = text[text.index("dependencies = [") : text.index("]", text.index("dependencies = ["))]
        found = [folders[required] for required in re.findall(r'"(wasmkernel-[a-z-]+)[\[<>=]', dependencies) if folders[required] not in needed]
        needed += found
        pending += found
    return [folder for folder in needed if folder != ROOT / "plugins" / name]


@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_installs_on_its_own(kernel_venv: Path, name: str, tmp_path: Path) -> None:
    """Alone, or with only the project's plugins it depends on; listed by
    `wasmkernel plugins` (the built-in introspect plugin)."""
    needed = project_dependencies(name)
    pip(kernel_venv, "install", ROOT / "plugins" / name, *needed)
    try:
        registry = tmp_path / "registry.toml"
        registry.write_text("[plugins.router]\nenabled = false\n")
        listed = listing(kernel_venv, registry)
        row = next((line for line in listed.stdout.splitlines() if line.split()[:1] == [name]), "")
        assert row, listed.stdout + listed.stderr
        assert "fails to load" not in row, row
    finally:
        pip(kernel_venv, "uninstall", "-y", f"wasmkernel-{name}", *(f"wasmkernel-{folder.name.replace('wasm_modules', 'modules')}" for folder in needed))
