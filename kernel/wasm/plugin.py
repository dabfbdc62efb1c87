"""The base class of loader plugins: configuration, routes, metrics and commands wired to a loader."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kernel.auth import credential_headers
from kernel.commands import Command
from kernel.config import ConfiguredPlugin
from kernel.hookspecs import hookimpl
from kernel.metrics import MetricSource
from kernel.routing import Route
from kernel.wasm import (
    ModuleLoader,
)
from kernel.wasm.commands import wasm_commands
from kernel.wasm.config import LoaderConfig
from kernel.wasm.metrics import CallMetrics
from kernel.wasm.routes import bind_routes

if TYPE_CHECKING:
    from kernel.app import Application


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ConfiguredLoader(ModuleLoader, Protocol):
    """A loader built from a `LoaderConfig`, with call metrics."""

    config: LoaderConfig
    metrics: CallMetrics


class LoaderPlugin(ConfiguredPlugin[LoaderConfig]):
    """Base of a loader plugin: parses and checks its `LoaderConfig`, provides
    the loader, its routes, its metrics and the ``wasmkernel wasm`` command.
    Subclasses set `compilers` and implement `create`."""

    config_class = LoaderConfig
    compilers: tuple[str, ...]
    loader: ConfiguredLoader | None = None

    def create(self, config: LoaderConfig, base: Path, app: Application) -> ConfiguredLoader:
        raise NotImplementedError

    def configured(self) -> None:
        self.config.check(self.compilers)
        self.loader = self.create(self.config, self.app.registry.path.parent.resolve(), self.app)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        if self.loader is None:
            return []
        return bind_routes(self.loader, self.config, lambda: credential_headers(app.authenticators))

    @hookimpl
    def wasmkernel_module_loader(self, app: Application) -> ModuleLoader | None:
        return self.loader

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.loader.metrics] if self.loader is not None else []

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return wasm_commands()
