"""The host's configuration read from the registry: the module table (modules, their grants, the headers no module sees) and the loaders' engine settings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from wasmkernel import ConfigError, StartupError, header_problem
from wasmkernel_wasm import MIB, ModuleKind
from wasmkernel_wasm.hostapi.grants import HttpGrant, KvGrant
from wasmkernel_wasm.scratch import DEVICES, relative_part
from wasmkernel_wasm.stderr import MAX_EXCERPT

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_name(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{attribute.name} {value!r}: use letters, digits, '_' and '-'")


def _check_sha256(_: Any, __: Any, value: str | None) -> None:
    if value is not None and not _SHA256.match(value):
        raise ValueError(f"sha256 {value!r}: expected 64 lower-case hex digits")


#: `{name}` in a WASI module's `args`: replaced by the route parameter `name`.
ARG_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _exit_statuses(_: Any, __: Any, value: dict[str, int]) -> None:
    for code, status in value.items():
        if not code.isdigit() or int(code) > 255:
            raise ValueError(f"exit_status key {code!r}: expected an exit code 0-255")
        if not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"exit_status[{code!r}] = {status!r}: expected a final HTTP status 200-599")


def _header_value(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    problem = header_problem("content-type", value)
    if problem is not None:
        raise ValueError(f"{attribute.name} {value!r}: {problem}")


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
    """One ``[[plugins.wasm.config.modules]]`` entry.

    `path` is relative to the registry file's directory; `sha256` pins the
    file's content; `compiler`, `timeout` (seconds) and `memory_limit_mb`
    default to the loader's settings; `stateful` keeps one instance per worker
    across calls (default: a fresh instance per call). `env` and `dirs` are
    granted to WASI modules only (nothing is granted by default).

    WASI commands also take `args` (argv after the program name; `{param}` is
    replaced by that route parameter, one argv element each, never a shell),
    `output` ("cgi": stdout is CGI headers + body; "raw": stdout is the body,
    served as `content_type`), `exit_status` (exit code -> HTTP status; an
    unlisted non-zero exit is a 500) and `scratch` (a guest path where each
    call gets a fresh writable directory, removed afterwards).
    `entry` is the export that runs the program (default `_start`; another,
    e.g. itk-wasm's `""`, runs after `_initialize`, as a reactor's).
    A compute module with `compute_body` has its routes call `function(ptr,
    len)` on the request body (no path parameters): "bytes" serves the
    packed (ptr << 32 | len) result's bytes as `content_type`; "u64" answers
    ``{"value": n}`` with the integer result read as unsigned.
    `stub_imports` ("module.name", split at the last dot) links those
    function imports, which the host does not provide, as stubs that trap
    when called (a program's optional host imports), instead of refusing it.
    `argv_pointer` calls `entry(argc, argv)` with the program name and
    `args` copied in through the module's `alloc` (a reactor's entry, such
    as QuickJS-NG's `qjs_init_argv`).
    `body_file` (a guest path below `scratch`) gets the request body before
    the program starts; `output_file` (likewise) is the response body, read
    when it exits (served as `content_type`, instead of stdout); `devices`
    grants `/dev` files ("null", "urandom"; `wasmkernel_wasm.scratch`).
    `stderr_excerpt` (0: none; at most 4096) lets the error body of a failing
    call (an unlisted non-zero exit) carry that many of the last bytes of its
    stderr, sanitised (`wasmkernel_wasm.stderr`); the log always has it all.
    `alloc`, `dealloc` and `memory` name the exports the host uses (e.g.
    "malloc", "free", "mem"); a module exporting `_initialize` (a reactor)
    has it run once per instance.
    The host API (non-WASI modules; docs/wasm-abi.md) is denied unless
    granted: `log`, `vars` (a table of strings, secret references allowed),
    `kv`, `http`.
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
    args: list[str] = attrs.field(factory=list)
    output: Literal["cgi", "raw"] = "cgi"
    content_type: str = attrs.field(default="application/octet-stream", validator=_header_value)
    exit_status: dict[str, int] = attrs.field(factory=dict, validator=_exit_statuses)
    scratch: str | None = None
    entry: str = "_start"
    compute_body: Literal["", "bytes", "u64"] = ""
    argv_pointer: bool = False
    stub_imports: list[str] = attrs.field(factory=list)
    body_file: str | None = None
    output_file: str | None = None
    devices: list[str] = attrs.field(factory=list)
    stderr_excerpt: int = attrs.field(default=0, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(MAX_EXCERPT)))
    alloc: str = "alloc"
    dealloc: str = "dealloc"
    memory: str = "memory"

    def stubs(self) -> tuple[tuple[str, str], ...]:
        """`stub_imports` as (module, name) pairs."""
        return tuple((module, name) for module, _, name in (entry.rpartition(".") for entry in self.stub_imports))

    def argv(self, params: Iterable[tuple[str, str]]) -> list[str]:
        """The program name and `args` with `{param}` replaced by route parameters."""
        values = dict(params)
        return [self.name, *(ARG_PARAM.sub(lambda m: values.get(m.group(1), ""), arg) for arg in self.args)]

    log: bool = False
    vars: dict[str, str] | None = None
    kv: KvGrant | None = None
    http: HttpGrant | None = None


_WASI_ONLY = ("env", "dirs", "args", "exit_status", "scratch", "stderr_excerpt", "body_file", "output_file", "devices", "argv_pointer")


def _check_scratch_files(index: int, spec: ModuleSpec) -> None:
    """`body_file` and `output_file` name files below `scratch`; `devices` known ones."""
    for key in ("body_file", "output_file"):
        value = getattr(spec, key)
        if value is None:
            continue
        if spec.scratch is None:
            raise ConfigError(f"modules[{index}].{key}", f'{key} {value!r} needs a scratch directory: set scratch (e.g. scratch = "/tmp")')
        try:
            relative_part(value, spec.scratch)
        except ValueError as exc:
            raise ConfigError(f"modules[{index}].{key}", str(exc)) from None
    if spec.body_file is not None and spec.body_file == spec.output_file:
        raise ConfigError(f"modules[{index}].output_file", "body_file and output_file name the same file")
    if spec.output_file is not None and spec.output != "raw":
        raise ConfigError(f"modules[{index}].output", 'an output_file is the response body as is: set output = "raw" (and content_type)')
    if spec.argv_pointer and spec.entry == "_start":
        raise ConfigError(f"modules[{index}].argv_pointer", "a command's _start takes no arguments: name the reactor's entry that takes (argc, argv)")
    unknown = [name for name in spec.devices if name not in DEVICES]
    if unknown:
        raise ConfigError(f"modules[{index}].devices", f"unknown device {unknown[0]!r}; expected some of {', '.join(DEVICES)}")
    if spec.devices and any(granted.guest.rstrip("/") == "/dev" for granted in spec.dirs):
        raise ConfigError(f"modules[{index}].devices", "a granted directory is already mapped at /dev")


#: Where each key of the old module table lives now (a loader's section held
#: them all, the host's section routes and filters): a startup error names it.
MOVED = {
    "modules": "[[plugins.wasm.config.modules]]",
    "secret_headers": "plugins.wasm.config.secret_headers",
    "routes": "[[plugins.wasm-http.config.routes]]",
    "filters": "[[plugins.wasm-filters.config.filters]]",
}


def refuse_moved(config: Iterable[str], keys: Iterable[str], why: str) -> None:
    """`ConfigError` for the first of `keys` present in `config`, naming where it moved."""
    for key in keys:
        if key in config:
            raise ConfigError(key, f"moved to {MOVED[key]} ({why})")


@attrs.frozen
class EngineConfig:
    """A loader plugin's ``config`` table: engine settings only, shared by
    every loader (so switching loader is renaming the section's header; see
    docs/wasm-abi.md and each loader's README):

    - `cache_dir` (".wasmkernel/cache", relative to the registry's directory):
      compiled artifacts
    - `workers` (2): calls running at once (the loader says where: worker
      processes, threads); `max_queued` (32) may wait, beyond that 503
    - `default_timeout` (10.0 s), `memory_limit_mb` (256), `compiler`:
      defaults for modules
    - `prewarm` (true): make every module ready as serving starts (a loader
      whose warm-up is still running or failed is not ready)
    - `watch` (true), `watch_interval` (1.0 s): hot-reload modules whose file changed

    The modules are the host's (`ModuleTable`); routes the wasm-http
    plugin's, filters the wasm-filters plugin's.
    """

    cache_dir: str = ".wasmkernel/cache"
    workers: int = attrs.field(default=2, validator=_positive)
    #: Calls that may wait for a worker; beyond, 503 with Retry-After.
    max_queued: int = attrs.field(default=32, validator=attrs.validators.ge(0))
    default_timeout: float = attrs.field(default=10.0, validator=_positive)
    compiler: str = "cranelift"
    memory_limit_mb: int = attrs.field(default=256, validator=_positive)
    prewarm: bool = True
    watch: bool = True
    watch_interval: float = attrs.field(default=1.0, validator=_positive)


@attrs.frozen(slots=False)  # a base of `LoaderConfig` beside `EngineConfig`
class ModuleTable:
    """The ``[plugins.wasm.config]`` table, whatever loader runs the modules:

    - `secret_headers`: request headers no module sees (unless its
      `grant_headers` lists them), besides every authenticator's credential headers
    - `[[...modules]]`: name, path, sha256, kind (compute | http | wasi | filter),
      compiler, timeout, memory_limit_mb, stateful, env, dirs (WASI only) and
      host-API grants (denied unless set): log, vars, kv, http; for programs
      from elsewhere: entry, body_file, output_file, devices, stderr_excerpt
      (WASI), stub_imports, compute_body (compute)
    """

    #: Request headers no module sees (unless its `grant_headers` lists them),
    #: besides every configured authenticator's credential headers.
    secret_headers: list[str] = attrs.field(factory=list)
    modules: list[ModuleSpec] = attrs.field(factory=list)

    def check(self) -> None:
        """Cross-field checks; `ConfigError` names the offending key."""
        seen: set[str] = set()
        for index, spec in enumerate(self.modules):
            if spec.name in seen:
                raise ConfigError(f"modules[{index}].name", f"duplicate module name {spec.name!r}")
            seen.add(spec.name)
            wasi_only = [key for key in _WASI_ONLY if getattr(spec, key)]
            defaults = attrs.fields(ModuleSpec)
            wasi_only += [key for key in ("output", "content_type", "entry") if getattr(spec, key) != getattr(defaults, key).default]
            if spec.compute_body == "bytes" and "content_type" in wasi_only:
                wasi_only.remove("content_type")  # the type of the bytes it returns
            if spec.compute_body and spec.kind != "compute":
                raise ConfigError(f"modules[{index}].compute_body", "only for kind = 'compute' modules")
            if wasi_only and spec.kind != "wasi":
                raise ConfigError(f"modules[{index}]", f"{', '.join(wasi_only)}: only for kind = 'wasi' modules")
            if spec.scratch is not None and not spec.scratch.startswith("/"):
                raise ConfigError(f"modules[{index}].scratch", f"expected an absolute guest path, got {spec.scratch!r}")
            _check_scratch_files(index, spec)
            if (spec.log or spec.vars is not None or spec.kv or spec.http) and spec.kind == "wasi":
                raise ConfigError(f"modules[{index}]", "the host API (log, vars, kv, http) is not offered to kind = 'wasi' modules")

    def spec(self, name: str) -> ModuleSpec:
        for spec in self.modules:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def withheld_headers(self, spec: ModuleSpec, credentials: Iterable[str]) -> frozenset[str]:
        """Lower-case names of the request headers `spec`'s module must not see."""
        withheld = {name.lower() for name in (*credentials, *self.secret_headers)}
        return frozenset(withheld - {name.lower() for name in spec.grant_headers})


@attrs.frozen
class LoaderConfig(EngineConfig, ModuleTable):
    """What a loader runs: its engine settings and the host's module table."""

    @classmethod
    def of(cls, engine: EngineConfig, table: ModuleTable) -> LoaderConfig:
        """The engine settings of `engine` with the module table `table`."""
        values = {field.name: getattr(engine, field.name) for field in attrs.fields(EngineConfig)}
        values.update({field.name: getattr(table, field.name) for field in attrs.fields(ModuleTable)})
        return cls(**values)

    def check_compilers(self, compilers: Iterable[str]) -> None:
        """`ConfigError` naming the module whose `compiler` the loader does not have."""
        allowed = tuple(compilers)
        for index, spec in enumerate(self.modules):
            if spec.compiler is not None and spec.compiler not in allowed:
                raise ConfigError(f"modules[{index}].compiler", f"unknown compiler {spec.compiler!r}; expected one of {', '.join(allowed)}")

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

    def concurrency_of(self, spec: ModuleSpec) -> int:
        return min(spec.max_concurrency or self.workers, self.workers)

    def memory_limit_of(self, spec: ModuleSpec) -> int:
        """The module's memory cap in bytes."""
        return (spec.memory_limit_mb if spec.memory_limit_mb is not None else self.memory_limit_mb) * MIB
