"""The scaffold plugin: ``wasmkernel new-plugin NAME [--directory DIR]``
creates a plugin package (``templates/plugin``) that passes its own tests.

Config: none (it only contributes a command).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wasmkernel import Command, hookimpl
from wasmkernel_scaffold.render import check_name, render_templates

TEMPLATES = Path(__file__).parent / "templates"


def scaffold_plugin(name: str, directory: str | Path | None = None) -> Path:
    """Create the package for plugin `name`; returns its directory."""
    check_name(name, "plugin")
    target = Path(directory) if directory else Path("plugins") / name
    return render_templates(TEMPLATES / "plugin", target, {"name": name, "package": "wasmkernel_" + name.replace("-", "_")})


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


class Plugin:
    order = 90

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return [Command("new-plugin", "scaffold a third-party plugin package", new_plugin, _arguments)]
