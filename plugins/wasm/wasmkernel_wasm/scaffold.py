"""The template sets this plugin contributes to the scaffold plugin's
``wasmkernel new-module`` (`wasmkernel_module_templates`): a guest module
folder for each language and kind, ``templates/module/<lang>-<kind>/``, that
builds with ``wasmkernel wasm build PATH`` and serves as generated, and the
registry lines that enable it (``templates/module/registry/<kind>.toml``).

The folder names its SDK portably (the Rust crate as ``wasmkernel-guest =
"0.1"``, the C header as ``wasmkernel.h``, AssemblyScript as
``sdk-as/wasmkernel``): the build script of the ``wasmkernel-modules``
package supplies them, so a module folder builds wherever it is."""

from __future__ import annotations

from pathlib import Path

from wasmkernel_scaffold import ModuleTemplate

TEMPLATES = Path(__file__).parent / "templates" / "module"
LANGUAGES = ("rust", "c", "assemblyscript")
KINDS = ("compute", "http", "filter", "wasi")
#: Languages whose modules are WASI 0.2 components of kind http (served by the components plugin).
COMPONENT_LANGUAGES = ("python", "javascript")


def module_templates() -> list[ModuleTemplate]:
    """Every (language, kind) this plugin scaffolds: the core-module
    languages in every kind, then the component languages' http handlers."""
    core = [ModuleTemplate(lang, kind, TEMPLATES / f"{lang}-{kind}", TEMPLATES / "registry" / f"{kind}.toml") for lang in LANGUAGES for kind in KINDS]
    components = [ModuleTemplate(lang, "http", TEMPLATES / f"{lang}-http", TEMPLATES / "registry" / "component-http.toml") for lang in COMPONENT_LANGUAGES]
    return core + components
