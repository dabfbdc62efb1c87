"""``wasmkernel init DIR``: a project folder that serves as written — the
default registry and the prebuilt example modules it names, both from the
``wasmkernel-modules`` package (installed by ``wasmkernel[standard]``), so
serving needs no compiler."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

#: The WebAssembly loaders `init` can write the registry for; the first is the
#: default (wasmtime runs on any CPython 3; Wasmer 1.1 only on CPython 3.10).
LOADERS = ("wasmtime-loader", "wasmer-loader")
_LOADER_TABLES = re.compile(r"^(\[\[?plugins\.)(?:wasmer|wasmtime)-loader\b", re.MULTILINE)
_MODULE_FILES = re.compile(r'"wasm_modules/dist/([^"/]+\.wasm)"')
_IGNORED = ".wasmkernel/\n"  # compile cache and data (SQLite) the plugins write next to the registry


def init_project(directory: Path, loader: str = LOADERS[0]) -> list[str]:
    """Write ``plugin_registry.toml`` (the default registry, served by `loader`)
    and the modules it names (``wasm_modules/dist/*.wasm``) into `directory`,
    which must not exist or be empty; returns the modules' file names.
    `LookupError` without the wasmkernel-modules package (or a module it lacks)."""
    if loader not in LOADERS:
        raise ValueError(f"unknown loader {loader!r}: expected one of {', '.join(LOADERS)}")
    try:
        import wasmkernel_modules
    except ImportError:
        raise LookupError("wasmkernel init needs the example modules: pip install 'wasmkernel[standard]'") from None
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} already exists and is not empty")
    registry = _LOADER_TABLES.sub(rf"\g<1>{loader}", wasmkernel_modules.REGISTRY.read_text(encoding="utf-8"))
    modules = sorted(set(_MODULE_FILES.findall(registry)))
    missing = [name for name in modules if not (wasmkernel_modules.PREBUILT / name).is_file()]
    if missing:
        raise LookupError(f"the wasmkernel-modules package in {wasmkernel_modules.ROOT} has no prebuilt {', '.join(missing)}")
    dist = directory / "wasm_modules" / "dist"
    dist.mkdir(parents=True)
    for name in modules:
        shutil.copyfile(wasmkernel_modules.PREBUILT / name, dist / name)
    (directory / "plugin_registry.toml").write_text(registry, encoding="utf-8")
    (directory / ".gitignore").write_text(_IGNORED, encoding="utf-8")
    return modules
