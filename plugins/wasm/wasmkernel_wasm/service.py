"""The `MODULE_LOADER` service key: ``app.services.get(MODULE_LOADER, needed_by="my-plugin")``."""

from __future__ import annotations

from wasmkernel import ServiceKey
from wasmkernel_wasm import ModuleLoader

MODULE_LOADER: ServiceKey[ModuleLoader] = ServiceKey("module loader", hint="enable wasmer-loader or wasmtime-loader")
