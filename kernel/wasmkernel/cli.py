"""The `wasmkernel` command line: the commands of the registry's enabled
plugins (`wasmkernel_commands`), the built-in ones' included: `run`
(server), `check`, `plugins`, `routes` (introspect), `new-plugin`, `init`
(scaffold); `--version`, and `--print-completion SHELL` (shtab) for them."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import shtab

from wasmkernel import plugins as plugin_loading
from wasmkernel.errors import StartupError
from wasmkernel.hooks import Hooks
from wasmkernel.registry import Registry, default_registry_path, load_registry


@attrs.frozen
class Command:
    """A `wasmkernel <name>` subcommand: `add_arguments` configures its argparse
    parser (which has the global `--registry`), `run` gets the parsed
    arguments and returns the exit code."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _plugin_commands(registry_path: str | None) -> tuple[list[Command], str]:
    """The commands of the registry's plugins, and where they came from; when
    the registry or its plugins do not load, the built-in plugins' commands
    (`check` and `run` then tell what is wrong)."""
    path = default_registry_path() if registry_path is None else Path(registry_path)
    manager = plugin_loading.new_manager()
    try:
        loaded = plugin_loading.load_enabled(load_registry(path), manager)
        origin = f"plugins' commands from {path}"
    except StartupError as exc:
        manager = plugin_loading.new_manager()
        loaded = plugin_loading.load_enabled(Registry(path=path, plugins=()), manager)
        origin = f"plugins' commands are missing: {exc}"
    hooks = Hooks(manager, loaded)
    return [command for _, command in hooks.gather("wasmkernel_commands", hooks=hooks)], origin


def build_parser(registry_path: str | None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the names of its commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=registry_path, help="plugin registry file (default: $WASMKERNEL_REGISTRY or ./plugin_registry.toml)")
    commands, origin = _plugin_commands(registry_path)
    parser = argparse.ArgumentParser(prog="wasmkernel", description="A plugin-based microkernel web backend.", parents=[common], epilog=origin)
    parser.add_argument("--version", action="store_true", help="the kernel's, Python's and the enabled plugins' versions")
    shtab.add_argument_to(parser, "--print-completion", help="print a shell completion script for these commands (bash, zsh, tcsh)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser, [command.name for command in commands]


def version(registry_path: str | None) -> str:
    """What `wasmkernel --version` prints: the kernel, Python, the registry's enabled plugins."""
    from wasmkernel import __version__  # the package imports this module

    path = default_registry_path() if registry_path is None else Path(registry_path)
    try:
        names = [plugin.name for plugin in plugin_loading.load_enabled(load_registry(path), plugin_loading.new_manager())]
    except StartupError as exc:
        return f"wasmkernel {__version__} ({platform.python_implementation()} {platform.python_version()})\nplugins: none ({exc})"
    installed = plugin_loading.installed_plugins()
    found = [f"{name} {installed[name].dist.version}" if name in installed and installed[name].dist else name for name in names]  # type: ignore[union-attr]
    return f"wasmkernel {__version__} ({platform.python_implementation()} {platform.python_version()})\nplugins ({path}): {', '.join(found)}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--registry")
    pre.add_argument("--version", action="store_true")
    pre.add_argument("--print-completion")
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if known.version:
        print(version(known.registry))
        return 0
    parser, commands = build_parser(known.registry)
    if known.command is not None and known.command not in commands:
        print(f"wasmkernel: no command '{known.command}'; {parser.epilog}", file=sys.stderr)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except StartupError as exc:  # one clear line, no traceback
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
