"""The scaffold plugin: ``wasmkernel new-plugin NAME [--directory DIR]``
creates a plugin package (``templates/plugin``) that passes its own tests;
``wasmkernel init DIR`` a project that serves (see `project`);
``wasmkernel new-module NAME --lang L --kind K`` a guest module from the
template sets plugins contribute (adds `wasmkernel_module_templates`, see
`modules`).

Config: none (it only contributes commands).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pluggy

from wasmkernel import Command, Hooks, __version__, hookimpl
from wasmkernel_scaffold import hookspecs
from wasmkernel_scaffold.modules import new_module_command
from wasmkernel_scaffold.project import LOADERS, init_project
from wasmkernel_scaffold.render import check_name, render_templates

TEMPLATES = Path(__file__).parent / "templates"


def kernel_bounds(version: str = __version__) -> str:
    """The requirement a plugin built against kernel `version` states: that
    minor release onwards, below the next breaking one (the next minor in 0.x)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def scaffold_plugin(name: str, directory: str | Path | None = None) -> Path:
    """Create the package for plugin `name`; returns its directory."""
    check_name(name, "plugin")
    target = Path(directory) if directory else Path("plugins") / name
    values = {"name": name, "package": "wasmkernel_" + name.replace("-", "_"), "kernel_bounds": kernel_bounds()}
    return render_templates(TEMPLATES / "plugin", target, values)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="plugin name, e.g. hello-world")
    parser.add_argument("--directory", default=None, help="where to create it (default: ./plugins/<name>)")


def new_plugin(args: argparse.Namespace) -> int:
    try:
        target = scaffold_plugin(args.name, args.directory)
    except (ValueError, FileExistsError) as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    print(f"created {target}\nnext: pip install -e {target} && enable it in plugin_registry.toml under [plugins.{args.name}]")
    return 0


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="the project folder to create (must not exist or be empty)")
    parser.add_argument("--loader", default=LOADERS[0], choices=LOADERS, help=f"the WebAssembly loader the registry enables (default: {LOADERS[0]})")


def init(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    try:
        modules = init_project(target, args.loader)
    except (ValueError, LookupError, FileExistsError) as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    print(f"created {target}: plugin_registry.toml ({args.loader}) and {len(modules)} prebuilt modules in wasm_modules/dist/")
    print(f"""next:
  cd {target}
  export WASMKERNEL_JWT_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
  wasmkernel run                    # http://127.0.0.1:8000/hello/world (a module), /hello, /docs
  wasmkernel new-module greeter --lang c --kind http && wasmkernel wasm build wasm_modules/greeter""")
    return 0


class Plugin:
    order = 90

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(hookspecs)

    @hookimpl
    def wasmkernel_commands(self, hooks: Hooks) -> list[Command]:
        return [
            Command("new-plugin", "scaffold a third-party plugin package", new_plugin, _arguments),
            Command("init", "create a project folder that serves: the default registry and its prebuilt modules", init, _init_arguments),
            new_module_command((plugin.name, template) for plugin, template in hooks.gather("wasmkernel_module_templates")),
        ]
