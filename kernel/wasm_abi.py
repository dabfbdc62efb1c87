"""Runtime-independent pieces shared by WebAssembly loader plugins.

A loader (wasmer, wasmtime) compiles and runs modules; everything else is
here: the registry configuration (`LoaderConfig`, `ModuleSpec`, `RouteSpec`),
reading and checking module files (sha256 pin, declared memory, memory cap),
the on-disk compile-cache key, the HTTP-handler wire format, WAGI/CGI
environment and output, route binding, file watching, metrics and the
``wasmkernel wasm`` CLI. Nothing here imports a WebAssembly runtime.
See docs/wasm-abi.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import attrs
import structlog
import trio

from kernel.commands import Command
from kernel.config import ConfiguredPlugin
from kernel.errors import ConfigError, StartupError
from kernel.hookspecs import hookimpl
from kernel.http import Request
from kernel.metrics import MetricSource, Sample
from kernel.responses import Response
from kernel.routing import AuthRequirement, Route
from kernel.wasm import (
    ITEMSIZE,
    ArrayIn,
    ArrayOut,
    ModuleInfo,
    ModuleKind,
    ModuleLoader,
    WasmError,
    WasmMemoryLimit,
    WasmRequest,
    WasmResponse,
    WasmTimeout,
    WasmTrap,
)

if TYPE_CHECKING:
    from kernel.app import Application

log = structlog.get_logger("wasmkernel.wasm")

PAGE = 65536
MIB = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# -- configuration ------------------------------------------------------------


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
    across calls (default: a fresh instance per call). `env` and `dirs` are
    granted to WASI modules only (nothing is granted by default).
    """

    name: str = attrs.field(validator=_check_name)
    path: str
    sha256: str | None = attrs.field(default=None, validator=_check_sha256)
    kind: ModuleKind = "compute"
    compiler: str | None = None
    timeout: float | None = attrs.field(default=None, validator=_positive)
    memory_limit_mb: int | None = attrs.field(default=None, validator=_positive)
    stateful: bool = False
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

    def memory_limit_of(self, spec: ModuleSpec) -> int:
        """The module's memory cap in bytes."""
        return (spec.memory_limit_mb if spec.memory_limit_mb is not None else self.memory_limit_mb) * MIB


# -- module files -------------------------------------------------------------


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at `pos`; (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _limits(data: bytes, pos: int) -> tuple[int, int | None, int]:
    flags = data[pos]
    minimum, pos = _leb(data, pos + 1)
    maximum = None
    if flags & 1:
        maximum, pos = _leb(data, pos)
    return minimum, maximum, pos


def _name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _leb(data, pos)
    return data[pos : pos + length].decode("utf-8", "replace"), pos + length


@attrs.frozen
class WasmShape:
    """What a module binary declares: its exports and its memory (in pages)."""

    exports: tuple[str, ...]
    memory_min: int | None
    memory_max: int | None
    memory_imported: bool


def inspect_wasm(data: bytes) -> WasmShape:
    """Read exports and memory limits from a module binary; `ValueError` if it
    is not one. (Full validation is the runtime's job.)"""
    if data[:4] != b"\0asm" or len(data) < 8:
        raise ValueError("not a WebAssembly module (bad magic number)")
    exports: list[str] = []
    memory: tuple[int, int | None] | None = None
    imported = False
    pos = 8
    try:
        while pos < len(data):
            section = data[pos]
            size, body = _leb(data, pos + 1)
            end = body + size
            if end > len(data):
                raise ValueError("truncated section")
            if section == 2:  # imports
                count, p = _leb(data, body)
                for _ in range(count):
                    _, p = _name(data, p)
                    _, p = _name(data, p)
                    kind = data[p]
                    p += 1
                    if kind == 0:
                        _, p = _leb(data, p)
                    elif kind == 1:
                        _, _, p = _limits(data, p + 1)
                    elif kind == 2:
                        minimum, maximum, p = _limits(data, p)
                        memory, imported = (minimum, maximum), True
                    else:
                        p += 2
            elif section == 5:  # memories
                count, p = _leb(data, body)
                if count:
                    minimum, maximum, _ = _limits(data, p)
                    memory = (minimum, maximum)
            elif section == 7:  # exports
                count, p = _leb(data, body)
                for _ in range(count):
                    name, p = _name(data, p)
                    _, p = _leb(data, p + 1)
                    exports.append(name)
            pos = end
    except IndexError:
        raise ValueError("truncated module") from None
    return WasmShape(tuple(exports), memory[0] if memory else None, memory[1] if memory else None, imported)


def cap_memory(data: bytes, max_pages: int) -> bytes:
    """Rewrite the module's own memory maximum to `max_pages` (if it declares
    none or a larger one): the runtime then enforces the cap at `memory.grow`."""
    pos = 8
    while pos < len(data):
        section = data[pos]
        size, body = _leb(data, pos + 1)
        end = body + size
        if section == 5:
            count, p = _leb(data, body)
            if not count:
                return data
            flags = data[p]
            minimum, maximum, rest = _limits(data, p)
            if maximum is not None and maximum <= max_pages:
                return data
            entry = bytes([flags | 1]) + _uleb(minimum) + _uleb(max_pages)
            content = _uleb(count) + entry + data[rest:end]
            return data[:pos] + bytes([5]) + _uleb(len(content)) + content + data[end:]
        pos = end
    return data


@attrs.frozen
class PreparedModule:
    """A module file read, checked and capped, ready to compile."""

    spec: ModuleSpec
    path: Path
    original_sha256: str
    size: int
    wasm: bytes
    shape: WasmShape
    memory_limit: int


def prepare_module(spec: ModuleSpec, base: Path, config: LoaderConfig) -> PreparedModule:
    """Read `spec`'s file, check its sha256 pin and memory declaration, and cap
    its memory at the module's limit. `StartupError` names the module."""
    path = (base / spec.path).resolve()
    try:
        original = path.read_bytes()
    except OSError as exc:
        raise StartupError(f"wasm module '{spec.name}': cannot read {spec.path}: {exc.strerror}") from None
    digest = hashlib.sha256(original).hexdigest()
    if spec.sha256 is not None and digest != spec.sha256:
        raise StartupError(f"wasm module '{spec.name}': sha256 mismatch for {spec.path}: expected {spec.sha256}, file has {digest}")
    try:
        shape = inspect_wasm(original)
    except ValueError as exc:
        raise StartupError(f"wasm module '{spec.name}': {spec.path} is not a valid module: {exc}") from None
    limit = config.memory_limit_of(spec)
    wasm = original
    if shape.memory_min is not None:
        if shape.memory_min * PAGE > limit:
            raise StartupError(
                f"wasm module '{spec.name}' needs at least {shape.memory_min * PAGE // MIB} MiB of memory, over its memory_limit_mb of {limit // MIB}"
            )
        if shape.memory_imported:
            raise StartupError(f"wasm module '{spec.name}' imports its memory; modules must define and export it")
        if shape.memory_max is None or shape.memory_max * PAGE > limit:
            wasm = cap_memory(original, limit // PAGE)
            declared = "unbounded" if shape.memory_max is None else f"{shape.memory_max * PAGE // MIB} MiB"
            log.info("wasm.memory_capped", module=spec.name, declared=declared, limit_mb=limit // MIB)
        else:
            limit = shape.memory_max * PAGE
    kind_exports = {"http": ("memory", "alloc", "dealloc", "handle"), "wasi": ("_start",), "compute": ("memory", "alloc", "dealloc")}
    missing = [name for name in kind_exports[spec.kind] if name not in shape.exports]
    if missing:
        raise StartupError(f"wasm module '{spec.name}' (kind {spec.kind}) does not export {', '.join(missing)}")
    return PreparedModule(spec, path, digest, len(original), wasm, shape, limit)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return hashlib.sha256(line.encode()).hexdigest()[:12]
    except OSError:
        pass
    return platform.processor() or "unknown"


def cache_path(cache_dir: Path, name: str, wasm: bytes, runtime: str, runtime_version: str, compiler: str) -> Path:
    """Where the compiled artifact of `wasm` lives: keyed by the (capped)
    module's sha256, the runtime and its version, the compiler and the platform."""
    key = "|".join((hashlib.sha256(wasm).hexdigest(), runtime, runtime_version, compiler, sys.platform, platform.machine(), _cpu_flags()))
    return cache_dir / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.{runtime}"


_CACHE_MAGIC = b"WKWASM1\n"


def write_cached(path: Path, artifact: bytes) -> None:
    """Store a compiled artifact atomically, framed with its sha256 so that a
    corrupt file is detected before the runtime ever sees it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(_CACHE_MAGIC + hashlib.sha256(artifact).digest() + artifact)
    os.replace(tmp, path)


def read_cached(path: Path, verify: bool = True) -> bytes:
    """The artifact stored by `write_cached`; `ValueError` if missing framing
    or (with `verify`) a digest mismatch; `OSError` if unreadable."""
    data = path.read_bytes()
    header = len(_CACHE_MAGIC) + 32
    if not data.startswith(_CACHE_MAGIC) or len(data) < header:
        raise ValueError("not a WasmKernel cache file")
    artifact = data[header:]
    if verify and hashlib.sha256(artifact).digest() != data[len(_CACHE_MAGIC) : header]:
        raise ValueError("checksum mismatch")
    return artifact


T = TypeVar("T")


def first_line(exc: BaseException) -> str:
    """The first line of a runtime error's message (no backtraces)."""
    text = str(exc).strip()
    return text.splitlines()[0].removeprefix("RuntimeError: ") if text else type(exc).__name__


def compile_cached(
    prepared: PreparedModule,
    path: Path,
    load: Callable[[bytes], T],
    compile: Callable[[bytes], bytes],
    errors: tuple[type[Exception], ...],
) -> tuple[T, str]:
    """`load` the artifact cached at `path`, or `compile` the module, store the
    artifact and load that; returns (loaded, "hit" | "compiled"). `errors` are
    the runtime's exceptions for a corrupt artifact or an invalid module."""
    unusable: tuple[type[Exception], ...] = (OSError, ValueError, *errors)
    try:
        return load(read_cached(path)), "hit"
    except unusable as exc:
        if path.exists():
            log.warning("wasm.cache_corrupt", module=prepared.spec.name, error=first_line(exc), action="recompiling")
    try:
        artifact = compile(prepared.wasm)
    except errors as exc:
        raise StartupError(f"wasm module '{prepared.spec.name}' does not compile: {first_line(exc)}") from None
    write_cached(path, artifact)
    return load(artifact), "compiled"


# -- HTTP handler wire format -------------------------------------------------

_U32 = struct.Struct("<I")


def _field(out: bytearray, value: bytes) -> None:
    out += _U32.pack(len(value))
    out += value


def encode_request(request: WasmRequest) -> bytes:
    """The bytes `handle(req_ptr, req_len)` receives (u32 LE lengths)."""
    out = bytearray()
    for value in (request.method, request.path, request.query):
        _field(out, value.encode())
    for pairs in (request.params, request.headers):
        out += _U32.pack(len(pairs))
        for name, value in pairs:
            _field(out, name.encode())
            _field(out, value.encode())
    _field(out, request.body)
    return bytes(out)


def decode_response(data: bytes, module: str) -> WasmResponse:
    """Parse what `handle` returned; `WasmError` if it is malformed."""
    pos = 0

    def u32() -> int:
        nonlocal pos
        if pos + 4 > len(data):
            raise ValueError("truncated")
        (value,) = _U32.unpack_from(data, pos)
        pos += 4
        return int(value)

    def field() -> bytes:
        nonlocal pos
        length = u32()
        if pos + length > len(data):
            raise ValueError("truncated field")
        pos += length
        return data[pos - length : pos]

    try:
        status = u32()
        headers = tuple((field().decode(), field().decode()) for _ in range(u32()))
        body = field()
        if pos != len(data) or not 100 <= status <= 599:
            raise ValueError("trailing bytes" if pos != len(data) else f"status {status}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WasmError(f"module '{module}' returned a malformed HTTP response ({exc})") from None
    return WasmResponse(status, headers, body)


# -- calls inside a runtime --------------------------------------------------

ErrorKind = Literal["trap", "memory", "abi", "exit", "timeout"]

#: A trap counts as a memory-limit failure when less than this is left below the cap.
MEMORY_SLACK = 2 * MIB
#: At most this much of a WASI command's stdout is read.
STDOUT_LIMIT = 16 * MIB


@attrs.frozen
class Outcome:
    """A call's result as a runtime reports it: `error` is None on success."""

    value: Any = None
    outputs: tuple[bytes, ...] = ()
    duration_ms: float = 0.0
    error: ErrorKind | None = None
    message: str = ""


class Guest(Protocol):
    """One module instance, as the runtime-independent call code uses it."""

    def function(self, name: str) -> Callable[..., Any] | None:
        """The exported function `name` (called with plain numbers), or None."""

    def read(self, ptr: int, size: int) -> bytes: ...

    def write(self, ptr: int, data: bytes) -> None: ...

    def memory_size(self) -> int:
        """The current size of the exported memory in bytes."""


def memory_outcome(guest: Guest | None, memory_limit: int, message: str) -> Outcome | None:
    """A memory-limit `Outcome` if `guest`'s memory is at its cap when it failed."""
    if guest is None:
        return None
    size = guest.memory_size()
    if size + MEMORY_SLACK < memory_limit:
        return None
    return Outcome(error="memory", message=f"{message} with {size // MIB} MiB in use")


def call_export(guest: Guest, function: str, args: Sequence[int | float | ArrayIn | ArrayOut], memory_limit: int) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out
    (through the module's `alloc`/`dealloc`). Runtime errors propagate."""
    target = guest.function(function) if function not in ("alloc", "dealloc") else None
    alloc, dealloc = guest.function("alloc"), guest.function("dealloc")
    if target is None or alloc is None or dealloc is None:
        return Outcome(error="abi", message=f"no exported function '{function}'")
    buffers: list[tuple[int, int]] = []
    outputs: list[tuple[int, int]] = []
    values: list[int | float] = []
    for arg in args:
        if isinstance(arg, (ArrayIn, ArrayOut)):
            size = len(arg.data) if isinstance(arg, ArrayIn) else arg.length * ITEMSIZE[arg.dtype]
            ptr = alloc(size)
            if ptr == 0:
                return Outcome(error="memory", message=f"alloc({size}) failed: the module's memory limit is {memory_limit // MIB} MiB")
            buffers.append((ptr, size))
            if isinstance(arg, ArrayIn):
                guest.write(ptr, arg.data)
            else:
                outputs.append((ptr, size))
            values.append(ptr)
        else:
            values.append(arg)
    start = time.perf_counter()
    value = target(*values)
    duration = (time.perf_counter() - start) * 1000
    out = tuple(guest.read(ptr, size) for ptr, size in outputs)
    for ptr, size in buffers:
        dealloc(ptr, size)
    return Outcome(value=value, outputs=out, duration_ms=duration)


def handle_export(guest: Guest, request: bytes) -> Outcome:
    """Run `handle(req_ptr, req_len)`; the outcome's value is the response bytes."""
    alloc, dealloc, handle = guest.function("alloc"), guest.function("dealloc"), guest.function("handle")
    if alloc is None or dealloc is None or handle is None:
        return Outcome(error="abi", message="no exported function 'handle'")
    ptr = alloc(len(request))
    if ptr == 0:
        return Outcome(error="memory", message="alloc failed for the request")
    guest.write(ptr, request)
    start = time.perf_counter()
    packed = handle(ptr, len(request)) & 0xFFFFFFFFFFFFFFFF
    duration = (time.perf_counter() - start) * 1000
    dealloc(ptr, len(request))
    resp_ptr, resp_len = packed >> 32, packed & 0xFFFFFFFF
    if resp_ptr + resp_len > guest.memory_size():
        return Outcome(error="abi", message="handle returned a response outside its memory")
    body = guest.read(resp_ptr, resp_len)
    dealloc(resp_ptr, resp_len)
    return Outcome(value=body, duration_ms=duration)


def timeout_error(module: str, function: str, limit: float) -> WasmTimeout:
    return WasmTimeout(f"module '{module}' function '{function}' exceeded its time limit of {limit:g} s")


def outcome_error(module: str, function: str, outcome: Outcome, memory_limit_mb: int | None) -> WasmError:
    """The `WasmError` for a failed `Outcome` (naming module and function)."""
    where = f"module '{module}' function '{function}'"
    if outcome.error == "memory":
        return WasmMemoryLimit(f"{where} exceeded its memory limit of {memory_limit_mb} MiB ({outcome.message})")
    if outcome.error == "trap":
        return WasmTrap(f"{where} trapped: {outcome.message}")
    return WasmError(f"{where} failed: {outcome.message}")


# -- WAGI / CGI -----------------------------------------------------------------

_SKIPPED_HEADERS = {"content-type", "content-length", "connection", "proxy", "authorization", "cookie"}


def cgi_env(request: WasmRequest, route: str, server_name: str = "localhost", server_port: str = "80") -> dict[str, str]:
    """The CGI variables a WAGI command sees. `Authorization` and `Cookie` are
    not passed (credentials stay in the host)."""
    headers = dict(request.headers)
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "WasmKernel",
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "REQUEST_METHOD": request.method,
        "PATH_INFO": request.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": request.query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(request.body)),
        "X_MATCHED_ROUTE": route,
    }
    for name, value in request.headers:
        if name not in _SKIPPED_HEADERS:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    for name, value in request.params:
        env["X_PARAM_" + name.upper().replace("-", "_")] = value
    return env


def parse_cgi_output(stdout: bytes, module: str) -> WasmResponse:
    """Split a WAGI command's stdout into header lines (`Status`, `Location`,
    `Content-Type`, others) and body; `WasmError` if there is no header block."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = stdout.partition(separator)
        if found:
            break
    else:
        raise WasmError(f"module '{module}' wrote no CGI header block (expected header lines, a blank line, then the body)")
    status: int | None = None
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if not colon:
            raise WasmError(f"module '{module}' wrote a malformed CGI header line")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            if not code.isdigit() or not 100 <= int(code) <= 599:
                raise WasmError(f"module '{module}' wrote an invalid CGI Status: {value[:40]!r}")
            status = int(code)
        else:
            headers.append((name.lower(), value))
    if status is None:
        status = 302 if any(name == "location" for name, _ in headers) else 200
    return WasmResponse(status, tuple(headers), body)


# -- routes -------------------------------------------------------------------


async def wasm_request(request: Request) -> WasmRequest:
    """The `WasmRequest` for a kernel request (route params as strings)."""
    return WasmRequest(
        method=request.method,
        path=request.path,
        query=request.query_string.decode("latin-1"),
        params=tuple((name, str(value)) for name, value in request.path_params.items()),
        headers=tuple((name.lower(), value) for name, value in request.headers),
        body=await request.body(),
    )


def _to_response(result: WasmResponse) -> Response:
    return Response(result.body, status=result.status, headers=list(result.headers))


def bind_routes(loader: ModuleLoader, config: LoaderConfig) -> list[Route]:
    """Kernel routes serving the configured http and wasi modules."""
    routes = []
    for spec in config.routes:
        kind = config.spec(spec.module).kind
        routes.append(
            Route(
                spec.path,
                _http_endpoint(loader, spec.module) if kind == "http" else _wasi_endpoint(loader, spec.module, spec.path),
                methods=tuple(spec.methods),
                name=spec.name or f"wasm:{spec.module}:{spec.path}",
                auth=spec.requirement(),
                summary=f"WebAssembly module '{spec.module}' ({kind})",
                tags=("wasm",),
            )
        )
    return routes


def _http_endpoint(loader: ModuleLoader, module: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _to_response(await loader.handle_http(module, await wasm_request(request)))

    return endpoint


def _wasi_endpoint(loader: ModuleLoader, module: str, route: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        wreq = await wasm_request(request)
        host = (request.headers.get("host") or "localhost").rsplit(":", 1)
        server = request.scope.get("server") or ("localhost", 80)
        env = cgi_env(wreq, route, server_name=host[0], server_port=str(server[1]))
        return _to_response(await loader.run_wasi(module, wreq, env))

    return endpoint


# -- file watching ------------------------------------------------------------


def _stat(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


async def watch_files(paths: Callable[[], Mapping[str, Path]], changed: Callable[[str], Awaitable[Any]], interval: float = 1.0) -> None:
    """Poll (mtime, size) of each named file every `interval` seconds and
    await `changed(name)` when it changes; errors are logged, never raised."""
    seen = {name: _stat(path) for name, path in paths().items()}
    while True:
        await trio.sleep(interval)
        for name, path in paths().items():
            now = _stat(path)
            if now is None or now == seen.get(name):
                continue
            seen[name] = now
            try:
                await changed(name)
            except Exception as exc:
                log.error("wasm.reload_failed", module=name, error=str(exc), action="the previous version keeps serving")


# -- metrics ------------------------------------------------------------------


@attrs.define
class CallMetrics:
    """Calls, errors by kind and time spent, per module and function."""

    calls: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    errors: Counter[tuple[str, str, str]] = attrs.field(factory=Counter)
    seconds: defaultdict[tuple[str, str], float] = attrs.field(factory=lambda: defaultdict(float))

    def record(self, module: str, function: str, seconds: float, error: str | None = None) -> None:
        self.calls[module, function] += 1
        self.seconds[module, function] += seconds
        if error is not None:
            self.errors[module, function, error] += 1

    def collect(self) -> Iterable[Sample]:
        for (module, function), count in self.calls.items():
            labels = {"module": module, "function": function}
            yield Sample("wasm_calls_total", count, "counter", labels, "WebAssembly calls")
            yield Sample("wasm_call_seconds_count", count, "summary", labels, "WebAssembly call duration")
            yield Sample("wasm_call_seconds_sum", self.seconds[module, function], "summary", labels, "WebAssembly call duration")
        for (module, function, kind), count in self.errors.items():
            yield Sample("wasm_errors_total", count, "counter", {"module": module, "function": function, "kind": kind}, "Failed WebAssembly calls")


# -- CLI ------------------------------------------------------------------------


def _loader_of(args: argparse.Namespace) -> ModuleLoader:
    from kernel.app import load_application

    app = load_application(args.registry)
    if app.module_loader is None:
        raise StartupError("no module loader plugin is enabled in the registry")
    return app.module_loader


def _wasm_list(args: argparse.Namespace) -> int:
    try:
        infos = _loader_of(args).prepare()
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    rows = [[i.name, i.kind, str(i.size), i.sha256[:12], i.compiler, i.cache, " ".join(e for e in i.exports if not e.startswith("__"))] for i in infos]
    headers = ["name", "kind", "size", "sha256", "compiler", "cache", "exports"]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, ["-" * w for w in widths], *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _wasm_reload(args: argparse.Namespace) -> int:
    try:
        loader = _loader_of(args)
        (info,) = loader.prepare(args.name)
    except StartupError as exc:
        print(f"wasmkernel: {exc}", file=sys.stderr)
        return 1
    os.utime(info.path)
    print(f"{info.name}: compiled into the cache ({info.cache}); touched {info.path} so a running server reloads it")
    return 0


def _wasm_build(args: argparse.Namespace) -> int:
    from kernel.registry import default_registry_path

    base = Path(args.registry or default_registry_path()).resolve().parent
    script = Path(args.script) if args.script else base / "wasm_modules" / "build.sh"
    if not script.is_file():
        print(f"wasmkernel: build script not found: {script}", file=sys.stderr)
        return 1
    return subprocess.call(["bash", str(script), *args.crates])


def _wasm_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="wasm_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="declared modules: kind, size, sha256, exports, cache state").set_defaults(wasm_handler=_wasm_list)
    reload = actions.add_parser("reload", help="recompile NAME into the cache and touch its file (a running server reloads it)")
    reload.add_argument("name")
    reload.set_defaults(wasm_handler=_wasm_reload)
    build = actions.add_parser("build", help="build the guest modules (wasm_modules/build.sh)")
    build.add_argument("crates", nargs="*", help="only these crates")
    build.add_argument("--script", default=None, help="build script (default: wasm_modules/build.sh next to the registry)")
    build.set_defaults(wasm_handler=_wasm_build)


def wasm_commands() -> list[Command]:
    """The ``wasmkernel wasm list|reload|build`` command (for loader plugins' `wasmkernel_commands`)."""
    return [Command("wasm", "WebAssembly modules: list, reload NAME, build", lambda args: int(args.wasm_handler(args)), _wasm_arguments)]


def module_info(prepared: PreparedModule, compiler: str, cache: str, config: LoaderConfig, generation: int) -> ModuleInfo:
    spec = prepared.spec
    return ModuleInfo(
        name=spec.name,
        kind=spec.kind,
        path=str(prepared.path),
        size=prepared.size,
        sha256=prepared.original_sha256,
        exports=prepared.shape.exports,
        compiler=compiler,
        cache=cache,
        timeout=config.timeout_of(spec),
        memory_limit_mb=prepared.memory_limit // MIB,
        generation=generation,
    )


# -- plugin -------------------------------------------------------------------


class ConfiguredLoader(ModuleLoader, Protocol):
    """A loader built from a `LoaderConfig`, with call metrics."""

    config: LoaderConfig
    metrics: CallMetrics


class LoaderPlugin(ConfiguredPlugin[LoaderConfig]):
    """Base of a loader plugin: parses and checks its `LoaderConfig`, provides
    the loader, its routes, its metrics and the ``wasmkernel wasm`` command.
    Subclasses set `compilers` and implement `create`."""

    config_class = LoaderConfig
    compilers: tuple[str, ...]
    loader: ConfiguredLoader | None = None

    def create(self, config: LoaderConfig, base: Path, app: Application) -> ConfiguredLoader:
        raise NotImplementedError

    def configured(self) -> None:
        self.config.check(self.compilers)
        self.loader = self.create(self.config, self.app.registry.path.parent.resolve(), self.app)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return bind_routes(self.loader, self.config) if self.loader is not None else []

    @hookimpl
    def wasmkernel_module_loader(self, app: Application) -> ModuleLoader | None:
        return self.loader

    @hookimpl
    def wasmkernel_metric_sources(self, app: Application) -> Iterable[MetricSource]:
        return [self.loader.metrics] if self.loader is not None else []

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return wasm_commands()
