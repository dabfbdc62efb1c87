"""The `wasmkernel wasm` command (list, reload, build)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from wasmkernel_introspect import listed_application, print_table, quiet_logs
from wasmkernel_modules import BUILD_SCRIPT

from wasmkernel import Command, StartupError, default_registry_path
from wasmkernel_wasm import MODULE_LOADER, ModuleLoader


def _loader_of(args: argparse.Namespace) -> ModuleLoader:
    return listed_application(args.registry).services.get(MODULE_LOADER, needed_by="wasm")


def _wasm_list(args: argparse.Namespace) -> int:
    try:
        with quiet_logs():
            infos = _loader_of(args).prepare()
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    rows = [[i.name, i.kind, str(i.size), i.sha256[:12], i.compiler, i.cache, " ".join(e for e in i.exports if not e.startswith("__"))] for i in infos]
    print_table(["name", "kind", "size", "sha256", "compiler", "cache", "exports"], rows)
    return 0


def _wasm_reload(args: argparse.Namespace) -> int:
    try:
        loader = _loader_of(args)
        (info,) = loader.prepare(args.name)
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    os.utime(info.path)
    print(f"{info.name}: compiled into the cache ({info.cache}); touched {info.path} so a running server reloads it")
    return 0


def _wasm_build(args: argparse.Namespace) -> int:
    """The build script of the wasmkernel-modules package (its SDKs beside it) on
    the module folders in ``wasm_modules/`` next to the registry, or on PATHs."""
    modules = Path(args.registry or default_registry_path()).resolve().parent / "wasm_modules"
    script = Path(args.script) if args.script else BUILD_SCRIPT
    if not script.is_file():
        print(f"wasmkernel: build script not found: {script}", file=sys.stderr)
        return 1
    out = ["--out", args.out] if args.out else []
    components = ["--components"] if args.components else []
    return subprocess.call(["bash", str(script), "--in", str(modules), *args.crates, *out, *components])


def _wasm_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="wasm_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="declared modules: kind, size, sha256, exports, cache state").set_defaults(wasm_handler=_wasm_list)
    reload = actions.add_parser("reload", help="recompile NAME into the cache and touch its file (a running server reloads it)")
    reload.add_argument("name")
    reload.set_defaults(wasm_handler=_wasm_reload)
    build = actions.add_parser(
        "build", help="build guest modules (Rust, C, AssemblyScript; Python, JavaScript, Spin components) in wasm_modules/ next to the registry, or PATHs"
    )
    build.add_argument("crates", nargs="*", metavar="MODULE", help="only these modules: names in wasm_modules/ or module folders anywhere (PATH)")
    build.add_argument("--out", default=None, help="write DIR/<folder>.wasm (default: wasm_modules/dist next to the registry)")
    build.add_argument("--script", default=None, help="build script (default: the wasmkernel-modules package's build.sh)")
    build.add_argument("--components", action="store_true", help="also build every component folder (Python, JavaScript, Spin: minutes the first time)")
    build.set_defaults(wasm_handler=_wasm_build)


def wasm_commands() -> list[Command]:
    """``wasmkernel wasm list|reload|build`` (the host's `wasmkernel_commands`)."""
    return [
        Command("wasm", "WebAssembly modules: list, reload NAME, build", lambda args: int(args.wasm_handler(args)), _wasm_arguments),
    ]
