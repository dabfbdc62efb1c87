"""The host's services: ``app.services.get(MODULE_LOADER, needed_by="my-plugin")``
for the loader, `MODULE_TABLE` for the declared modules (``[plugins.wasm.config]``)."""

from __future__ import annotations

from wasmkernel import ServiceKey
from wasmkernel_wasm import ModuleLoader
from wasmkernel_wasm.config import ModuleTable

MODULE_LOADER: ServiceKey[ModuleLoader] = ServiceKey("module loader", hint="enable wasmer-loader or wasmtime-loader")
MODULE_TABLE: ServiceKey[ModuleTable] = ServiceKey("WebAssembly module table", hint="enable the wasm plugin")
