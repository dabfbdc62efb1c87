from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from wasmkernel_scaffold.plugin import kernel_bounds

from wasmkernel.cli import main


@pytest.fixture
def registry(tmp_path: Path) -> str:
    path = tmp_path / "registry.toml"
    path.write_text("[plugins.scaffold]\n")
    return str(path)


def test_new_plugin_scaffold(tmp_path: Path, registry: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "greeter"
    assert main(["--registry", registry, "new-plugin", "greeter", "--directory", str(target)]) == 0
    assert f"created {target}" in capsys.readouterr().out
    assert (target / "wasmkernel_greeter" / "plugin.py").is_file()
    assert (target / "tests" / "test_wasmkernel_greeter.py").is_file()
    assert 'greeter = "wasmkernel_greeter.plugin:Plugin"' in (target / "pyproject.toml").read_text()
    assert "${" not in (target / "README.md").read_text()


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path, registry: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--registry", registry, "new-plugin", "Bad_Name", "--directory", str(tmp_path / "x")]) == 1
    assert "invalid plugin name 'Bad_Name'" in capsys.readouterr().err
    target = tmp_path / "taken"
    target.mkdir()
    (target / "file").write_text("mine")
    assert main(["--registry", registry, "new-plugin", "taken", "--directory", str(target)]) == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (target / "file").read_text() == "mine"


def test_the_command_is_built_in_and_needs_no_registry(tmp_path: Path) -> None:
    """A third-party author starts outside any project: no registry there."""
    assert main(["--registry", str(tmp_path / "none.toml"), "new-plugin", "x", "--directory", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "pyproject.toml").is_file()


def test_init_writes_a_project_that_assembles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default registry with the wasmtime loader, and exactly the prebuilt modules it names."""
    project = tmp_path / "project"
    assert main(["--registry", str(tmp_path / "none.toml"), "init", str(project)]) == 0
    assert f"created {project}" in capsys.readouterr().out
    registry = (project / "plugin_registry.toml").read_text()
    assert "[plugins.wasmtime-loader.config]" in registry and "[plugins.wasmer-loader" not in registry
    named = set(re.findall(r'"wasm_modules/dist/([^"]+\.wasm)"', registry))
    assert {path.name for path in (project / "wasm_modules" / "dist").iterdir()} == named
    assert "hello.wasm" in named and "faults.wasm" not in named
    assert main(["--registry", str(project / "plugin_registry.toml"), "check"]) == 0


def test_init_refuses_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    none = str(tmp_path / "none.toml")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine").write_text("mine")
    assert main(["--registry", none, "init", str(tmp_path / "taken")]) == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["--registry", none, "init", str(tmp_path / "wasmer"), "--loader", "wasmer-loader"]) == 0
    assert "[plugins.wasmer-loader.config]" in (tmp_path / "wasmer" / "plugin_registry.toml").read_text()
    monkeypatch.setitem(sys.modules, "wasmkernel_modules", None)  # not installed
    assert main(["--registry", none, "init", str(tmp_path / "without")]) == 1
    assert "pip install 'wasmkernel[standard]'" in capsys.readouterr().err
    assert not (tmp_path / "without").exists()


def test_a_scaffolded_plugin_is_publishable(tmp_path: Path, registry: str) -> None:
    assert main(["--registry", registry, "new-plugin", "greeter", "--directory", str(tmp_path / "greeter")]) == 0
    text = (tmp_path / "greeter" / "pyproject.toml").read_text()
    assert f'"wasmkernel{kernel_bounds()}"' in text and '"Framework :: WasmKernel"' in text and "strict = true" in text
    assert (tmp_path / "greeter" / "wasmkernel_greeter" / "py.typed").is_file()
