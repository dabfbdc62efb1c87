"""The loader configuration read from the registry: modules, routes, WASI grants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs

from kernel import AuthRequirement, ConfigError, StartupError
from wasmkernel_wasm import MIB, ModuleKind

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_name(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{attribute.name} {value!r}: use letters, digits, '_' and '-'")


def _check_sha256(_: Any, __: Any, value: str | None) -> None:
    if value is not None and not _SHA256.match(value):
        raise ValueError(f"sha256 {value!r}: expected 64 lower-case hex digits")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class DirSpec:
    """A host directory a WASI module may see as `guest`; read-only unless `writable`."""

    host: str
    guest: str
    writable: bool = False


@attrs.frozen
class ModuleSpec:
    """One ``[[plugins.<loader>.config.modules]]`` entry.

    `path` is relative to the registry file's directory; `sha256` pins the
    file's content; `compiler`, `timeout` (seconds) and `memory_limit_mb`
    default to the loader's settings; `stateful` keeps one instance per worker
    across calls (default: a fresh instance per call). `max_concurrency`: at
    most this many calls of the module run at once (default: as many as there
    are workers), so one module cannot take every worker. `grant_headers`:
    request headers carrying credentials that this module may still see
    (by default no module sees any: see `LoaderConfig.secret_headers`).
    `env` and `dirs` are granted to WASI modules only (nothing is granted by
    default).
    """

    name: str = attrs.field(validator=_check_name)
    path: str
    sha256: str | None = attrs.field(default=None, validator=_check_sha256)
    kind: ModuleKind = "compute"
    compiler: str | None = None
    timeout: float | None = attrs.field(default=None, validator=_positive)
    memory_limit_mb: int | None = attrs.field(default=None, validator=_positive)
    stateful: bool = False
    max_concurrency: int | None = attrs.field(default=None, validator=_positive)
    grant_headers: list[str] = attrs.field(factory=list)
    env: dict[str, str] = attrs.field(factory=dict)
    dirs: list[DirSpec] = attrs.field(factory=list)


@attrs.frozen
class RouteSpec:
    """One ``[[plugins.<loader>.config.routes]]`` entry binding an http or wasi module.

    `auth = true` (or any `scopes`/`roles`) attaches an `AuthRequirement`.
    """

    path: str
    module: str
    methods: list[str] = attrs.field(factory=lambda: ["GET"])
    auth: bool = False
    scopes: list[str] = attrs.field(factory=list)
    roles: list[str] = attrs.field(factory=list)
    name: str = ""

    def requirement(self) -> AuthRequirement | None:
        if self.auth or self.scopes or self.roles:
            return AuthRequirement(scopes=tuple(self.scopes), roles=tuple(self.roles))
        return None


@attrs.frozen
class LoaderConfig:
    """A loader plugin's ``config`` table (see docs/wasm-abi.md)."""

    cache_dir: str = ".wasmkernel/cache"
    workers: int = attrs.field(default=2, validator=_positive)
    #: Calls that may wait for a worker; beyond, 503 with Retry-After.
    max_queued: int = attrs.field(default=32, validator=attrs.validators.ge(0))
    #: Request headers no module sees (unless its `grant_headers` lists them),
    #: besides every configured authenticator's credential headers.
    secret_headers: list[str] = attrs.field(factory=list)
    default_timeout: float = attrs.field(default=10.0, validator=_positive)
    compiler: str = "cranelift"
    memory_limit_mb: int = attrs.field(default=256, validator=_positive)
    prewarm: bool = True
    watch: bool = True
    watch_interval: float = attrs.field(default=1.0, validator=_positive)
    modules: list[ModuleSpec] = attrs.field(factory=list)
    routes: list[RouteSpec] = attrs.field(factory=list)

    def check(self, compilers: Iterable[str]) -> None:
        """Cross-field checks; `ConfigError` names the offending key."""
        allowed = tuple(compilers)
        if self.compiler not in allowed:
            raise ConfigError("compiler", f"unknown compiler {self.compiler!r}; expected one of {', '.join(allowed)}")
        seen: set[str] = set()
        for index, spec in enumerate(self.modules):
            if spec.name in seen:
                raise ConfigError(f"modules[{index}].name", f"duplicate module name {spec.name!r}")
            seen.add(spec.name)
            if spec.compiler is not None and spec.compiler not in allowed:
                raise ConfigError(f"modules[{index}].compiler", f"unknown compiler {spec.compiler!r}; expected one of {', '.join(allowed)}")
            if (spec.env or spec.dirs) and spec.kind != "wasi":
                raise ConfigError(f"modules[{index}]", "env and dirs are only granted to kind = 'wasi' modules")
        kinds = {spec.name: spec.kind for spec in self.modules}
        for index, route in enumerate(self.routes):
            if route.module not in kinds:
                raise ConfigError(f"routes[{index}].module", f"no module named {route.module!r} is declared")
            if kinds[route.module] == "compute":
                raise ConfigError(f"routes[{index}].module", f"module {route.module!r} is a compute module; only http and wasi modules serve routes")

    def spec(self, name: str) -> ModuleSpec:
        for spec in self.modules:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def selected(self, module: str | None) -> list[ModuleSpec]:
        """Every declared module, or only `module` (`StartupError` if undeclared)."""
        if module is None:
            return list(self.modules)
        specs = [spec for spec in self.modules if spec.name == module]
        if not specs:
            raise StartupError(f"no wasm module named {module!r} is declared")
        return specs

    def timeout_of(self, spec: ModuleSpec) -> float:
        return spec.timeout if spec.timeout is not None else self.default_timeout

    def withheld_headers(self, spec: ModuleSpec, credentials: Iterable[str]) -> frozenset[str]:
        """Lower-case names of the request headers `spec`'s module must not see."""
        withheld = {name.lower() for name in (*credentials, *self.secret_headers)}
        return frozenset(withheld - {name.lower() for name in spec.grant_headers})

    def concurrency_of(self, spec: ModuleSpec) -> int:
        return min(spec.max_concurrency or self.workers, self.workers)

    def memory_limit_of(self, spec: ModuleSpec) -> int:
        """The module's memory cap in bytes."""
        return (spec.memory_limit_mb if spec.memory_limit_mb is not None else self.memory_limit_mb) * MIB
