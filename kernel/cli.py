"""The `wasmkernel` command line: `run`, and the commands of the registry's
enabled plugins (`wasmkernel_commands`; e.g. introspect's `plugins`,
`routes`, `check`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import attrs

from kernel import plugins as plugin_loading
from kernel.app import Application
from kernel.commands import Command
from kernel.errors import StartupError
from kernel.registry import PluginEntry, Registry, load_registry
from kernel.server import READ_TIMEOUT, hypercorn_config, serve

DEFAULT_BIND = "127.0.0.1:8000"


def cmd_run(args: argparse.Namespace) -> int:
    app = Application.assemble(load_registry(args.registry))  # fail fast, in this process, with a clear message
    config = hypercorn_config(args.bind or [DEFAULT_BIND], args.workers, args.reload, args.read_timeout)
    layout = f"{config.workers} worker process(es)" if config.workers else "in this process"
    print(f"wasmkernel: serving {app.registry.path} on {', '.join(config.bind)} ({layout})", file=sys.stderr)
    return serve(str(app.registry.path), config, app)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", action="append", help=f"HOST:PORT to listen on (repeatable; default {DEFAULT_BIND})")
    parser.add_argument("--workers", type=int, default=0, help="worker processes under hypercorn's process manager (default 0: serve in this process)")
    parser.add_argument("--reload", action="store_true", help="restart workers when source files change")
    parser.add_argument(
        "--read-timeout",
        type=int,
        default=READ_TIMEOUT,
        help=f"seconds a connection may send nothing, also while its request is answered (default {READ_TIMEOUT})",
    )


RUN = Command("run", "serve the registry's application under hypercorn (trio worker)", cmd_run, _run_arguments)


def _plugin_commands(registry_path: str | None) -> tuple[list[Command], str]:
    """Commands contributed by the registry's enabled plugins (and those they
    require), and where they came from (or why there are none: the kernel's
    own commands still work). When the plugins do not load together (one is
    missing, their order has a cycle), each loads on its own: the commands of
    those that do (`check`, say) can still tell what is wrong."""
    try:
        registry = load_registry(registry_path)
    except StartupError as exc:
        return [], f"plugins' commands are missing: {exc}"
    try:
        loaded = plugin_loading.load_enabled(registry, plugin_loading.new_manager())
    except StartupError:
        loaded = [plugin for entry in registry.plugins if entry.enabled for plugin in _load_alone(registry, entry)]
    commands: list[Command] = []
    for plugin in {plugin.name: plugin for plugin in loaded}.values():  # a plugin required by several is asked once
        _, found = plugin.call("wasmkernel_commands")
        commands += found or ()
    return commands, f"plugins' commands from {registry.path}"


def _load_alone(registry: Registry, entry: PluginEntry) -> list[plugin_loading.LoadedPlugin]:
    """Plugin `entry` and those it requires, or nothing if they do not load."""
    try:
        return plugin_loading.load_enabled(attrs.evolve(registry, plugins=(entry,)), plugin_loading.new_manager())
    except StartupError:
        return []


def build_parser(registry_path: str | None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the names of its commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=registry_path, help="plugin registry file (default: $WASMKERNEL_REGISTRY or ./plugin_registry.toml)")
    plugin_commands, origin = _plugin_commands(registry_path)
    parser = argparse.ArgumentParser(prog="wasmkernel", description="A plugin-based microkernel web backend.", parents=[common], epilog=origin)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = [RUN, *plugin_commands]
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
