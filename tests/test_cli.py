"""The kernel's command line: `run` is always there; every other command
comes from a plugin the registry enables (`wasmkernel_commands`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.cli import main


def test_run_needs_no_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n")
    with pytest.raises(SystemExit) as exited:
        main(["--registry", str(registry), "run", "--help"])
    assert exited.value.code == 0
    assert "--bind" in capsys.readouterr().out


def test_a_command_no_enabled_plugin_contributes_names_the_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n")
    with pytest.raises(SystemExit):
        main(["plugins", "--registry", str(registry)])
    assert f"no command 'plugins'; plugins' commands from {registry}" in capsys.readouterr().err
