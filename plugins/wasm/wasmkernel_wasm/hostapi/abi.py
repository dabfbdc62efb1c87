"""The `wasmkernel` host functions, runtime-independently.

A loader links `FUNCTIONS` (name → parameter count; every parameter i32,
every result i64) and, for each guest call, binds a `HostCall` to the
calling thread (`bind`). A host function reads its arguments from the
guest's memory through a `Memory`; a buffer outside that memory or an
ungranted capability records why and raises `Trap`, which the runtime turns
into a trap of that call only; `finish` then reports it as the call's error.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import attrs

from wasmkernel_wasm.calls import Outcome
from wasmkernel_wasm.hostapi import ABI_VERSION, INVALID, NOT_FOUND, UNAVAILABLE, HostDenied, HostFailure, HostFault
from wasmkernel_wasm.hostapi.grants import Grants, denial

#: Imported functions: name → number of i32 parameters (the result is one i64).
FUNCTIONS: dict[str, int] = {
    "abi_version": 0,
    "log": 5,
    "var_get": 2,
    "kv_get": 2,
    "kv_set": 4,
    "kv_delete": 2,
    "kv_list": 2,
    "kv_incr": 3,
    "http_request": 2,
    "result_read": 2,
}
LEVELS = ("debug", "info", "warning", "error")
#: Log messages and fields are cut to this many bytes.
LOG_LIMIT = 8192
#: At most this many log lines per guest call are kept.
LOG_LINES = 1000
#: A guest call's log lines may render to at most this many bytes (JSON-escaped
#: message and fields); the rest is dropped and counted in one last line.
LOG_BUDGET = 64 * 1024
_U32 = struct.Struct("<I")


class Memory(Protocol):
    """The calling instance's exported memory."""

    def size(self) -> int: ...

    def read(self, ptr: int, length: int) -> bytes: ...

    def write(self, ptr: int, data: bytes) -> None: ...


class Services(Protocol):
    """Where key-value and HTTP operations run: the `HostAPI` (wasmtime) or an
    RPC client to it (wasmer). `scope` is the guest call (wasmtime's
    `Deadline`), so that the operation ends with it."""

    def call(self, module: str, op: str, args: Sequence[bytes], scope: Any = None) -> bytes: ...


class Trap(Exception):
    """Raised out of a host function to trap the guest call."""


#: (level, event, message, fields): the guest's lines (`wasm.guest_log`) and the host's notes about its calls.
LogRecord = tuple[str, str, str, tuple[tuple[str, str], ...]]


@attrs.define
class HostCall:
    """One guest call's host state: its grants, pending result and log lines."""

    grants: Grants
    services: Services | None
    memory: Memory | None = None
    pending: bytes = b""
    logs: list[LogRecord] = attrs.field(factory=list)
    #: ("denied" | "trap", message) once a host function trapped the call.
    failure: tuple[str, str] | None = None
    #: The guest call, handed to `Services.call` (wasmtime's `Deadline`).
    scope: Any = None
    #: What the guest's lines cost of `LOG_BUDGET` so far, and how many were dropped.
    log_bytes: int = 0
    dropped: int = 0

    def note(self, record: LogRecord) -> None:
        """Keep one log line if the call's line count and byte budget allow it."""
        size = len(json.dumps([record[2], record[3]]))
        if len(self.logs) >= LOG_LINES or self.log_bytes + size > LOG_BUDGET:
            self.dropped += 1
            return
        self.log_bytes += size
        self.logs.append(record)

    def finish(self, outcome: Outcome) -> Outcome:
        """`outcome` with this call's log lines, and the host's reason if a host function trapped it."""
        if self.dropped:
            over = f"{self.dropped} log lines dropped: over {LOG_LINES} lines or {LOG_BUDGET} bytes in one call"
            self.logs.append(("warning", "wasm.guest_log_dropped", over, (("dropped", str(self.dropped)),)))
            self.dropped = 0
        if self.failure is not None:
            kind, message = self.failure
            return Outcome(error="denied" if kind == "denied" else "trap", message=message, logs=tuple(self.logs))
        return attrs.evolve(outcome, logs=tuple(self.logs)) if self.logs else outcome


_local = threading.local()


@contextlib.contextmanager
def bind(call: HostCall | None) -> Iterator[HostCall | None]:
    """Make `call` the current thread's host call while the guest runs."""
    previous = getattr(_local, "call", None)
    _local.call = call
    try:
        yield call
    finally:
        _local.call = previous


def current() -> HostCall | None:
    return getattr(_local, "call", None)


def _buffer(call: HostCall, function: str, ptr: int, length: int) -> bytes:
    memory = call.memory
    if memory is None:
        raise HostFault(f"host call {function} made before the module's memory was bound")
    ptr, length = ptr & 0xFFFFFFFF, length & 0xFFFFFFFF
    if ptr + length > memory.size():
        raise HostFault(f"host call {function} was given an out-of-bounds buffer (ptr={ptr}, len={length}, memory={memory.size()} bytes)")
    return memory.read(ptr, length) if length else b""


def _result(call: HostCall, data: bytes) -> int:
    call.pending = data
    return len(data)


def _fail(call: HostCall, exc: HostFailure, function: str = "") -> int:
    call.pending = exc.message.encode()
    if function:
        call.note(("warning", "wasm.host_call_failed", exc.message, (("function", function), ("code", str(exc.code)))))
    return -exc.code


def _serve(call: HostCall, function: str, op: str, buffers: list[bytes]) -> int:
    """Ask the services for `op`; a clean failure (or any surprise from them) fails only this host call."""
    assert call.services is not None
    try:
        return _result(call, call.services.call(call.grants.module, op, buffers, call.scope))
    except HostFailure as exc:
        return _fail(call, exc, function if exc.code != NOT_FOUND else "")
    except (HostDenied, HostFault):
        raise
    except Exception as exc:  # a broken reply, a bug: never more than this call
        return _fail(call, HostFailure(UNAVAILABLE, f"the host could not complete this call ({type(exc).__name__})"), function)


def _need(call: HostCall, capability: str, function: str) -> None:
    granted = {"log": call.grants.log, "vars": call.grants.vars is not None, "kv": call.grants.kv, "http": call.grants.http}[capability]
    if not granted or (capability in ("kv", "http") and call.services is None):
        raise HostDenied(denial(call.grants, capability, function))


def _pairs(data: bytes) -> tuple[tuple[str, str], ...]:
    if not data:
        return ()
    pos = 4
    (count,) = _U32.unpack_from(data, 0)
    out = []
    for _ in range(min(count, 64)):
        parts = []
        for _ in range(2):
            if pos + 4 > len(data):
                raise ValueError("truncated fields")
            (length,) = _U32.unpack_from(data, pos)
            pos += 4
            if pos + length > len(data):
                raise ValueError("truncated fields")
            parts.append(data[pos : pos + length][:LOG_LIMIT].decode("utf-8", "replace"))
            pos += length
        out.append((parts[0], parts[1]))
    return tuple(out)


def _abi_version(call: HostCall) -> int:
    return ABI_VERSION


def _log(call: HostCall, level: int, msg_ptr: int, msg_len: int, fields_ptr: int, fields_len: int) -> int:
    _need(call, "log", "log")
    message = _buffer(call, "log", msg_ptr, msg_len)[:LOG_LIMIT].decode("utf-8", "replace")
    try:
        fields = _pairs(_buffer(call, "log", fields_ptr, fields_len))
    except (ValueError, struct.error):
        return _fail(call, HostFailure(INVALID, "log fields: malformed buffer"))
    call.note((LEVELS[level] if 0 <= level < len(LEVELS) else "info", "wasm.guest_log", message, fields))
    return 0


def _var_get(call: HostCall, name_ptr: int, name_len: int) -> int:
    _need(call, "vars", "var_get")
    name = _buffer(call, "var_get", name_ptr, name_len).decode("utf-8", "replace")
    for key, value in call.grants.vars or ():
        if key == name:
            return _result(call, value.encode())
    return _fail(call, HostFailure(NOT_FOUND, f"no variable {name[:100]!r}"))


def _kv(op: str, count: int) -> Callable[..., int]:
    function = f"kv_{op}"

    def host(call: HostCall, *args: int) -> int:
        _need(call, "kv", function)
        return _serve(call, function, op, [_buffer(call, function, args[i], args[i + 1]) for i in range(0, count, 2)])

    return host


def _kv_incr(call: HostCall, key_ptr: int, key_len: int, delta: int) -> int:
    _need(call, "kv", "kv_incr")
    key = _buffer(call, "kv_incr", key_ptr, key_len)
    unsigned = delta & 0xFFFFFFFF
    signed = unsigned - (1 << 32) if unsigned & 0x80000000 else unsigned
    return _serve(call, "kv_incr", "incr", [key, str(signed).encode()])


def _http_request(call: HostCall, req_ptr: int, req_len: int) -> int:
    _need(call, "http", "http_request")
    return _serve(call, "http_request", "http", [_buffer(call, "http_request", req_ptr, req_len)])


def _result_read(call: HostCall, ptr: int, length: int) -> int:
    data = call.pending[: length & 0xFFFFFFFF]
    _buffer(call, "result_read", ptr, len(data))  # bounds check
    assert call.memory is not None
    if data:
        call.memory.write(ptr & 0xFFFFFFFF, data)
    call.pending = b""
    return len(data)


_IMPLS: dict[str, Callable[..., int]] = {
    "abi_version": _abi_version,
    "log": _log,
    "var_get": _var_get,
    "kv_get": _kv("get", 2),
    "kv_set": _kv("set", 4),
    "kv_delete": _kv("delete", 2),
    "kv_list": _kv("list", 2),
    "kv_incr": _kv_incr,
    "http_request": _http_request,
    "result_read": _result_read,
}


def dispatch(name: str, args: Sequence[Any]) -> int:
    """Run host function `name` for the current thread's call. Raises `Trap`
    after recording why, when the call must trap."""
    call = current()
    if call is None:
        raise Trap(f"host call {name} outside a WasmKernel call")
    try:
        return _IMPLS[name](call, *args)
    except HostDenied as exc:
        call.failure = ("denied", str(exc))
        raise Trap(str(exc)) from None
    except HostFault as exc:
        call.failure = ("trap", str(exc))
        raise Trap(str(exc)) from None
    except Exception as exc:  # never escapes into the runtime: this call traps, nothing else
        call.failure = ("trap", f"host call {name} failed ({type(exc).__name__})")
        raise Trap(call.failure[1]) from None
