"""The wasm-http plugin: HTTP triggers for WebAssembly modules.

- Serves the routes of ``[[plugins.wasm-http.config.routes]]`` with the
  modules of the host's table (the `MODULE_TABLE` service: checked there, a
  bad entry stops startup naming ``[plugins.wasm-http] config.routes[i]...``)
  run by whatever loader is enabled (the `MODULE_LOADER` service): HTTP
  handler modules, WASI commands WAGI-style (CGI environment in, CGI output
  or raw bytes out) and compute routes (path parameters as numbers, or the
  body as bytes).
- No module sees a credential header (every authenticator's), nor the host's
  `secret_headers`, unless its `grant_headers` lists it.
- At startup (and in ``wasmkernel check``) every compute route's function is
  checked against what its module exports: a missing function or parameters
  that do not fit stop startup naming the route.

Requires the wasm plugin (the host), so enabling this one brings it in.
"""

from __future__ import annotations

from wasmkernel_wasm import ModuleLoader
from wasmkernel_wasm.engine import ModuleTable, header_policy, module_services

from wasmkernel import Application, ConfiguredPlugin, Route, hookimpl
from wasmkernel_wasm_http.config import HttpTriggers
from wasmkernel_wasm_http.routes import bind_routes, check_compute_routes

NAME = "wasm-http"


class Plugin(ConfiguredPlugin[HttpTriggers]):
    config_class = HttpTriggers
    requires = ("wasm",)
    order = 43
    loader: ModuleLoader | None = None
    table: ModuleTable | None = None

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        if not self.config.routes:
            return []
        self.loader, self.table = module_services(app, NAME, self.config.check)
        return bind_routes(self.loader, self.table, self.config.routes, header_policy(app, self.table))

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        # The host started the loader first (this plugin uses its service): the modules are compiled.
        if self.loader is not None and self.table is not None:
            check_compute_routes(self.config.routes, self.table, self.loader.modules(), where=f"plugins.{NAME}.config.routes")

    @hookimpl(optionalhook=True)
    def wasmkernel_check(self, app: Application) -> list[str]:
        if self.loader is None or self.table is None:
            return []
        compute = sorted({route.module for route in self.config.routes if route.function})
        infos = [info for module in compute for info in self.loader.prepare(module)]
        check_compute_routes(self.config.routes, self.table, infos, where=f"plugins.{NAME}.config.routes")
        return [f"{len(self.config.routes)} route(s) bound; compute routes fit their functions ({len(compute)} module(s))"]
