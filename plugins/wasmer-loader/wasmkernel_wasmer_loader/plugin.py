"""The wasmer-loader plugin: offers the WebAssembly host a module loader backed by wasmer 1.1.

Config (``[plugins.wasmer-loader.config]``): engine settings only,
`wasmkernel_wasmer_loader.loader.WasmerConfig` (`wasmkernel_wasm.config.EngineConfig`,
plus `python` and `environment`); the modules, routes and filters are the
host's (``[plugins.wasm.config]``), so switching to wasmtime-loader is
renaming this section's header.
Here `workers` are warm worker processes on Python 3.10 (a module that
crashes or runs away takes only its worker down), `compiler` is "cranelift"
or "singlepass", `prewarm` starts the workers and loads every module as
serving starts (not ready until they are), and `python`/`environment` (optional) name the workers' interpreter and
environment (default: found or created, see `environment`).

Commands (from the `wasm` plugin): ``wasmkernel wasm list | reload NAME | build``.
"""

from __future__ import annotations

from pathlib import Path

from wasmkernel_wasm.engine import LoaderConfig, LoaderPlugin

from wasmkernel import Application
from wasmkernel_wasmer_loader.loader import COMPILERS, WasmerConfig, WasmerLoader


class Plugin(LoaderPlugin):
    config_class = WasmerConfig
    compilers = COMPILERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> WasmerLoader:
        return WasmerLoader(config, base, app, self.config if isinstance(self.config, WasmerConfig) else None)
