"""The wasmtime-loader plugin: offers the WebAssembly host a module loader backed by wasmtime.

Same config as wasmer-loader (``[plugins.wasmtime-loader.config]``, see
docs/wasm-abi.md), so the loader is swapped by renaming the registry section:

- `cache_dir` (".wasmkernel/cache", relative to the registry's directory):
  compiled artifacts
- `workers` (2): threads running calls, at most this many calls at once
- `default_timeout` (10.0 s), `memory_limit_mb` (256), `compiler`
  ("cranelift", the only one): defaults for modules
- `prewarm` (true): instantiate every module once at startup
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
from wasmkernel_wasmtime_loader.loader import COMPILERS, WasmtimeLoader


class Plugin(LoaderPlugin):
    compilers = COMPILERS

    def create(self, config: LoaderConfig, base: Path, app: Application) -> WasmtimeLoader:
        return WasmtimeLoader(config, base, app)
