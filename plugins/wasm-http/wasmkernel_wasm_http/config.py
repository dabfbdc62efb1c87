"""The ``[plugins.wasm-http.config]`` table: routes bound to the host's modules."""

from __future__ import annotations

import attrs
from wasmkernel_wasm.engine import ARG_PARAM, ModuleTable

from wasmkernel import AuthRequirement, ConfigError, PathPattern


@attrs.frozen
class RouteSpec:
    """One ``[[plugins.wasm-http.config.routes]]`` entry binding a module.

    An http or wasi module serves the whole request; a compute module's
    `function` (required for them, refused for the others) is called with
    the route parameters, in path order, as numbers, and answers
    ``{"value": result}``. `auth = true` (or any `scopes`/`roles`) attaches
    an `AuthRequirement`.
    """

    path: str
    module: str
    methods: list[str] = attrs.field(factory=lambda: ["GET"])
    auth: bool = False
    scopes: list[str] = attrs.field(factory=list)
    roles: list[str] = attrs.field(factory=list)
    name: str = ""
    function: str = ""
    #: Tags besides "wasm" (filters select routes by tag; OpenAPI groups by tag).
    tags: list[str] = attrs.field(factory=list)

    def requirement(self) -> AuthRequirement | None:
        if self.auth or self.scopes or self.roles:
            return AuthRequirement(scopes=tuple(self.scopes), roles=tuple(self.roles))
        return None


@attrs.frozen
class HttpTriggers:
    """``[plugins.wasm-http.config]``: `[[routes]]` (path, module, methods
    (["GET"]), auth, scopes, roles, name, tags, function for compute modules)."""

    routes: list[RouteSpec] = attrs.field(factory=list)

    def check(self, table: ModuleTable) -> None:
        """Each route against the host's module table; `ConfigError` names the offending key."""
        kinds = {spec.name: spec.kind for spec in table.modules}
        for index, route in enumerate(self.routes):
            if route.module not in kinds:
                raise ConfigError(f"routes[{index}].module", f"no module named {route.module!r} is declared in [plugins.wasm.config]")
            kind = kinds[route.module]
            if kind == "filter":
                raise ConfigError(f"routes[{index}].module", f"module {route.module!r} is a filter module; filters are listed in [[filters]], not routes")
            if kind == "compute" and not route.function:
                raise ConfigError(f"routes[{index}].function", f"module {route.module!r} is a compute module: name the export the route calls")
            if kind != "compute" and route.function:
                raise ConfigError(f"routes[{index}].function", f"module {route.module!r} is kind {kind!r}; only compute routes call a function")
            try:
                params = {name for name, _ in PathPattern.parse(route.path).params}
            except ValueError as exc:
                raise ConfigError(f"routes[{index}].path", str(exc)) from None
            for arg in table.spec(route.module).args:
                unknown = [name for name in ARG_PARAM.findall(arg) if name not in params]
                if unknown:
                    raise ConfigError(
                        f"routes[{index}].path", f"module {route.module!r} has args using {{{unknown[0]}}}, which route {route.path!r} does not have"
                    )
