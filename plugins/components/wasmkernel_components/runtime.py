"""What runs in a call's worker thread: a fresh instance, the export, the outcome.

Each call gets a new store (memory-limited, with an epoch deadline) and a
new instance of the pre-compiled component: nothing a request leaves behind
is seen by the next. Guest faults never raise out of `run`: they come back
as an `Outcome` the host turns into the right status.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import attrs
import wasmtime
from wasmtime.component import Component, Linker

from wasmkernel_components.call import Call, Stopped, bind
from wasmkernel_components.wasi.system import ExitCalled

#: Seconds per epoch tick: the precision of timeouts.
TICK = 0.01
#: What a guest writes to stderr when it ran out of memory (CPython, Rust, C, JavaScript engines).
_OUT_OF_MEMORY = ("MemoryError", "memory allocation of", "out of memory", "Out of memory", "allocation failed")


def engine() -> wasmtime.Engine:
    """The engine every component is compiled for (epoch interruption on)."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


@attrs.frozen
class Outcome:
    """How a call ended: `error` is None ("ok"), "trap", "timeout", "memory", "stopped"."""

    error: str | None = None
    message: str = ""
    exit_status: int = 0


@attrs.define(eq=False)
class Prepared:
    """A compiled, linked component, instantiated afresh for every call."""

    name: str
    engine: wasmtime.Engine
    component: Component
    linker: Linker
    #: (interface export, function) the calls enter, e.g. ("wasi:http/incoming-handler@0.2.0", "handle").
    entry: tuple[str, str]
    memory_limit: int
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def instantiate(self, store: wasmtime.Store) -> Any:
        instance = self.linker.instantiate(store, self.component)
        parent = instance.get_export_index(store, self.entry[0])
        index = instance.get_export_index(store, self.entry[1], parent) if parent is not None else None
        func = instance.get_func(store, index) if index is not None else None
        if func is None:
            raise wasmtime.WasmtimeError(f"the component exports no {self.entry[0]}#{self.entry[1]}")
        return func

    def store(self, deadline_ticks: int) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=self.memory_limit)
        store.set_epoch_deadline(deadline_ticks)
        return store


@attrs.define(eq=False)
class Interrupt:
    """Lets the event loop stop a running call: its store's epoch deadline becomes the next tick."""

    store: wasmtime.Store | None = None
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    stopped: bool = False

    def attach(self, store: wasmtime.Store) -> bool:
        with self.lock:
            self.store = store
            return not self.stopped

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.store is not None:
                self.store.set_epoch_deadline(1)

    def detach(self) -> None:
        """The call is over: forget its store (so it is freed in the call's thread, not the event loop's)."""
        with self.lock:
            self.store = None


def ticks(seconds: float) -> int:
    return max(1, math.ceil(seconds / TICK) + 1)


def classify(exc: Exception, call: Call) -> Outcome:
    """The outcome of a call that raised `exc`."""
    if isinstance(exc, ExitCalled):
        return Outcome(exit_status=exc.status)
    text = str(exc)
    if call.exit_status is not None and "exited with status" in text:
        return Outcome(exit_status=call.exit_status)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = lines[-1].removeprefix("wasm trap: ") if lines else type(exc).__name__
    interrupted = (isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT) or cause == "interrupt"
    if interrupted or isinstance(exc, Stopped) or "the call was stopped" in text or "exceeded its time limit" in text:
        # Component calls report an epoch interrupt as a plain error whose cause is "interrupt".
        return Outcome("stopped", call.stopped) if call.stopped is not None else Outcome("timeout", "interrupted at its deadline")
    stderr = call.stderr.decode("utf-8", "replace")
    if "exceeds memory limits" in text or any(marker in stderr for marker in _OUT_OF_MEMORY):
        return Outcome("memory", cause)
    return Outcome("trap", cause)


def run(prepared: Prepared, call: Call, interrupt: Interrupt, timeout: float, enter: Callable[[wasmtime.Store, Any], None]) -> Outcome:
    """Instantiate `prepared` in a new store and `enter(store, func)` it, in this thread."""
    bind(call)
    try:
        store = prepared.store(ticks(timeout))
        if not interrupt.attach(store):
            return Outcome("stopped", call.stopped or "stopped before it started")
        func = prepared.instantiate(store)
        enter(store, func)
        return Outcome(exit_status=call.exit_status or 0)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        return classify(exc, call)
    finally:
        call.table.close()
        interrupt.detach()
        bind(None)
