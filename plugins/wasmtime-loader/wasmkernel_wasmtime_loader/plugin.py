"""The wasmtime-loader plugin: offers the WebAssembly host a module loader backed by wasmtime.

Config (``[plugins.wasmtime-loader.config]``): engine settings only,
`wasmkernel_wasm.config.EngineConfig`, the same as wasmer-loader's; the
modules, routes and filters are the host's (``[plugins.wasm.config]``), so
the loader is swapped by renaming this section's header. Here `workers` are threads, `compiler` is "cranelift" (the only one)
and `prewarm` instantiates every module once at startup.

Commands (from the `wasm` plugin): ``wasmkernel wasm list | reload NAME | build``.
"""

from __future__ import annotations

from pathlib import Path

from wasmkernel_wasm.engine import LoaderConfig, LoaderPlugin

from wasmkernel import Application
from wasmkernel_wasmtime_loader.loader import COMPILERS, WasmtimeLoader


class Plugin(LoaderPlugin):
    compilers = COMPILERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> WasmtimeLoader:
        return WasmtimeLoader(config, base, app)
