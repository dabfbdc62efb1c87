"""The ``[plugins.wasm-filters.config]`` table: filter modules and the routes they guard."""

from __future__ import annotations

import attrs
from wasmkernel_wasm.engine import ModuleTable

from wasmkernel import ConfigError


@attrs.frozen
class FilterSpec:
    """One ``[[plugins.wasm-filters.config.filters]]`` entry: a kind = "filter"
    module in the middleware chain (at the wasm-filters plugin's place;
    entries in file order, the first outermost), guarding the routes it
    selects by name (`routes`), tag (`tags`) or path prefix (`prefixes`, whole
    segments: every route that can serve a path under it). With `body = true`
    it sees the request body (over `max_body_bytes`: 413). A selector
    selecting no route stops startup unless `allow_unused = true` (logged as
    a warning).
    """

    module: str
    routes: list[str] = attrs.field(factory=list)
    tags: list[str] = attrs.field(factory=list)
    prefixes: list[str] = attrs.field(factory=list)
    body: bool = False
    max_body_bytes: int = attrs.field(default=64 * 1024, validator=attrs.validators.gt(0))
    allow_unused: bool = False


@attrs.frozen
class Filters:
    """``[plugins.wasm-filters.config]``: `[[filters]]` (module, routes / tags /
    prefixes, body, max_body_bytes, allow_unused)."""

    filters: list[FilterSpec] = attrs.field(factory=list)

    def check(self, table: ModuleTable) -> None:
        """Each entry against the host's module table; `ConfigError` names the offending key."""
        kinds = {spec.name: spec.kind for spec in table.modules}
        for index, selection in enumerate(self.filters):
            if kinds.get(selection.module) != "filter":
                what = "declared" if selection.module not in kinds else f"of kind {kinds[selection.module]!r}"
                raise ConfigError(f"filters[{index}].module", f"module {selection.module!r} is not {what}; a filter entry needs a kind = 'filter' module")
            if not (selection.routes or selection.tags or selection.prefixes):
                raise ConfigError(f"filters[{index}]", "select the routes the filter guards: routes, tags or prefixes (prefixes = ['/'] for every route)")
            for prefix in selection.prefixes:
                if not prefix.startswith("/"):
                    raise ConfigError(f"filters[{index}].prefixes", f"prefix {prefix!r} must start with '/'")
