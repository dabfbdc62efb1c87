"""The host's services: ``app.services.get(MODULE_LOADER, needed_by="my-plugin")``
for the loader, `MODULE_TABLE` for the declared modules (``[plugins.wasm.config]``),
and `module_services` for a plugin serving modules (wasm-http, wasm-filters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wasmkernel import ConfigError, RegistryError, ServiceKey
from wasmkernel_wasm import ModuleLoader
from wasmkernel_wasm.config import ModuleTable
from wasmkernel_wasm.hostapi.capability import HostCapabilities

if TYPE_CHECKING:
    from wasmkernel import Application

MODULE_LOADER: ServiceKey[ModuleLoader] = ServiceKey("module loader", hint="enable wasmer-loader or wasmtime-loader")
#: Every host capability the enabled plugins contribute (`wasmkernel_host_capabilities`), collected once by the wasm plugin.
HOST_CAPABILITIES: ServiceKey[HostCapabilities] = ServiceKey("table of host capabilities", hint="enable the wasm plugin")
MODULE_TABLE: ServiceKey[ModuleTable] = ServiceKey("WebAssembly module table", hint="enable the wasm plugin")


def module_services(app: Application, needed_by: str, check: Callable[[ModuleTable], None]) -> tuple[ModuleLoader, ModuleTable]:
    """The loader and the module table for the plugin `needed_by`, once
    `check(table)` accepted its configuration: a `ConfigError` it raises stops
    startup naming ``[plugins.<needed_by>] config.<key>``."""
    table = app.services.get(MODULE_TABLE, needed_by=needed_by)
    try:
        check(table)
    except ConfigError as exc:
        raise RegistryError(f"{app.registry.where(needed_by, f'config.{exc.key}')}: {exc.message}") from None
    return app.services.get(MODULE_LOADER, needed_by=needed_by), table
