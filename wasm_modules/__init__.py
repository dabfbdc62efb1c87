"""WasmKernel's guest side as a package (distribution ``wasmkernel-modules``,
built from the repository's ``wasm_modules/``): what module authors build with
and what ``wasmkernel init`` serves without a compiler.

- `BUILD_SCRIPT`: ``build.sh``, which builds module folders anywhere (Rust, C,
  AssemblyScript) into ``<folder>.wasm`` with the SDKs next to it: ``sdk/`` (the
  Rust crate ``wasmkernel-guest``), ``sdk-c/wasmkernel.h``, ``sdk-as/``.
- `PREBUILT`: the example modules, built from their sources in the repository
  (``manifest.txt`` records each one's source digest and SHA-256).
- `REGISTRY`: the default registry, which serves them from ``wasm_modules/dist/``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD_SCRIPT = ROOT / "build.sh"
PREBUILT = ROOT / "dist"
REGISTRY = ROOT / "plugin_registry.toml"

__all__ = ["BUILD_SCRIPT", "PREBUILT", "REGISTRY", "ROOT"]
