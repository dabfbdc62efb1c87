"""The host's service keys: ``app.services.get(MODULE_LOADER, needed_by="my-plugin")``."""

from __future__ import annotations

from wasmkernel import ServiceKey
from wasmkernel_wasm import ModuleLoader
from wasmkernel_wasm.hostapi.capability import HostCapabilities

MODULE_LOADER: ServiceKey[ModuleLoader] = ServiceKey("module loader", hint="enable wasmer-loader or wasmtime-loader")
#: Every host capability the enabled plugins contribute (`wasmkernel_host_capabilities`), collected once by the wasm plugin.
HOST_CAPABILITIES: ServiceKey[HostCapabilities] = ServiceKey("table of host capabilities", hint="enable the wasm plugin")
