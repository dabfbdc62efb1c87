"""The components plugin: WASI 0.2 components as routes.

Compiles every component declared in ``[[plugins.components.config.modules]]``
at startup (cached; `wasmkernel check` does the same without serving) and
serves the routes of ``[[plugins.components.config.routes]]``. Needs the
`wasm` plugin (the WebAssembly host: key-value stores, outbound HTTP,
metrics: the host capabilities a component's grants use, bound at assembly);
the `wasm-kv-redis` plugin when a component's `kv.backend` is "redis".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wasmkernel_wasm.engine import credential_headers

from wasmkernel import Application, ConfiguredPlugin, MetricSource, Route, hookimpl
from wasmkernel_components.config import ComponentsConfig
from wasmkernel_components.host import ComponentHost
from wasmkernel_components.serve import bind_routes


class Plugin(ConfiguredPlugin[ComponentsConfig]):
    config_class = ComponentsConfig
    requires = ("wasm",)
    order = 42
    host: ComponentHost | None = None

    def configured(self) -> None:
        self.config.check()
        self.host = ComponentHost(self.config, self.app.registry.path.parent.resolve())

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        if self.host is None:
            return []
        self.host.services.bind(app, needed_by="components")
        credentials = credential_headers(found for _, found in app.hooks.gather("wasmkernel_authenticators"))
        return bind_routes(self.host, self.config, lambda: credentials)

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        if self.host is not None:
            await self.host.start(app)

    @hookimpl
    async def wasmkernel_shutdown(self, app: Application) -> None:
        if self.host is not None:
            await self.host.stop()

    @hookimpl(optionalhook=True)
    def wasmkernel_check(self, app: Application) -> list[str]:
        if self.host is None:
            return []
        return [f"component '{spec.name}' ({spec.kind}): compiled, cache {self.host.prepare(spec).cache}" for spec in self.config.modules]

    @hookimpl(optionalhook=True)
    def wasmkernel_readiness(self, app: Application) -> dict[str, Any]:
        host = self.host
        return {"components": lambda: (True, sorted(host.loaded))} if host is not None else {}

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.host.metrics] if self.host is not None else []
