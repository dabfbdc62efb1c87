"""The `wasmkernel` command line: the commands of the registry's enabled
plugins (`wasmkernel_commands`), built-in ones included (`run`, from the
server plugin)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs

from kernel import plugins as plugin_loading
from kernel.commands import Command
from kernel.errors import StartupError
from kernel.registry import PluginEntry, Registry, default_registry_path, load_registry


def _plugin_commands(registry_path: str | None) -> tuple[list[Command], str]:
    """Commands contributed by the registry's enabled plugins (those they
    require and the built-in ones included), and where they came from. An
    unreadable registry leaves the built-in commands (`run` then tells what is
    wrong). When the plugins do not load together (one is missing, their
    order has a cycle), each loads on its own: the commands of those that do
    (`check`, say) can still tell what is wrong."""
    try:
        registry = load_registry(registry_path)
        origin = f"plugins' commands from {registry.path}"
    except StartupError as exc:
        registry = Registry(path=default_registry_path() if registry_path is None else Path(registry_path), plugins=())
        origin = f"plugins' commands are missing: {exc}"
    try:
        loaded = plugin_loading.load_enabled(registry, plugin_loading.new_manager())
    except StartupError:
        loaded = [plugin for entry in (None, *registry.plugins) if entry is None or entry.enabled for plugin in _load_alone(registry, entry)]
    commands: list[Command] = []
    for plugin in {plugin.name: plugin for plugin in loaded}.values():  # a plugin required by several is asked once
        _, found = plugin.call("wasmkernel_commands")
        commands += found or ()
    return commands, origin


def _load_alone(registry: Registry, entry: PluginEntry | None) -> list[plugin_loading.LoadedPlugin]:
    """Plugin `entry` (None: none) with those it requires and the built-in
    ones, or nothing if they do not load."""
    try:
        return plugin_loading.load_enabled(attrs.evolve(registry, plugins=(entry,) if entry else ()), plugin_loading.new_manager())
    except StartupError:
        return []


def build_parser(registry_path: str | None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the names of its commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=registry_path, help="plugin registry file (default: $WASMKERNEL_REGISTRY or ./plugin_registry.toml)")
    commands, origin = _plugin_commands(registry_path)
    parser = argparse.ArgumentParser(prog="wasmkernel", description="A plugin-based microkernel web backend.", parents=[common], epilog=origin)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser, [command.name for command in commands]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--registry")
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
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
