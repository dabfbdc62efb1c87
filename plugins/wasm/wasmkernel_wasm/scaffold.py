"""`wasmkernel new-module NAME --lang L --kind K`: a guest module folder from
the templates in ``templates/module/<lang>-<kind>/`` that builds with
``wasmkernel wasm build PATH`` and serves as generated, and the registry
lines that enable it (``templates/module/registry/<kind>.toml``).

The folder names its SDK portably (the Rust crate as ``wasmkernel-guest =
"0.1"``, the C header as ``wasmkernel.h``, AssemblyScript as
``sdk-as/wasmkernel``): the build script of the ``wasmkernel-modules``
package supplies them, so a module folder builds wherever it is."""

from __future__ import annotations

import string
from pathlib import Path

import attrs
from wasmkernel_scaffold import check_name, render_templates

TEMPLATES = Path(__file__).parent / "templates" / "module"
LANGUAGES = ("rust", "c", "assemblyscript", "python", "javascript")
KINDS = ("compute", "http", "filter", "wasi")
#: Languages whose modules are WASI 0.2 components (served by the components plugin): their kinds.
COMPONENT_LANGUAGES = {"python": ("http",), "javascript": ("http",)}


@attrs.frozen
class Scaffolded:
    """A created module folder, where `wasmkernel wasm build` puts its binary
    (`wasm`, relative to the registry's directory) and the registry lines
    that enable it."""

    directory: Path
    wasm: str
    registry_lines: str


def scaffold_module(name: str, lang: str, kind: str, project: Path, directory: Path | None = None) -> Scaffolded:
    """Create module `name` in `directory` (default ``<project>/wasm_modules/<name>``);
    `project` is the registry's directory, whose ``wasm_modules/dist/`` gets
    the binary. `ValueError` for a bad name, language or kind;
    `FileExistsError` if `directory` is not empty."""
    check_name(name, "module")
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if lang in COMPONENT_LANGUAGES and kind not in COMPONENT_LANGUAGES[lang]:
        raise ValueError(f"{lang} modules are WASI 0.2 components of kind {', '.join(COMPONENT_LANGUAGES[lang])} only (served by the components plugin)")
    target = (directory or project / "wasm_modules" / name).resolve()
    render_templates(TEMPLATES / f"{lang}-{kind}", target, {"name": name, "kind": kind})
    wasm = f"wasm_modules/dist/{target.name}.wasm"
    registry = f"component-{kind}" if lang in COMPONENT_LANGUAGES else kind
    lines = string.Template((TEMPLATES / "registry" / f"{registry}.toml").read_text(encoding="utf-8")).substitute(name=name, wasm=wasm)
    return Scaffolded(target, wasm, lines)
