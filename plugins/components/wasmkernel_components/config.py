"""The registry configuration: ``[plugins.components.config]``, its components and routes."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs
from wasmkernel_wasm import MIB
from wasmkernel_wasm.engine import ARG_PARAM, DirSpec, HttpGrant, KvGrant, LoaderConfig, ModuleSpec

from wasmkernel import AuthRequirement, ConfigError

Kind = Literal["wasi-http", "wasi-cli"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ROUTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def _name(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{attribute.name} {value!r}: use letters, digits, '_' and '-'")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class ComponentSpec:
    """One ``[[plugins.components.config.modules]]`` entry: a WASI 0.2 component.

    `kind` "wasi-http" exports `wasi:http/incoming-handler` (a Spin SDK 3 app
    is one too); "wasi-cli" exports `wasi:cli/run` and is served WAGI-style
    like the core `wasi` kind (`args`, `output`, `content_type`,
    `exit_status`). `env` is its environment, `dirs` the directories it may
    see (read-only unless `writable`). Grants, denied unless set: `vars`
    (Spin variables), `kv` (Spin key-value: the store "default"), `http`
    (outgoing HTTP to these origins). `timeout`, `memory_limit_mb`,
    `max_concurrency` default to the plugin's settings; `max_body_bytes`
    bounds the request body.
    """

    name: str = attrs.field(validator=_name)
    path: str
    kind: Kind = "wasi-http"
    sha256: str | None = None
    timeout: float | None = attrs.field(default=None, validator=_positive)
    memory_limit_mb: int | None = attrs.field(default=None, validator=_positive)
    max_concurrency: int | None = attrs.field(default=None, validator=_positive)
    max_body_bytes: int = attrs.field(default=16 * MIB, validator=_positive)
    grant_headers: list[str] = attrs.field(factory=list)
    env: dict[str, str] = attrs.field(factory=dict)
    dirs: list[DirSpec] = attrs.field(factory=list)
    args: list[str] = attrs.field(factory=list)
    output: Literal["cgi", "raw"] = "cgi"
    content_type: str = "application/octet-stream"
    exit_status: dict[str, int] = attrs.field(factory=dict)
    vars: dict[str, str] | None = None
    kv: KvGrant | None = None
    http: HttpGrant | None = None

    def as_module(self) -> ModuleSpec:
        """The wasm host's view of this entry: its grants, argv and exit statuses (for the host API and WAGI parsing)."""
        wasi = self.kind == "wasi-cli"
        return ModuleSpec(
            name=self.name,
            path=self.path,
            kind="wasi" if wasi else "http",
            args=list(self.args),
            output=self.output,
            content_type=self.content_type,
            exit_status=dict(self.exit_status),
            vars=self.vars,
            kv=self.kv,
            http=self.http,
        )


@attrs.frozen
class ComponentRoute:
    """One ``[[plugins.components.config.routes]]`` entry: `path` (a route
    pattern, parameters allowed) or `prefix` (the path and everything under
    it), the component serving it, `methods`, and auth like any route."""

    module: str
    path: str = ""
    prefix: str = ""
    methods: list[str] = attrs.field(factory=lambda: ["GET"])
    auth: bool = False
    scopes: list[str] = attrs.field(factory=list)
    roles: list[str] = attrs.field(factory=list)
    name: str = ""
    tags: list[str] = attrs.field(factory=list)

    def requirement(self) -> AuthRequirement | None:
        if self.auth or self.scopes or self.roles:
            return AuthRequirement(scopes=tuple(self.scopes), roles=tuple(self.roles))
        return None

    def patterns(self) -> list[str]:
        if self.path:
            return [self.path]
        base = self.prefix.rstrip("/")
        return [base or "/", f"{base}/{{component_path:path}}"]


@attrs.frozen
class ComponentsConfig:
    """``[plugins.components.config]``:

    - `cache_dir` (".wasmkernel/cache", relative to the registry): compiled components (`.cwasm`)
    - `workers` (4): calls running at once (threads); `max_queued` (32) may wait, beyond that 503
    - `default_timeout` (10 s), `memory_limit_mb` (256): per-component defaults
    - `secret_headers`: request headers no component sees (besides every auth scheme's credential headers)
    - `compile_warning_mb` (4): a component at least this big is announced before its first (slow) compile
    - `[[modules]]`, `[[routes]]`: see `ComponentSpec`, `ComponentRoute`
    """

    cache_dir: str = ".wasmkernel/cache"
    workers: int = attrs.field(default=4, validator=_positive)
    max_queued: int = attrs.field(default=32, validator=attrs.validators.ge(0))
    default_timeout: float = attrs.field(default=10.0, validator=_positive)
    memory_limit_mb: int = attrs.field(default=256, validator=_positive)
    secret_headers: list[str] = attrs.field(factory=list)
    compile_warning_mb: float = attrs.field(default=4.0, validator=_positive)
    modules: list[ComponentSpec] = attrs.field(factory=list)
    routes: list[ComponentRoute] = attrs.field(factory=list)

    def check(self) -> None:
        """Cross-field checks; `ConfigError` names the offending key."""
        seen: set[str] = set()
        for index, spec in enumerate(self.modules):
            if spec.name in seen:
                raise ConfigError(f"modules[{index}].name", f"duplicate component name {spec.name!r}")
            seen.add(spec.name)
            cli_only = [key for key in ("args", "exit_status") if getattr(spec, key)]
            defaults = attrs.fields(ComponentSpec)
            cli_only += [key for key in ("output", "content_type") if getattr(spec, key) != getattr(defaults, key).default]
            if cli_only and spec.kind != "wasi-cli":
                raise ConfigError(f"modules[{index}]", f"{', '.join(cli_only)}: only for kind = 'wasi-cli' components")
            for position, directory in enumerate(spec.dirs):
                if not directory.guest.startswith("/"):
                    raise ConfigError(f"modules[{index}].dirs[{position}].guest", f"expected an absolute guest path, got {directory.guest!r}")
            if (spec.vars is not None or spec.kv or spec.http) and spec.kind != "wasi-http":
                raise ConfigError(f"modules[{index}]", "vars, kv and http are granted to kind = 'wasi-http' components only")
            try:
                spec.as_module()
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"modules[{index}]", str(exc)) from None
        for index, route in enumerate(self.routes):
            if route.module not in seen:
                raise ConfigError(f"routes[{index}].module", f"no component named {route.module!r} is declared")
            if bool(route.path) == bool(route.prefix):
                raise ConfigError(f"routes[{index}]", "give either path (a route pattern) or prefix (a path and everything under it)")
            target = route.path or route.prefix
            if not target.startswith("/"):
                raise ConfigError(f"routes[{index}]", f"{target!r} must start with '/'")
            params = set(_ROUTE_PARAM.findall(route.path))
            for arg in self.spec(route.module).args:
                unknown = [name for name in ARG_PARAM.findall(arg) if name not in params]
                if unknown:
                    raise ConfigError(f"routes[{index}].path", f"component {route.module!r} has args using {{{unknown[0]}}}, which the route does not have")

    def spec(self, name: str) -> ComponentSpec:
        for spec in self.modules:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def timeout_of(self, spec: ComponentSpec) -> float:
        return spec.timeout if spec.timeout is not None else self.default_timeout

    def memory_limit_of(self, spec: ComponentSpec) -> int:
        return (spec.memory_limit_mb if spec.memory_limit_mb is not None else self.memory_limit_mb) * MIB

    def concurrency_of(self, spec: ComponentSpec) -> int:
        return min(spec.max_concurrency or self.workers, self.workers)

    def host_config(self) -> LoaderConfig:
        """The wasm host's configuration for these components' grants (what its `HostAPI` reads)."""
        return LoaderConfig(cache_dir=self.cache_dir, modules=[spec.as_module() for spec in self.modules], secret_headers=list(self.secret_headers))
