"""Reading and preparing module files: exports, declared memory, memory cap, sha256 pin, compile cache."""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs
import structlog

from wasmkernel import StartupError
from wasmkernel_wasm import MIB, PAGE, ModuleInfo
from wasmkernel_wasm.artifacts import error_cause, first_line, read_cached, write_cached
from wasmkernel_wasm.config import LoaderConfig, ModuleSpec

log = structlog.get_logger("wasmkernel.wasm")


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


IMPORT_KINDS = ("function", "table", "memory", "global", "tag")
VALUE_TYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
Signature = tuple[str, tuple[str, ...], tuple[str, ...]]


def _types(data: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    count, pos = _leb(data, pos)
    return tuple(VALUE_TYPES.get(data[pos + i], f"type 0x{data[pos + i]:02x}") for i in range(count)), pos + count


#: How a component binary starts (magic, then version 0x0d and layer 1); a core module has version 1.
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"


@attrs.frozen
class WasmShape:
    """What a module binary declares: its imports (module, name, kind), exports,
    memory (in pages) and the features a runtime may lack."""

    exports: tuple[str, ...]
    memory_min: int | None
    memory_max: int | None
    memory_imported: bool
    imports: tuple[tuple[str, str, str], ...] = ()
    #: A shared memory (the threads proposal).
    shared_memory: bool = False
    #: A tag section or tag import (the exception-handling proposal).
    tags: bool = False
    #: Exported functions: (name, parameter types, result types).
    signatures: tuple[Signature, ...] = ()


def inspect_wasm(data: bytes) -> WasmShape:
    """Read imports, exports and memory limits from a module binary; `ValueError`
    if it is not one. (Full validation is the runtime's job.)"""
    if data[:4] != b"\0asm" or len(data) < 8:
        raise ValueError("not a WebAssembly module (bad magic number)")
    exports: list[str] = []
    imports: list[tuple[str, str, str]] = []
    types: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    functions: list[int] = []  # type index of each function, imported ones first
    exported: list[tuple[str, int]] = []
    memory: tuple[int, int | None] | None = None
    imported = shared = tags = False
    pos = 8
    try:
        while pos < len(data):
            section = data[pos]
            size, body = _leb(data, pos + 1)
            end = body + size
            if end > len(data):
                raise ValueError("truncated section")
            if section == 1:  # types
                count, p = _leb(data, body)
                for _ in range(count):
                    params, p = _types(data, p + 1)  # after the 0x60 form
                    results, p = _types(data, p)
                    types.append((params, results))
            elif section == 3:  # functions
                count, p = _leb(data, body)
                for _ in range(count):
                    index, p = _leb(data, p)
                    functions.append(index)
            elif section == 2:  # imports
                count, p = _leb(data, body)
                for _ in range(count):
                    module, p = _name(data, p)
                    field, p = _name(data, p)
                    kind = data[p]
                    p += 1
                    imports.append((module, field, IMPORT_KINDS[kind] if kind < len(IMPORT_KINDS) else f"kind {kind}"))
                    if kind == 0:
                        index, p = _leb(data, p)
                        functions.append(index)
                    elif kind == 1:
                        _, _, p = _limits(data, p + 1)
                    elif kind == 2:
                        shared = shared or bool(data[p] & 2)
                        minimum, maximum, p = _limits(data, p)
                        memory, imported = (minimum, maximum), True
                    elif kind == 4:
                        tags = True
                        _, p = _leb(data, p + 1)
                    else:
                        p += 2
            elif section == 5:  # memories
                count, p = _leb(data, body)
                if count:
                    shared = shared or bool(data[p] & 2)
                    minimum, maximum, _ = _limits(data, p)
                    memory = (minimum, maximum)
            elif section == 7:  # exports
                count, p = _leb(data, body)
                for _ in range(count):
                    name, p = _name(data, p)
                    kind = data[p]
                    index, p = _leb(data, p + 1)
                    exports.append(name)
                    if kind == 0:
                        exported.append((name, index))
            elif section == 13:  # tags
                tags = True
            pos = end
    except IndexError:
        raise ValueError("truncated module") from None
    signatures = tuple((name, *types[functions[index]]) for name, index in exported if index < len(functions) and functions[index] < len(types))
    return WasmShape(tuple(exports), memory[0] if memory else None, memory[1] if memory else None, imported, tuple(imports), shared, tags, signatures)


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
    if original[:8] == COMPONENT_HEADER:
        raise StartupError(
            f"wasm module '{spec.name}': {spec.path} is a WebAssembly component (WASI 0.2), not a core module: "
            'serve it with the components plugin (enable [plugins.components] and declare it there, kind = "wasi-http" or "wasi-cli")'
        )
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
    kind_exports = {
        "http": (spec.memory, spec.alloc, spec.dealloc, "handle"),
        "wasi": (spec.entry,),
        "compute": (),
        "filter": (spec.memory, spec.alloc, spec.dealloc, "on_request"),
    }
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


def cache_path(cache_dir: Path, wasm: bytes, runtime: str, runtime_version: str, compiler: str) -> Path:
    """Where the compiled artifact of `wasm` lives: keyed by content only (the
    capped module's sha256, the runtime and its version, the compiler and the
    platform), so one binary declared under two names compiles once."""
    key = "|".join((hashlib.sha256(wasm).hexdigest(), runtime, runtime_version, compiler, sys.platform, platform.machine(), _cpu_flags()))
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.{runtime}"


T = TypeVar("T")

#: Modules at least this large are announced before they compile (a warning
#: with the size and this threshold): tens of MiB of code take minutes and
#: gigabytes to compile (yosys: 64 s; an 18 MB component: 11-26 s, 370 MB).
SLOW_COMPILE_BYTES = 8 * MIB


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
    if len(prepared.wasm) >= SLOW_COMPILE_BYTES:
        log.warning(
            "wasm.slow_compile",
            module=prepared.spec.name,
            bytes=len(prepared.wasm),
            threshold_bytes=SLOW_COMPILE_BYTES,
            reason="a module this large can take minutes and gigabytes of memory to compile; the artifact is cached for later starts",
        )
    try:
        artifact = compile(prepared.wasm)
    except errors as exc:
        raise StartupError(f"wasm module '{prepared.spec.name}' does not compile: {error_cause(exc)}") from None
    write_cached(path, artifact)
    return load(artifact), "compiled"


def module_info(prepared: PreparedModule, compiler: str, cache: str, config: LoaderConfig, generation: int) -> ModuleInfo:
    """What `ModuleLoader.modules()` reports of `prepared`, compiled by `compiler` (`cache`: hit or compiled)."""
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
        signatures=prepared.shape.signatures,
    )
