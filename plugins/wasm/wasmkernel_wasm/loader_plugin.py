"""The base class of loader plugins: engine settings, the loader they build for the host's module table, its metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wasmkernel import ConfigError, ConfiguredPlugin, MetricSource, Route, hookimpl
from wasmkernel_wasm import ModuleLoader
from wasmkernel_wasm.config import MOVED, EngineConfig, LoaderConfig, ModuleTable, refuse_moved
from wasmkernel_wasm.metrics import CallMetrics

if TYPE_CHECKING:
    from wasmkernel import Application


class ConfiguredLoader(ModuleLoader, Protocol):
    """A loader built from a `LoaderConfig`, with call metrics."""

    config: LoaderConfig
    metrics: CallMetrics

    def use_services(self, app: Application) -> None: ...


class LoaderPlugin(ConfiguredPlugin[EngineConfig]):
    """Base of a loader plugin: parses and checks its engine settings (an
    `EngineConfig`; a module table in its section is an error naming where it
    moved), builds the loader for the host's module table (the host starts it,
    the wasm-http and wasm-filters plugins serve with it) and reports the loader's call metrics.
    Subclasses set `compilers` and implement `create`."""

    config_class = EngineConfig
    requires = ("wasm",)
    order = 41
    compilers: tuple[str, ...]
    loader: ConfiguredLoader | None = None

    def create(self, config: LoaderConfig, base: Path, app: Application) -> ConfiguredLoader:
        raise NotImplementedError

    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        refuse_moved(config, MOVED, "whatever loader runs the modules; keep only engine settings here")
        super().wasmkernel_configure(config, app)

    def configured(self) -> None:
        if self.config.compiler not in self.compilers:
            raise ConfigError("compiler", f"unknown compiler {self.config.compiler!r}; expected one of {', '.join(self.compilers)}")

    @hookimpl
    def wasmkernel_module_loader(self, app: Application, table: ModuleTable) -> ConfiguredLoader:
        """The loader for `table`; `ConfigError` names the bad key of the table."""
        config = LoaderConfig.of(self.config, table)
        config.check_compilers(self.compilers)
        self.loader = self.create(config, app.registry.path.parent.resolve(), app)
        return self.loader

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        # The first hook after every plugin offered its services: the host API's (Redis).
        if self.loader is not None:
            self.loader.use_services(app)
        return []

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.loader.metrics] if self.loader is not None else []
