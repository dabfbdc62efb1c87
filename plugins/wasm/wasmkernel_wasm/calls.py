"""Running one call inside a runtime, runtime-independently: arguments in, outcome out, errors mapped."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import attrs

from wasmkernel_wasm import ITEMSIZE, MIB, ArrayIn, ArrayOut
from wasmkernel_wasm.errors import WasmError, WasmMemoryLimit, WasmTimeout, WasmTrap


def _log() -> Any:
    """The main process's logger; worker processes import this module without structlog."""
    import structlog

    return structlog.get_logger("wasmkernel.wasm")


ErrorKind = Literal["trap", "memory", "abi", "exit", "timeout", "denied"]

#: A trap counts as a memory-limit failure when less than this is left below the cap.
MEMORY_SLACK = 2 * MIB
#: At most this much of a WASI command's stdout is read.
STDOUT_LIMIT = 16 * MIB
#: At most this much of a WASI command's stderr is kept (and logged).
STDERR_LIMIT = 4096


@attrs.frozen
class ExportNames:
    """The exports the host uses: allocator, deallocator and memory (the
    registry's `alloc`, `dealloc`, `memory`). The allocator is called with
    (size) or (size, align) and the deallocator with (ptr), (ptr, size) or
    (ptr, size, align), by their arity (malloc/free, __wbindgen_malloc/free)."""

    alloc: str = "alloc"
    dealloc: str = "dealloc"
    memory: str = "memory"


DEFAULT_EXPORTS = ExportNames()


@attrs.frozen
class Outcome:
    """A call's result as a runtime reports it: `error` is None on success."""

    value: Any = None
    outputs: tuple[bytes, ...] = ()
    duration_ms: float = 0.0
    error: ErrorKind | None = None
    message: str = ""
    #: What a WASI command wrote to stderr (at most `STDERR_LIMIT` bytes).
    stderr: bytes = b""
    #: A WASI command's exit status.
    exit_status: int = 0
    #: Log lines (level, event, message, fields) of the module and its host calls, emitted by the main process.
    logs: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = ()


class Guest(Protocol):
    """One module instance, as the runtime-independent call code uses it."""

    def function(self, name: str) -> Callable[..., Any] | None:
        """The exported function `name` (called with plain numbers), or None."""

    def arity(self, name: str) -> int:
        """How many parameters the exported function `name` takes."""

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


def initialize(guest: Guest) -> None:
    """Run a reactor's `_initialize` (once per instance, before any other export)."""
    init = guest.function("_initialize")
    if init is not None:
        init()


def _allocator(guest: Guest, names: ExportNames) -> tuple[Callable[[int], int], Callable[[int, int], None]] | None:
    """alloc(size) and dealloc(ptr, size) over the module's own allocator exports."""
    alloc, dealloc = guest.function(names.alloc), guest.function(names.dealloc)
    if alloc is None or dealloc is None:
        return None
    alloc_align, dealloc_arity = guest.arity(names.alloc) > 1, guest.arity(names.dealloc)

    def allocate(size: int) -> int:
        return int(alloc(size, 8) if alloc_align else alloc(size))

    def free(ptr: int, size: int) -> None:
        dealloc(*(ptr, size, 8)[:dealloc_arity])

    return allocate, free


def call_export(
    guest: Guest, function: str, args: Sequence[int | float | ArrayIn | ArrayOut], memory_limit: int, names: ExportNames = DEFAULT_EXPORTS
) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out
    (through the module's allocator). Runtime errors propagate."""
    target = guest.function(function) if function not in (names.alloc, names.dealloc, "_initialize") else None
    if target is None:
        return Outcome(error="abi", message=f"no exported function '{function}'")
    allocator = _allocator(guest, names)
    buffers: list[tuple[int, int]] = []
    outputs: list[tuple[int, int]] = []
    values: list[int | float] = []
    for arg in args:
        if isinstance(arg, (ArrayIn, ArrayOut)):
            if allocator is None:
                return Outcome(error="abi", message=f"arrays need the allocator exports '{names.alloc}' and '{names.dealloc}'")
            size = len(arg.data) if isinstance(arg, ArrayIn) else arg.length * ITEMSIZE[arg.dtype]
            ptr = allocator[0](size)
            if ptr == 0 and size:  # a null pointer for zero bytes (Go's allocators) is no failure
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
        assert allocator is not None
        allocator[1](ptr, size)
    return Outcome(value=value, outputs=out, duration_ms=duration)


def handle_export(guest: Guest, request: bytes, names: ExportNames = DEFAULT_EXPORTS, export: str = "handle") -> Outcome:
    """Run `handle(req_ptr, req_len)` (or a filter's `on_request`/`on_response`,
    same shape); the outcome's value is the bytes it returned."""
    allocator, handle = _allocator(guest, names), guest.function(export)
    if allocator is None or handle is None:
        return Outcome(error="abi", message=f"no exported function '{export}'")
    alloc, dealloc = allocator
    ptr = alloc(len(request))
    if ptr == 0 and request:  # a null pointer for an empty body (Go's allocators) is no failure
        return Outcome(error="memory", message="alloc failed for the request")
    guest.write(ptr, request)
    start = time.perf_counter()
    packed = handle(ptr, len(request)) & 0xFFFFFFFFFFFFFFFF
    duration = (time.perf_counter() - start) * 1000
    dealloc(ptr, len(request))
    resp_ptr, resp_len = packed >> 32, packed & 0xFFFFFFFF
    if resp_ptr + resp_len > guest.memory_size():
        return Outcome(error="abi", message=f"{export} returned a buffer outside its memory")
    body = guest.read(resp_ptr, resp_len)
    dealloc(resp_ptr, resp_len)
    return Outcome(value=body, duration_ms=duration)


def call_with_argv(guest: Guest, entry: str, argv: Sequence[str], names: ExportNames) -> Outcome | None:
    """Call `entry(argc, argv)` with `argv` as C strings and a NULL-ended i32
    pointer array, copied in through the module's allocator; an `Outcome` if
    the module cannot take them (its result is ignored; runtime errors propagate)."""
    allocator, function = _allocator(guest, names), guest.function(entry)
    if allocator is None or function is None:
        return Outcome(error="abi", message=f"argv by pointer needs the exports '{entry}', '{names.alloc}' and '{names.dealloc}'")
    strings = [arg.encode() + b"\0" for arg in argv]
    text = b"".join(strings)
    size = len(text) + 4 * (len(strings) + 1)
    base = allocator[0](size)
    if base == 0:
        return Outcome(error="memory", message=f"alloc({size}) failed for argv")
    if base < 0 or base + size > guest.memory_size():
        return Outcome(error="abi", message=f"{names.alloc} returned a buffer outside its memory")
    offsets = [base + sum(len(s) for s in strings[:index]) for index in range(len(strings))]
    table = b"".join(offset.to_bytes(4, "little") for offset in (*offsets, 0))
    guest.write(base, text + table)
    function(len(strings), base + len(text))
    return None


def timeout_error(module: str, function: str, limit: float) -> WasmTimeout:
    return WasmTimeout(f"module '{module}' function '{function}' exceeded its time limit of {limit:g} s")


def outcome_error(module: str, function: str, outcome: Outcome, memory_limit_mb: int | None) -> WasmError:
    """The `WasmError` for a failed `Outcome` (naming module and function)."""

    where, reason = f"module '{module}' function '{function}'", outcome.message
    if outcome.error == "denied":
        _log().error("wasm.host_call_denied", module=module, function=function, reason=reason)
        return WasmError(f"{where} failed: a host call was refused (the server log says why)", reason=reason)
    if outcome.error == "trap" and reason.startswith("host call "):
        _log().warning("wasm.host_call_fault", module=module, function=function, reason=reason)
    else:
        _log().warning("wasm.call_failed", module=module, function=function, error=outcome.error, reason=reason)
    if outcome.error == "memory":
        return WasmMemoryLimit(f"{where} exceeded its memory limit of {memory_limit_mb} MiB", reason=reason)
    if outcome.error == "trap":
        return WasmTrap(f"{where} trapped (the server log says why)", reason=reason)
    if outcome.error == "abi":  # the host's own words about the module's shape
        return WasmError(f"{where} failed: {reason}", reason=reason)
    return WasmError(f"{where} failed (the server log says why)", reason=reason)


def emit_logs(module: str, outcome: Outcome) -> None:
    """Emit the module's log lines in the calling task (so they carry the
    request id). A guest's fields are nested under one key, `guest`: never
    the host's own keys (`status`, `exception`, structlog's `_record`…)."""
    for level, event, message, fields in outcome.logs:
        if event == "wasm.guest_log":
            getattr(_log(), level)(event, module=module, message=message, guest=dict(fields))
        else:  # the host's notes about the call: its own fields
            getattr(_log(), level)(event, module=module, message=message, **dict(fields))
