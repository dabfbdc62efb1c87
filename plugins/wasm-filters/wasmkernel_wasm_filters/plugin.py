"""The wasm-filters plugin: filter modules (kind = "filter") as middleware.

- Puts one middleware per ``[[plugins.wasm-filters.config.filters]]`` entry
  in the chain, at this plugin's place (entries in file order, the first
  outermost; move them with the registry's `order`/`before`/`after`), each
  guarding only the routes it selects (per-route elision: every other route
  is built without it).
- Runs the modules of the host's table (the `MODULE_TABLE` service: entries
  checked there, a bad one stops startup naming ``[plugins.wasm-filters]
  config.filters[i]...``) with whatever loader is enabled (the `MODULE_LOADER`
  service); a selector that selects no route stops startup unless the entry
  says `allow_unused = true`.
- A filter module sees no credential header (every authenticator's), nor the
  host's `secret_headers`, unless its `grant_headers` lists it.

Requires the wasm plugin (the host), which enabling this one brings in.
"""

from __future__ import annotations

from wasmkernel_wasm.engine import header_policy, module_services

from wasmkernel import Application, ConfiguredPlugin, Middleware, hookimpl
from wasmkernel_wasm_filters.chain import filter_middleware
from wasmkernel_wasm_filters.config import Filters

NAME = "wasm-filters"


class Plugin(ConfiguredPlugin[Filters]):
    config_class = Filters
    requires = ("wasm",)
    order = 44

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        if not self.config.filters:
            return []
        loader, table = module_services(app, NAME, self.config.check)
        return filter_middleware(loader, self.config.filters, header_policy(app, table), app.routes, where=f"plugins.{NAME}.config.filters")
