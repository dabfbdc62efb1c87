"""The wasm plugin: the WebAssembly host.

- Adds the `wasmkernel_module_loader` hook (see `wasmkernel_wasm.hookspecs`);
  exactly one enabled loader plugin (wasmer-loader, wasmtime-loader) answers
  it, and two are a startup error naming both.
- Adds `wasmkernel_host_capabilities` and `wasmkernel_kv_backends`, calls
  them once and offers the capabilities as the `HOST_CAPABILITIES` service;
  contributes the built-in capabilities (log, vars, kv, http) and key-value
  stores (memory, sqlite).
- Maps the `WasmError` family to statuses at the kernel's error boundary
  (bad arguments 400, trap 500, timeout 504, memory limit 507, unavailable 503, bad response 502).
- Offers that loader as the `MODULE_LOADER` service; starts it (compiling
  every declared module) before the plugins that use it and stops it after
  them.
- ``wasmkernel check`` compiles every declared module; ``/readyz`` is not
  ready while a loader's background task is down (its detail, for a local
  or authenticated view, lists the modules and the tasks); ``wasmkernel wasm list | reload NAME | build``;
  contributes its guest-module templates to the scaffold plugin's
  ``wasmkernel new-module`` (`wasmkernel_module_templates`).

- Owns the module table (``[plugins.wasm.config]``, `ModuleTable`: modules
  with their grants, secret headers), whatever loader runs it, and
  offers it as the `MODULE_TABLE` service: the loader plugins' sections hold
  engine settings only, so switching loader is one line of the registry.
  Routes serving modules are the wasm-http plugin's
  (``[[plugins.wasm-http.config.routes]]``), filters the wasm-filters
  plugin's (``[[plugins.wasm-filters.config.filters]]``): a `routes` or
  `filters` key here stops startup naming that place. `secret_headers` stay
  here, beside each module's `grant_headers`: which request headers a module
  never sees is the host's policy, whichever plugin hands it a request.

Loader plugins require this plugin, so enabling a loader brings it in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy
from wasmkernel_scaffold import ModuleTemplate

from wasmkernel import (
    Application,
    Command,
    ConfigError,
    ConfiguredPlugin,
    ErrorMapping,
    RegistryError,
    ServiceKey,
    StartupError,
    hookimpl,
)
from wasmkernel_wasm import MODULE_LOADER, ModuleLoader, hookspecs
from wasmkernel_wasm.commands import wasm_commands
from wasmkernel_wasm.config import ModuleTable, refuse_moved
from wasmkernel_wasm.errors import WasmBadArguments, WasmBadResponse, WasmError, WasmMemoryLimit, WasmTimeout, WasmTrap, WasmUnavailable
from wasmkernel_wasm.hostapi.capability import Capability, GuestSide, HostCapabilities
from wasmkernel_wasm.hostapi.http import OutboundHttp
from wasmkernel_wasm.hostapi.keyvalue import MEMORY, KeyValue, KvBackendType, SqliteStores
from wasmkernel_wasm.scaffold import module_templates
from wasmkernel_wasm.service import HOST_CAPABILITIES, MODULE_TABLE


class Plugin(ConfiguredPlugin[ModuleTable]):
    config_class = ModuleTable
    order = 40
    loader: ModuleLoader | None = None

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(hookspecs)

    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        refuse_moved(config, ("routes", "filters"), "the triggers are plugins of their own, whatever loader runs the modules")
        super().wasmkernel_configure(config, app)

    def configured(self) -> None:
        self.config.check()

    @hookimpl
    def wasmkernel_host_capabilities(self, app: Application) -> list[Capability]:
        stores = KeyValue.of((plugin.name, kind) for plugin, kind in app.hooks.gather("wasmkernel_kv_backends"))
        return [GuestSide("log"), GuestSide("vars"), stores, OutboundHttp()]

    @hookimpl
    def wasmkernel_kv_backends(self, app: Application) -> list[KvBackendType]:
        return [MEMORY, SqliteStores()]

    @hookimpl
    def wasmkernel_services(self, app: Application) -> list[tuple[ServiceKey[Any], Any]]:
        capabilities = HostCapabilities.collect((plugin.name, item) for plugin, item in app.hooks.gather("wasmkernel_host_capabilities"))
        try:
            offered = [(plugin.name, loader) for plugin, loader in app.hooks.each("wasmkernel_module_loader", table=self.config) if loader is not None]
        except ConfigError as exc:
            raise RegistryError(f"{app.registry.where('wasm', f'config.{exc.key}' if exc.key else 'config')}: {exc.message}") from None
        if not offered and self.config.modules:
            raise StartupError(
                f"{app.registry.where('wasm', 'config.modules')}: {len(self.config.modules)} module(s) declared but no module loader is enabled "
                "(enable [plugins.wasmer-loader] or [plugins.wasmtime-loader])"
            )
        if len(offered) > 1:
            raise StartupError(f"two module loaders are enabled ({', '.join(name for name, _ in offered)}): enable only one")
        self.loader = offered[0][1] if offered else None
        loader = [(MODULE_LOADER, self.loader)] if self.loader is not None else []
        return [(HOST_CAPABILITIES, capabilities), (MODULE_TABLE, self.config), *loader]

    @hookimpl
    def wasmkernel_error_statuses(self, app: Application) -> Mapping[type[Exception], ErrorMapping]:
        return {
            WasmError: 500,
            WasmBadArguments: 400,
            WasmTrap: 500,
            WasmTimeout: 504,
            WasmMemoryLimit: 507,
            WasmBadResponse: 502,
            WasmUnavailable: 503,
        }

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        if self.loader is not None:
            await self.loader.start()

    @hookimpl
    async def wasmkernel_shutdown(self, app: Application) -> None:
        if self.loader is not None:
            await self.loader.stop()

    @hookimpl(optionalhook=True)
    def wasmkernel_check(self, app: Application) -> list[str]:
        if self.loader is None:
            return ["no module loader enabled"]
        return [f"module '{info.name}' ({info.kind}, {info.size} bytes): compiled, cache {info.cache}" for info in self.loader.prepare()]

    @hookimpl(optionalhook=True)
    def wasmkernel_readiness(self, app: Application) -> dict[str, Callable[[], tuple[bool, Any]]]:
        return {"wasm": self.loader.readiness} if self.loader is not None else {}

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return wasm_commands()

    @hookimpl(optionalhook=True)
    def wasmkernel_module_templates(self) -> list[ModuleTemplate]:
        return module_templates()
