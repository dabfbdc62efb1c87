"""The wasmer-loader plugin: offers the WebAssembly host a module loader backed by wasmer 1.1.

Config (``[plugins.wasmer-loader.config]``): `wasmkernel_wasmer_loader.loader.WasmerConfig`
(`wasmkernel_wasm.config.LoaderConfig`, plus `python` and `environment`).
Here `workers` are warm worker processes on Python 3.10 (a module that
crashes or runs away takes only its worker down), `compiler` is "cranelift"
or "singlepass", `prewarm` starts the workers and loads every module at
startup, and `python`/`environment` name the workers' interpreter and
environment (default: found or created, see `environment`).

Commands (from the `wasm` plugin): ``wasmkernel wasm list | reload NAME | build``.
"""

from __future__ import annotations

from pathlib import Path

from wasmkernel_wasm.config import LoaderConfig
from wasmkernel_wasm.plugin import LoaderPlugin

from wasmkernel import Application
from wasmkernel_wasmer_loader.loader import COMPILERS, WasmerConfig, WasmerLoader


class Plugin(LoaderPlugin):
    config_class = WasmerConfig
    compilers = COMPILERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> WasmerLoader:
        return WasmerLoader(config, base, app)
