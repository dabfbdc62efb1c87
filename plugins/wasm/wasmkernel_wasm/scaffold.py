"""`wasmkernel new-module NAME --lang L --kind K`: a guest module folder from
the templates in ``templates/module/<lang>-<kind>/`` that builds with
``wasmkernel wasm build PATH`` and serves as generated, and the registry
lines that enable it (``templates/module/registry/<kind>.toml``)."""

from __future__ import annotations

import os
import string
from pathlib import Path

import attrs
from wasmkernel_scaffold import check_name, render_templates

TEMPLATES = Path(__file__).parent / "templates" / "module"
LANGUAGES = ("rust", "c", "assemblyscript", "python", "javascript")
KINDS = ("compute", "http", "filter", "wasi")
#: Languages whose modules are WASI 0.2 components (served by the components plugin): their kinds.
COMPONENT_LANGUAGES = {"python": ("http",), "javascript": ("http",)}
LOADERS = ("wasmer-loader", "wasmtime-loader")


@attrs.frozen
class Scaffolded:
    """A created module folder, where `wasmkernel wasm build` puts its binary
    (`wasm`, relative to the registry's directory when inside it) and the
    registry lines that enable it."""

    directory: Path
    wasm: str
    registry_lines: str


def _reference(target: Path, root: Path, path: Path) -> str:
    """`path` as the module folder `target` should refer to it: relative inside
    the project (the folder moves with it), absolute from elsewhere."""
    return os.path.relpath(path, target) if target.is_relative_to(root) else str(path)


def scaffold_module(name: str, lang: str, kind: str, project: Path, directory: Path | None = None, loader: str = LOADERS[0]) -> Scaffolded:
    """Create module `name` in `directory` (default ``<project>/wasm_modules/<name>``);
    `project` is the registry's directory, holding ``wasm_modules/`` (build
    script, SDKs). `ValueError` for a bad name, language, kind or project;
    `FileExistsError` if `directory` is not empty."""
    check_name(name, "module")
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if lang in COMPONENT_LANGUAGES and kind not in COMPONENT_LANGUAGES[lang]:
        raise ValueError(f"{lang} modules are WASI 0.2 components of kind {', '.join(COMPONENT_LANGUAGES[lang])} only (served by the components plugin)")
    modules = (project / "wasm_modules").resolve()
    if not (modules / "build.sh").is_file():
        raise ValueError(f"no wasm_modules/build.sh next to the registry in {project}: run new-module with that project's --registry")
    target = (directory or modules / name).resolve()
    root = project.resolve()
    values = {
        "name": name,
        "kind": kind,
        "rust_sdk": _reference(target, root, modules / "sdk"),
        # asc resolves only relative imports to files (an absolute one means its ~lib)
        "as_sdk": os.path.relpath(modules / "sdk-as" / "wasmkernel", target / "assembly"),
        "as_sdk_wasi": os.path.relpath(modules / "sdk-as" / "wasi", target / "assembly"),
    }
    render_templates(TEMPLATES / f"{lang}-{kind}", target, values)
    binary = modules / "dist" / f"{target.name}.wasm"
    wasm = str(binary.relative_to(root)) if binary.is_relative_to(root) else str(binary)
    registry = f"component-{kind}" if lang in COMPONENT_LANGUAGES else kind
    lines = string.Template((TEMPLATES / "registry" / f"{registry}.toml").read_text(encoding="utf-8")).substitute(name=name, wasm=wasm, loader=loader)
    return Scaffolded(target, wasm, lines)
