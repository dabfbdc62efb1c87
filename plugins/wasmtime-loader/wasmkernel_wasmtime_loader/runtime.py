"""What runs in worker threads: instantiating and calling modules with wasmtime.

wasmtime releases the GIL during a call, so calls run in threads. Every store
gets an epoch deadline (the loader's ticker advances the engine's epoch every
`TICK` seconds while calls run) and a memory limit; guest faults never raise
out of `call`, `handle` and `run_wasi`: they return an `Outcome` that the
loader turns into the right `WasmError`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import wasmtime
from wasmkernel_wasm import ArrayIn, ArrayOut
from wasmkernel_wasm.engine import (
    DEFAULT_EXPORTS,
    NAMESPACE,
    STDERR_LIMIT,
    STDOUT_LIMIT,
    ExportNames,
    Grants,
    Outcome,
    abi,
    call_export,
    call_with_argv,
    first_line,
    handle_export,
    initialize,
    memory_outcome,
)
from wasmtime import TrapCode

if TYPE_CHECKING:
    from wasmtime._instance import InstanceExports

#: Seconds per epoch tick: the precision of timeouts.
TICK = 0.01

_TRAPS = {
    TrapCode.UNREACHABLE: "unreachable",
    TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    TrapCode.INTEGER_OVERFLOW: "integer overflow",
    TrapCode.STACK_OVERFLOW: "call stack exhausted",
    TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element",
    TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized element",
    TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
}


#: Compilers: cranelift code with epoch checks (calls stop at their deadline),
#: or without them (2-4x faster tight loops; a timed-out call runs to its end).
INTERRUPTIBLE = {"cranelift": True, "cranelift-uninterruptible": False}


class Runtime:
    """An engine and a linker providing WASI per compiler (see `INTERRUPTIBLE`)."""

    def __init__(self) -> None:
        self._engines: dict[str, tuple[wasmtime.Engine, wasmtime.Linker]] = {}

    def engine(self, compiler: str) -> wasmtime.Engine:
        return self._linker(compiler).engine

    def _linker(self, compiler: str) -> wasmtime.Linker:
        if compiler not in self._engines:
            config = wasmtime.Config()
            config.epoch_interruption = INTERRUPTIBLE[compiler]
            engine = wasmtime.Engine(config)
            self._engines[compiler] = (engine, _host_linker(engine))
        return self._engines[compiler][1]

    def compile(self, wasm: bytes, compiler: str) -> bytes:
        """The serialized artifact of `wasm` (`WasmtimeError` if it is invalid)."""
        return bytes(wasmtime.Module(self.engine(compiler), wasm).serialize())

    def load(self, artifact: bytes, compiler: str) -> wasmtime.Module:
        """Deserialize one of our own artifacts (`WasmtimeError` if corrupt or foreign)."""
        return wasmtime.Module.deserialize(self.engine(compiler), artifact)

    def link(self, module: wasmtime.Module, compiler: str, stubs: Sequence[tuple[str, str]] = ()) -> wasmtime.InstancePre:
        """Resolve `module`'s imports once (`WasmtimeError` naming an unknown one),
        the (module, name) `stubs` as functions that trap when called."""
        if not stubs:
            return self._linker(compiler).instantiate_pre(module)
        linker = _host_linker(self.engine(compiler))
        for imported in module.imports:
            if (imported.module, imported.name) in stubs and isinstance(imported.type, wasmtime.FuncType):
                linker.define_func(imported.module, imported.name or "", imported.type, _stub(f"{imported.module}.{imported.name}"))
        return linker.instantiate_pre(module)

    def tick(self) -> None:
        """Advance the epoch of the interruptible engine."""
        if "cranelift" in self._engines:
            self._engines["cranelift"][0].increment_epoch()


def _host_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """A linker providing WASI and the host API."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    for name, arity in abi.FUNCTIONS.items():
        linker.define_func(NAMESPACE, name, wasmtime.FuncType([wasmtime.ValType.i32()] * arity, [wasmtime.ValType.i64()]), _host_function(name))
    return linker


def _stub(name: str) -> Callable[..., Any]:
    def stub(*_: Any) -> Any:
        raise abi.Trap(f"the program called {name}, which is linked as a stub (stub_imports)")

    return stub


def _host_function(name: str) -> Callable[..., int]:
    def host(*args: int) -> int:
        return abi.dispatch(name, args)

    return host


@attrs.frozen
class Guest:
    """A wasmtime instance in its store, as `wasmkernel_wasm`'s call code sees it."""

    store: wasmtime.Store
    exports: InstanceExports
    memory: str = "memory"

    def export(self, name: str) -> Any:
        try:
            return self.exports[name]
        except KeyError:
            return None

    def function(self, name: str) -> Callable[..., Any] | None:
        target = self.export(name)
        return functools.partial(target, self.store) if isinstance(target, wasmtime.Func) else None

    def arity(self, name: str) -> int:
        target = self.export(name)
        return len(target.type(self.store).params) if isinstance(target, wasmtime.Func) else 0

    def _memory(self) -> wasmtime.Memory:
        memory = self.export(self.memory)
        if not isinstance(memory, wasmtime.Memory):
            raise wasmtime.WasmtimeError(f"the module exports no memory '{self.memory}'")
        return memory

    def read(self, ptr: int, size: int) -> bytes:
        return bytes(self._memory().read(self.store, ptr, ptr + size))

    def write(self, ptr: int, data: bytes) -> None:
        self._memory().write(self.store, data, ptr)

    def memory_size(self) -> int:
        memory = self.export(self.memory)
        return memory.data_len(self.store) if isinstance(memory, wasmtime.Memory) else 0

    # The host functions' view of the memory (`abi.Memory`).
    def size(self) -> int:
        return self.memory_size()


@attrs.define(eq=False)
class Compiled:
    """One generation of a module, ready to instantiate from any thread.

    A stateful module keeps one instance (`kept`); its calls take `lock`.
    """

    name: str
    pre: wasmtime.InstancePre
    engine: wasmtime.Engine
    interruptible: bool
    memory_limit: int
    stateful: bool
    imports: bool
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[tuple[str, str, bool], ...] = ()
    exports: ExportNames = DEFAULT_EXPORTS
    scratch: str | None = None
    grants: Grants | None = None
    #: The loader's `HostAPI` (None when no module is granted key-value or HTTP).
    services: abi.Services | None = None
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    kept: Guest | None = None

    def instantiate(self, wasi: wasmtime.WasiConfig | None = None) -> Guest:
        """A new store (memory-limited) and instance, its `_initialize` run if
        it is a reactor. Modules with imports get WASI: `wasi`, or one that
        grants nothing."""
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=self.memory_limit)
        if wasi is not None or self.imports:
            store.set_wasi(wasi if wasi is not None else wasmtime.WasiConfig())
        if self.interruptible:
            store.set_epoch_deadline(1 << 62)
        guest = Guest(store, self.pre.instantiate(store).exports(store), self.exports.memory)
        initialize(guest)
        return guest


@attrs.define(eq=False)
class Deadline:
    """When a call must stop (`time.monotonic()` seconds), shared by the
    loader and the call's thread: `stop` makes a running call stop at the next
    tick (its client went away), or one not started yet not start."""

    at: float
    guest: Guest | None = None
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    #: Cancel scopes of host operations running for this call in the event loop.
    scopes: set[Any] = attrs.field(factory=set)

    def arm(self, guest: Guest, interruptible: bool) -> bool:
        """Give `guest`'s store this deadline; False if it has passed."""
        with self.lock:
            remaining = self.at - time.monotonic()
            if remaining <= 0:
                return False
            if interruptible:
                guest.store.set_epoch_deadline(math.ceil(remaining / TICK) + 1)
                self.guest = guest
            return True

    def attach(self, scope: Any) -> None:
        """Register a host operation's cancel scope (in the event loop): `stop` cancels it."""
        if self.at == 0.0:
            scope.cancel()
        self.scopes.add(scope)

    def detach(self, scope: Any) -> None:
        self.scopes.discard(scope)

    def stop(self) -> None:
        """(In the event loop.) Stop the call and any host operation it is waiting for."""
        for scope in list(self.scopes):
            scope.cancel()
        with self.lock:
            self.at = 0.0
            if self.guest is not None:
                # Only the deadline word changes under the running call (an
                # aligned 64-bit store), which is what epoch checks read.
                self.guest.store.set_epoch_deadline(1)


def _fault(compiled: Compiled, guest: Guest | None, exc: Exception) -> Outcome:
    """Classify a failure: interrupt = timeout; a trap with memory at its cap = memory limit."""
    if isinstance(exc, wasmtime.Trap) and exc.trap_code == TrapCode.INTERRUPT:
        compiled.kept = None
        return Outcome(error="timeout", message="interrupted at its deadline")
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    message = _TRAPS[code] if code in _TRAPS else _cause(exc)
    memory = memory_outcome(guest, compiled.memory_limit, message)
    if memory is not None:
        compiled.kept = None
        return memory
    return Outcome(error="trap", message=message)


def _cause(exc: Exception) -> str:
    """The last line of a wasmtime error (its cause, after the backtrace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].removeprefix("wasm trap: ") if lines else first_line(exc)


def _guarded(compiled: Compiled, deadline: Deadline, body: Callable[[Guest], Outcome], wasi: wasmtime.WasiConfig | None = None) -> Outcome:
    """Run `body` on an instance with its epoch deadline set: a fresh one, or
    the stateful module's kept one (calls to it take turns)."""
    keep = compiled.stateful and wasi is None
    host = abi.HostCall(compiled.grants, compiled.services, scope=deadline) if compiled.grants is not None and wasi is None else None
    with compiled.lock if keep else contextlib.nullcontext(), abi.bind(host):
        guest: Guest | None = None
        try:
            if keep:
                if compiled.kept is None:
                    compiled.kept = compiled.instantiate()
                guest = compiled.kept
            else:
                guest = compiled.instantiate(wasi)
            if not deadline.arm(guest, compiled.interruptible):
                return Outcome(error="timeout", message="its deadline passed before it started")
            if host is not None:
                host.memory = guest
            outcome = body(guest)
        except (wasmtime.WasmtimeError, wasmtime.Trap, TypeError, IndexError, abi.Trap) as exc:
            outcome = _fault(compiled, guest, exc)
    return host.finish(outcome) if host is not None else outcome


def call(compiled: Compiled, deadline: Deadline, function: str, args: Sequence[int | float | ArrayIn | ArrayOut]) -> Outcome:
    """Call a compute export, copying `ArrayIn`s in and `ArrayOut`s back out."""
    return _guarded(compiled, deadline, lambda guest: call_export(guest, function, args, compiled.memory_limit, compiled.exports))


def handle(compiled: Compiled, deadline: Deadline, request: bytes, export: str = "handle") -> Outcome:
    """Run `handle(req_ptr, req_len)` (or a filter's `on_request`/`on_response`); the outcome's value is the bytes returned."""
    return _guarded(compiled, deadline, lambda guest: handle_export(guest, request, compiled.exports, export))


def run_wasi(
    compiled: Compiled,
    deadline: Deadline,
    stdin: bytes,
    env: Sequence[tuple[str, str]],
    argv: Sequence[str],
    scratch: str,
    entry: str = "_start",
    argv_pointer: bool = False,
) -> Outcome:
    """Run a WASI command's `entry` (after `_initialize`, if a reactor) with `argv`, `stdin` and the CGI `env`
    (plus the module's own); stdout and stderr captured in files in
    `scratch` (the call's own directory, which the loader removes), granted
    directories preopened (read-only unless writable), the `scratch` grant a
    fresh directory. Always a fresh instance."""
    stdin_path, stdout_path, stderr_path = (os.path.join(scratch, name) for name in ("stdin", "stdout", "stderr"))
    with open(stdin_path, "wb") as body:
        body.write(stdin)
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(argv)
    wasi.env = [*compiled.env, *env]
    wasi.stdin_file = stdin_path
    wasi.stdout_file = stdout_path
    wasi.stderr_file = stderr_path
    for host, guest_path, writable in compiled.dirs:
        wasi.preopen_dir(host, guest_path, writable)
    if compiled.scratch is not None:
        os.makedirs(os.path.join(scratch, "tmp"), exist_ok=True)  # the loader may have put the body in it
        wasi.preopen_dir(os.path.join(scratch, "tmp"), compiled.scratch, True)
    if os.path.isdir(os.path.join(scratch, "dev")):  # the loader made it: the module is granted devices
        wasi.preopen_dir(os.path.join(scratch, "dev"), "/dev", True)

    def start(guest: Guest) -> Outcome:
        function = guest.function(entry)
        if function is None:
            return Outcome(error="abi", message=f"no exported function {entry!r}")
        began = time.perf_counter()
        status = 0
        try:
            if argv_pointer:
                problem = call_with_argv(guest, entry, argv, compiled.exports)
                if problem is not None:
                    return problem
            else:
                function()
        except wasmtime.ExitTrap as exc:
            status = exc.code
        duration = (time.perf_counter() - began) * 1000
        with open(stdout_path, "rb") as out, open(stderr_path, "rb") as err:
            return Outcome(value=out.read(STDOUT_LIMIT), duration_ms=duration, stderr=err.read(STDERR_LIMIT), exit_status=status)

    return _guarded(compiled, deadline, start, wasi)
