"""`wasmkernel new-module` offers the template sets the enabled plugins
contribute (`wasmkernel_module_templates`): choices in plugin order, one
set per (language, kind), and it says what to enable when none is
contributed. The WebAssembly host's own sets are built and served in
plugins/wasm/tests/test_new_module.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from wasmkernel_scaffold import ModuleTemplate

from wasmkernel import Command, hookimpl
from wasmkernel.cli import main
from wasmkernel.testing import app_from


class Contributor:
    def __init__(self, *templates: ModuleTemplate) -> None:
        self.templates = list(templates)

    @hookimpl(optionalhook=True)
    def wasmkernel_module_templates(self) -> list[ModuleTemplate]:
        return self.templates


def template(base: Path, lang: str, kind: str) -> ModuleTemplate:
    """A one-file template set for (lang, kind) under `base`."""
    files = base / f"{lang}-{kind}"
    files.mkdir(parents=True)
    (files / "__name__.txt.tmpl").write_text("${name} is a ${kind} module\n")
    registry = base / f"{lang}-{kind}.toml"
    registry.write_text('[[plugins.x.config.modules]]\nname = "${name}"\npath = "${wasm}"\n')
    return ModuleTemplate(lang, kind, files, registry)


def new_module(contributors: dict[str, Contributor]) -> Command:
    """The scaffold plugin's `new-module` command for an application of `contributors`."""
    app = app_from({"router": {}, **{name: {} for name in contributors}}, extra_plugins=contributors)
    commands: list[Command] = [command for _, command in app.hooks.gather("wasmkernel_commands", hooks=app.hooks)]
    (command,) = (command for command in commands if command.name == "new-module")
    return command


def run(command: Command, registry: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", default=str(registry))
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "project" / "plugin_registry.toml"
    path.parent.mkdir()
    path.write_text("[plugins.router]\n")
    return path


def test_choices_and_files_come_from_the_contributing_plugins(tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = Contributor(template(tmp_path / "one", "zig", "http"), template(tmp_path / "one", "zig", "filter"))
    two = Contributor(template(tmp_path / "two", "go", "http"))
    command = new_module({"one": one, "two": two})
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert "--lang {zig,go} --kind {http,filter}" in parser.format_usage()
    assert run(command, registry, "greeter", "--lang", "go", "--kind", "http") == 0
    created = registry.parent / "wasm_modules" / "greeter"
    assert (created / "greeter.txt").read_text() == "greeter is a http module\n"
    printed = capsys.readouterr().out
    assert printed.startswith(f"created {created} (go, kind http)\nbuild:  wasmkernel wasm build {created}    # writes wasm_modules/dist/greeter.wasm\n")
    assert printed.split(":\n\n", 1)[1] == '[[plugins.x.config.modules]]\nname = "greeter"\npath = "wasm_modules/dist/greeter.wasm"\n\n'
    assert run(command, registry, "greeter2", "--lang", "go", "--kind", "filter") == 1
    assert "no go module template of kind filter: go modules are of kind http" in capsys.readouterr().err


def test_one_pair_from_two_plugins_is_an_error_naming_both(tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = new_module({"one": Contributor(template(tmp_path / "one", "zig", "http")), "two": Contributor(template(tmp_path / "two", "zig", "http"))})
    assert run(command, registry, "greeter", "--lang", "zig", "--kind", "http") == 1
    assert "plugins 'one' and 'two' both contribute the module template for --lang zig --kind http" in capsys.readouterr().err
    assert not (registry.parent / "wasm_modules").exists()


def test_a_set_whose_files_are_missing_names_its_plugin(tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = new_module({"one": Contributor(ModuleTemplate("zig", "http", tmp_path / "absent", tmp_path / "absent.toml"))})
    assert run(command, registry, "greeter", "--lang", "zig", "--kind", "http") == 1
    assert "plugin 'one' contributes a module template for --lang zig --kind http whose files are missing" in capsys.readouterr().err


def test_without_templates_new_module_says_which_plugin_to_enable(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--registry", str(registry), "new-module", "greeter", "--lang", "c", "--kind", "http"]) == 1
    assert f"no enabled plugin contributes module templates: enable [plugins.wasm] in {registry}" in capsys.readouterr().err
    assert not (registry.parent / "wasm_modules").exists()
