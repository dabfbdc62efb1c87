"""Running one call inside a runtime, runtime-independently: arguments in, outcome out, errors mapped."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from wasmkernel_wasm import ITEMSIZE, MIB, ArrayIn, ArrayOut

if TYPE_CHECKING:  # the errors import the kernel: only the main process raises them
    from wasmkernel_wasm import WasmError, WasmTimeout

ErrorKind = Literal["trap", "memory", "abi", "exit", "timeout"]

#: A trap counts as a memory-limit failure when less than this is left below the cap.
MEMORY_SLACK = 2 * MIB
#: At most this much of a WASI command's stdout is read.
STDOUT_LIMIT = 16 * MIB
#: At most this much of a WASI command's stderr is kept (and logged).
STDERR_LIMIT = 4096


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
    from wasmkernel_wasm import WasmTimeout

    return WasmTimeout(f"module '{module}' function '{function}' exceeded its time limit of {limit:g} s")


def outcome_error(module: str, function: str, outcome: Outcome, memory_limit_mb: int | None) -> WasmError:
    """The `WasmError` for a failed `Outcome` (naming module and function)."""
    from wasmkernel_wasm import WasmError, WasmMemoryLimit, WasmTrap

    where = f"module '{module}' function '{function}'"
    if outcome.error == "memory":
        return WasmMemoryLimit(f"{where} exceeded its memory limit of {memory_limit_mb} MiB ({outcome.message})")
    if outcome.error == "trap":
        return WasmTrap(f"{where} trapped: {outcome.message}")
    return WasmError(f"{where} failed: {outcome.message}")
