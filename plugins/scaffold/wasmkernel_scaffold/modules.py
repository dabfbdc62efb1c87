"""``wasmkernel new-module NAME --lang L --kind K``: a guest module folder
from the template set an enabled plugin contributes for (L, K)
(`wasmkernel_module_templates`) and the registry lines that enable it.

The module goes where ``wasmkernel wasm build`` looks, ``wasm_modules/<name>``
next to the registry (or ``--directory``), and its binary to
``wasm_modules/dist/<folder>.wasm`` there."""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Iterable
from pathlib import Path

import attrs

from wasmkernel import Command, load_registry
from wasmkernel_scaffold.render import check_name, render_templates

#: The plugin whose templates a registry without any enables (Rust, C, AssemblyScript; Python, JavaScript).
PROVIDER = "wasm"


@attrs.frozen
class ModuleTemplate:
    """A plugin's template set for modules in `lang` of `kind`: the ``*.tmpl``
    files under `files` (``${name}``, ``${kind}`` in contents, ``__name__``
    in paths) and `registry`, the registry lines that enable the module
    (``${name}``, ``${wasm}``: its binary, relative to the registry)."""

    lang: str
    kind: str
    files: Path
    registry: Path


@attrs.frozen
class Scaffolded:
    """A created module folder, where `wasmkernel wasm build` puts its binary
    (`wasm`, relative to the registry's directory) and the registry lines
    that enable it."""

    directory: Path
    wasm: str
    registry_lines: str


@attrs.frozen
class ModuleTemplates:
    """The template sets of the enabled plugins, by (language, kind), in plugin order."""

    sets: dict[tuple[str, str], ModuleTemplate]

    @classmethod
    def of(cls, contributed: Iterable[tuple[str, ModuleTemplate]]) -> ModuleTemplates:
        """From (plugin name, template set) pairs; `ValueError` naming both
        plugins for a pair contributed twice, or naming the plugin of a set
        whose files are missing."""
        sets: dict[tuple[str, str], ModuleTemplate] = {}
        owners: dict[tuple[str, str], str] = {}
        for plugin, template in contributed:
            key = (template.lang, template.kind)
            if key in owners:
                raise ValueError(f"plugins '{owners[key]}' and '{plugin}' both contribute the module template for --lang {key[0]} --kind {key[1]}")
            if not (template.files.is_dir() and template.registry.is_file()):
                raise ValueError(f"plugin '{plugin}' contributes a module template for --lang {key[0]} --kind {key[1]} whose files are missing")
            sets[key], owners[key] = template, plugin
        return cls(sets)

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys(lang for lang, _ in self.sets))

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(kind for _, kind in self.sets))

    def scaffold(self, name: str, lang: str, kind: str, project: Path, directory: Path | None = None) -> Scaffolded:
        """Create module `name` in `directory` (default ``<project>/wasm_modules/<name>``);
        `project` is the registry's directory, whose ``wasm_modules/dist/`` gets
        the binary. `ValueError` for a bad name or a (language, kind) no set
        covers; `FileExistsError` if `directory` is not empty."""
        check_name(name, "module")
        if (lang, kind) not in self.sets:
            offered = [other for other_lang, other in self.sets if other_lang == lang]
            raise ValueError(f"no {lang} module template of kind {kind}: {lang} modules are of kind {', '.join(offered)}")
        template = self.sets[lang, kind]
        target = (directory or project / "wasm_modules" / name).resolve()
        render_templates(template.files, target, {"name": name, "kind": kind})
        wasm = f"wasm_modules/dist/{target.name}.wasm"
        lines = string.Template(template.registry.read_text(encoding="utf-8")).substitute(name=name, wasm=wasm)
        return Scaffolded(target, wasm, lines)


def new_module_command(contributed: Iterable[tuple[str, ModuleTemplate]]) -> Command:
    """``wasmkernel new-module``, offering the `contributed` (plugin name, set)
    pairs; a conflict among them, or no set at all, is what it reports."""
    try:
        templates, problem = ModuleTemplates.of(contributed), ""
    except ValueError as exc:
        templates, problem = ModuleTemplates({}), str(exc)

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", help="module name, e.g. my-module")
        parser.add_argument("--lang", required=True, choices=templates.languages or None, help="guest language")
        parser.add_argument("--kind", required=True, choices=templates.kinds or None, help="how the module serves (docs/wasm-abi.md)")
        parser.add_argument("--directory", default=None, help="where to create it (default: wasm_modules/<name> next to the registry)")

    def run(args: argparse.Namespace) -> int:
        registry = load_registry(args.registry)
        try:
            if problem or not templates.sets:
                raise ValueError(problem or f"no enabled plugin contributes module templates: enable [plugins.{PROVIDER}] in {registry.path}")
            made = templates.scaffold(args.name, args.lang, args.kind, registry.path.parent, Path(args.directory) if args.directory else None)
        except (ValueError, FileExistsError) as exc:
            print(f"wasmkernel: {exc}", file=sys.stderr)
            return 1
        print(f"created {made.directory} ({args.lang}, kind {args.kind})")
        print(f"build:  wasmkernel wasm build {made.directory}    # writes {made.wasm}")
        print(f"enable: add to {registry.path}:\n")
        print(made.registry_lines)
        return 0

    offered = ", ".join(templates.languages) or f"enable the {PROVIDER} plugin for templates"
    return Command("new-module", f"scaffold a WebAssembly guest module ({offered}) and print its registry lines", run, arguments)
