"""The kernel's command line: the built-in plugins' commands (`run`, `check`,
`plugins`, `routes`, `new-plugin`, `init`, `new-module`) are always there; every other command
comes from a plugin the registry enables (`wasmkernel_commands`)."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

import pytest

import wasmkernel
from wasmkernel.cli import main


@pytest.mark.parametrize("command", ["run", "check", "plugins", "routes", "new-plugin", "init", "new-module"])
def test_built_in_commands_need_no_plugin_in_the_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n")
    with pytest.raises(SystemExit) as exited:
        main(["--registry", str(registry), command, "--help"])
    assert exited.value.code == 0
    assert f"wasmkernel {command}" in capsys.readouterr().out


def test_built_in_commands_remain_when_the_registry_does_not_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.not-installed]\n")
    assert main(["check", "--registry", str(registry)]) == 1
    assert "plugin 'not-installed' is enabled in" in capsys.readouterr().err


def test_a_command_no_enabled_plugin_contributes_names_the_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n")
    with pytest.raises(SystemExit):
        main(["token", "--registry", str(registry)])
    assert f"no command 'token'; plugins' commands from {registry}" in capsys.readouterr().err


def test_version_names_the_kernel_python_and_the_enabled_plugins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.health]\n[plugins.scaffold]\nenabled = false\n")
    assert main(["--registry", str(registry), "--version"]) == 0
    kernel, plugins = capsys.readouterr().out.splitlines()
    assert kernel == f"wasmkernel {wasmkernel.__version__} ({platform.python_implementation()} {platform.python_version()})"
    assert plugins.startswith(f"plugins ({registry}): router {importlib.metadata.version('wasmkernel-router')}, health ")
    assert "introspect" in plugins and "scaffold" not in plugins
    assert main(["--registry", str(tmp_path / "none.toml"), "--version"]) == 0
    assert "plugins: none (" in capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_covers_the_registrys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], shell: str) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n[plugins.auth-jwt.config]\nsecret = 'x'\n")
    with pytest.raises(SystemExit) as exited:
        main(["--registry", str(registry), "--print-completion", shell])
    assert exited.value.code == 0
    script = capsys.readouterr().out
    assert all(command in script for command in ("new-plugin", "routes", "token", "--registry"))
