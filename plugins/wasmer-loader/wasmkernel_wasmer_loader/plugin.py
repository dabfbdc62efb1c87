"""The wasmer-loader plugin: provides `app.module_loader` backed by wasmer 1.1.

Config (``[plugins.wasmer-loader.config]``, see docs/wasm-abi.md):

- `cache_dir` (".wasmkernel/cache", relative to the registry's directory):
  compiled artifacts
- `workers` (2): warm worker processes; calls run there, at most this many at once
- `default_timeout` (10.0 s), `memory_limit_mb` (256), `compiler`
  ("cranelift" | "singlepass"): defaults for modules
- `prewarm` (true): spawn the workers and load every module at startup
- `watch` (true), `watch_interval` (1.0 s): hot-reload modules whose file changed
- `[[...modules]]`: name, path, sha256, kind (compute | http | wasi), compiler,
  timeout, memory_limit_mb, stateful, env, dirs (WASI only)
- `[[...routes]]`: path, module, methods (["GET"]), auth, scopes, roles, name

Commands: ``wasmkernel wasm list | reload NAME | build``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kernel import Application, Command, MetricSource, Route, hookimpl, parse_config
from kernel.wasm_abi import LoaderConfig, bind_routes, wasm_commands
from wasmkernel_wasmer_loader.loader import COMPILERS, WasmerLoader


class Plugin:
    def __init__(self) -> None:
        self.loader: WasmerLoader | None = None

    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        parsed = parse_config(LoaderConfig, config)
        parsed.check(COMPILERS)
        self.loader = WasmerLoader(parsed, app.registry.path.parent.resolve(), app)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        assert self.loader is not None
        return bind_routes(self.loader, self.loader.config)

    @hookimpl
    def wasmkernel_module_loader(self, app: Application) -> WasmerLoader | None:
        return self.loader

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.loader.metrics] if self.loader is not None else []

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return wasm_commands()
