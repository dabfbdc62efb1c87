"""The wasm plugin: the WebAssembly host.

- Adds the `wasmkernel_module_loader` hook (see `wasmkernel_wasm.hookspecs`);
  exactly one enabled loader plugin (wasmer-loader, wasmtime-loader) answers
  it, and two are a startup error naming both.
- Offers that loader as the `MODULE_LOADER` service; starts it (compiling
  every declared module) before the plugins that use it and stops it after
  them.
- ``wasmkernel check`` compiles every declared module; ``/readyz`` is not
  ready while a loader's background task is down (its detail, for a local
  or authenticated view, lists the modules and the tasks); ``wasmkernel wasm list | reload NAME | build``.

Loader plugins require this plugin, so enabling a loader brings it in.
Config: none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pluggy

from wasmkernel import Application, Command, ConfiguredPlugin, NoConfig, ServiceKey, StartupError, hookimpl
from wasmkernel_wasm import MODULE_LOADER, ModuleLoader, hookspecs
from wasmkernel_wasm.commands import wasm_commands


class Plugin(ConfiguredPlugin[NoConfig]):
    config_class = NoConfig
    order = 40
    loader: ModuleLoader | None = None

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(hookspecs)

    @hookimpl
    def wasmkernel_services(self, app: Application) -> list[tuple[ServiceKey[Any], Any]]:
        offered: list[tuple[str, ModuleLoader]] = []
        for impl in app.manager.hook.wasmkernel_module_loader.get_hookimpls():
            loader = cast("ModuleLoader | None", impl.function(app=app))
            if loader is not None:
                offered.append((impl.plugin_name, loader))
        if len(offered) > 1:
            raise StartupError(f"two module loaders are enabled ({', '.join(name for name, _ in offered)}): enable only one")
        self.loader = offered[0][1] if offered else None
        return [(MODULE_LOADER, self.loader)] if self.loader is not None else []

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
