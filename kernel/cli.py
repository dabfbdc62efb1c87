"""The `wasmkernel` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kernel import plugins as plugin_loading
from kernel.app import Application
from kernel.commands import Command
from kernel.errors import StartupError
from kernel.registry import default_registry_path, load_registry
from kernel.server import READ_TIMEOUT, hypercorn_config, serve


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, ["-" * w for w in widths], *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _assemble(args: argparse.Namespace) -> Application:
    """The registry's application for listing and checking: unset secrets get
    placeholders (reported), so no secret is needed to look at it."""
    app = Application.assemble(load_registry(args.registry), secrets="placeholder")
    for unset in app.unset_secrets or ():
        print(f"note: unset secret {unset} (wasmkernel run refuses to start without it)", file=sys.stderr)
    return app


def _print_chain(app: Application, owners: bool = False) -> None:
    chain = " -> ".join(f"{m.name} ({m.owner})" if owners else m.name for m in app.middleware) or "(none)"
    print(f"\nmiddleware chain (outermost first): {chain} -> endpoint")


def cmd_check(args: argparse.Namespace) -> int:
    app = _assemble(args)
    failed = 0
    for plugin in app.plugins:
        try:
            _, lines = plugin.call("wasmkernel_check", app=app)
        except Exception as exc:
            failed += 1
            print(f"{plugin.name}: FAILED: {exc}", file=sys.stderr)
            continue
        for line in lines or ():
            print(f"{plugin.name}: {line}")
    if failed:
        return 1
    print(f"{app.registry.path}: OK — {len(app.plugins)} plugins enabled, {len(app.router.routes)} routes, {len(app.middleware)} middleware")
    return 0


def _placement(plugin: plugin_loading.LoadedPlugin) -> str:
    entry = plugin.entry
    parts = [f"order={entry.order}"] + [f"{key}={','.join(getattr(entry, key))}" for key in ("before", "after") if getattr(entry, key)]
    sources = sorted(set(entry.sources.values()))
    return " ".join(parts) + (f" ({'/'.join(sources)})" if sources else "")


def cmd_plugins(args: argparse.Namespace) -> int:
    try:
        app: Application | None = _assemble(args)
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        app = None
    enabled = {plugin.name: (index, plugin) for index, plugin in enumerate(app.plugins if app else (), 1)}
    rows = []
    for name, installed in sorted(plugin_loading.installed_plugins().items(), key=lambda item: (enabled.get(item[0], (999,))[0], item[0])):
        if name in enabled:
            index, plugin = enabled[name]
            state = "yes" if name in {entry.name for entry in app.registry.plugins if entry.enabled} else "required"  # type: ignore[union-attr]
            hooks = ", ".join(h.removeprefix("wasmkernel_") for h in plugin.hooks())
            rows.append([name, plugin_loading.version(installed), state, str(index), _placement(plugin), hooks])
        else:
            rows.append([name, plugin_loading.version(installed), "no", "-", "", ""])
    _print_table(["plugin", "version", "enabled", "position", "placement (from)", "hooks"], rows)
    if app is None:
        return 1
    _print_chain(app, owners=True)
    print("startup order: " + ", ".join(plugin.name for plugin in app.startup_order()))
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    app = _assemble(args)
    rows = [
        [",".join(route.methods), route.path, route.name, route.owner, route.auth.describe() if route.auth else "public"]
        for route in sorted(app.routes, key=lambda r: (r.path, r.methods))
    ]
    _print_table(["methods", "path", "name", "plugin", "auth"], rows)
    _print_chain(app)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    app = Application.assemble(load_registry(args.registry))  # fail fast, in this process, with a clear message
    config = hypercorn_config(args.bind, args.workers, args.reload, args.read_timeout)
    layout = f"{config.workers} worker process(es)" if config.workers else "in this process"
    print(f"wasmkernel: serving {args.registry or default_registry_path()} on {', '.join(config.bind)} ({layout})", file=sys.stderr)
    return serve(str(args.registry or default_registry_path()), config, app)


def _kernel_commands() -> list[Command]:
    def run_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bind", action="append", default=None, help="HOST:PORT to listen on (repeatable; default 127.0.0.1:8000)")
        parser.add_argument("--workers", type=int, default=0, help="worker processes under hypercorn's process manager (default 0: serve in this process)")
        parser.add_argument("--reload", action="store_true", help="restart workers when source files change")
        parser.add_argument(
            "--read-timeout",
            type=int,
            default=READ_TIMEOUT,
            help=f"seconds a connection may send nothing, also while its request is answered (default {READ_TIMEOUT})",
        )

    return [
        Command("run", "serve the registry's application under hypercorn (trio worker)", cmd_run, run_arguments),
        Command("check", "validate the registry: plugins installed, configs valid, routes consistent", cmd_check),
        Command("plugins", "installed and enabled plugins, their hooks and the middleware chain", cmd_plugins),
        Command("routes", "every route: methods, path, owning plugin, auth requirement", cmd_routes),
    ]


def _plugin_commands(registry_path: str | None) -> tuple[list[Command], str]:
    """Commands contributed by the registry's enabled plugins, and where they
    came from (or why there are none: the kernel's own commands still work)."""
    try:
        registry = load_registry(registry_path)
        manager = plugin_loading.new_manager()
        loaded = plugin_loading.load_enabled(registry, manager)
    except StartupError as exc:
        return [], f"plugins' commands are missing: {exc}"
    commands: list[Command] = []
    for plugin in loaded:
        _, found = plugin.call("wasmkernel_commands")
        commands += found or ()
    return commands, f"plugins' commands from {registry.path}"


def build_parser(registry_path: str | None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the names of its commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=registry_path, help="plugin registry file (default: $WASMKERNEL_REGISTRY or ./plugin_registry.toml)")
    plugin_commands, origin = _plugin_commands(registry_path)
    parser = argparse.ArgumentParser(prog="wasmkernel", description="A plugin-based microkernel web backend.", parents=[common], epilog=origin)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = [*_kernel_commands(), *plugin_commands]
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser, [command.name for command in commands]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--registry", default=None)
    known, _ = pre.parse_known_args(argv)
    parser, commands = build_parser(known.registry)
    wanted = next((arg for arg in argv if not arg.startswith("-") and arg != known.registry), None)
    if wanted is not None and wanted not in commands:
        print(f"wasmkernel: no command '{wanted}'; {parser.epilog}", file=sys.stderr)
    args = parser.parse_args(argv)
    if getattr(args, "bind", ()) is None:
        args.bind = ["127.0.0.1:8000"]
    try:
        return int(args.handler(args))
    except StartupError as exc:  # one clear line, no traceback
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
