"""The base class of loader plugins: configuration, routes and metrics wired to a loader."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wasmkernel import ConfiguredPlugin, MetricSource, Middleware, Route, hookimpl
from wasmkernel_wasm import (
    ModuleLoader,
)
from wasmkernel_wasm.config import LoaderConfig
from wasmkernel_wasm.filters import filter_middleware
from wasmkernel_wasm.metrics import CallMetrics
from wasmkernel_wasm.requests import CREDENTIAL_HEADERS, credential_headers
from wasmkernel_wasm.routes import bind_routes

if TYPE_CHECKING:
    from wasmkernel import Application


class ConfiguredLoader(ModuleLoader, Protocol):
    """A loader built from a `LoaderConfig`, with call metrics."""

    config: LoaderConfig
    metrics: CallMetrics

    def use_services(self, app: Application) -> None: ...


class LoaderPlugin(ConfiguredPlugin[LoaderConfig]):
    """Base of a loader plugin: parses and checks its `LoaderConfig`, provides
    the loader (to the host, which starts and stops it), its routes, its
    filter modules as middleware (at this plugin's place in the chain: move
    them with the registry's `order`/`before`/`after`) and its metrics. Subclasses set `compilers` and implement `create`."""

    config_class = LoaderConfig
    requires = ("wasm",)
    order = 41
    compilers: tuple[str, ...]
    loader: ConfiguredLoader | None = None
    #: Request headers carrying credentials (see `wasmkernel_middleware`).
    credentials: frozenset[str] = CREDENTIAL_HEADERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> ConfiguredLoader:
        raise NotImplementedError

    def configured(self) -> None:
        self.config.check(self.compilers)
        self.loader = self.create(self.config, self.app.registry.path.parent.resolve(), self.app)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        if self.loader is None:
            return []
        # The first hook after every plugin offered its services.
        self.loader.use_services(app)
        return bind_routes(self.loader, self.config, lambda: self.credentials)

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        # Once every plugin is configured: the headers of every authentication scheme.
        self.credentials = credential_headers(found for _, found in app.hooks.gather("wasmkernel_authenticators"))
        if self.loader is None or not self.config.filters:
            return []
        config = self.config

        @functools.cache
        def withheld(module: str) -> frozenset[str]:
            return config.withheld_headers(config.spec(module), self.credentials)

        return filter_middleware(self.loader, config, withheld, app.routes, where=f"plugins.{self.loader.runtime}-loader.config.filters")

    @hookimpl
    def wasmkernel_module_loader(self, app: Application) -> ModuleLoader | None:
        return self.loader

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.loader.metrics] if self.loader is not None else []
