"""The wasmer-loader plugin: offers the WebAssembly host a module loader backed by wasmer 1.1.

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
- `[[...modules]]` host-API grants (denied unless set): log, vars, kv, http
- `[[...routes]]`: path, module, methods (["GET"]), auth, scopes, roles, name, tags
- `[[...filters]]`: module (kind filter), routes / tags / prefixes, body, max_body_bytes

Commands (from the `wasm` plugin): ``wasmkernel wasm list | reload NAME | build``.
"""

from __future__ import annotations

from pathlib import Path

from wasmkernel_wasm.config import LoaderConfig
from wasmkernel_wasm.plugin import LoaderPlugin

from kernel import Application
from wasmkernel_wasmer_loader.loader import COMPILERS, WasmerLoader


class Plugin(LoaderPlugin):
    compilers = COMPILERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> WasmerLoader:
        return WasmerLoader(config, base, app)
