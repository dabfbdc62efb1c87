"""Every plugin installs on its own into a virtual environment holding only
the kernel, and is then listed and loadable (`pip install ./plugins/<name>`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wasmkernel.testing import project_root

pytestmark = [pytest.mark.server, pytest.mark.slow]

PLUGINS = sorted(path.name for path in (project_root() / "plugins").iterdir() if (path / "pyproject.toml").is_file())


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
    pip(venv, "install", project_root())
    return venv


def listing(venv: Path, registry: Path) -> subprocess.CompletedProcess[str]:
    """`wasmkernel plugins` in `venv` (introspect is built into the kernel)."""
    return subprocess.run([str(venv / "bin" / "wasmkernel"), "plugins", "--registry", str(registry)], capture_output=True, text=True, timeout=120, check=False)


def project_dependencies(name: str) -> list[str]:
    """The project's plugins that plugin `name` depends on, directly or through
    another (e.g. a loader: the WebAssembly host, and the scaffold plugin it uses)."""
    needed: list[str] = []
    pending = [name]
    while pending:
        text = (project_root() / "plugins" / pending.pop() / "pyproject.toml").read_text()
        found = [other for other in PLUGINS if other not in (name, *needed) and f'"wasmkernel-{other}"' in text]
        needed += found
        pending += found
    return needed


@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_installs_on_its_own(kernel_venv: Path, name: str, tmp_path: Path) -> None:
    """Alone, or with only the project's plugins it depends on; listed by
    `wasmkernel plugins` (the built-in introspect plugin)."""
    needed = project_dependencies(name)
    pip(kernel_venv, "install", project_root() / "plugins" / name, *(project_root() / "plugins" / other for other in needed))
    try:
        registry = tmp_path / "registry.toml"
        registry.write_text("[plugins.router]\nenabled = false\n")
        listed = listing(kernel_venv, registry)
        row = next((line for line in listed.stdout.splitlines() if line.split()[:1] == [name]), "")
        assert row, listed.stdout + listed.stderr
        assert "fails to load" not in row, row
    finally:
        pip(kernel_venv, "uninstall", "-y", *("wasmkernel-" + plugin for plugin in (name, *needed)))
