from __future__ import annotations

from pathlib import Path

import pytest

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
