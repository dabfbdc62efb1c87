"""`HostAPI`: the main process's side of the host API — the contributed capabilities' operations.

Both loaders reach it: wasmtime from its call threads (`call`; operations
of mode "loop", such as Redis and HTTP, hop into the event loop with
`trio.from_thread`), wasmer from its worker processes through `rpc`, whose
server awaits `acall` in the event loop ("inline" operations such as memory
run there, "thread" ones such as SQLite in a thread of the host API's own
limiter, "loop" ones awaited). So a write is visible to the next request
whichever thread or worker process serves it — and, with Redis, whichever
server instance.

The operations are the capabilities' (`capability`): the wasm plugin
collects them once (`wasmkernel_host_capabilities`) and offers the table as
the `HOST_CAPABILITIES` service; `bind` asks each capability to bind to the
modules granted it, and a grant no capability serves stops startup naming
its registry key.

A host call can fail only its own call: every input is checked (`kv`,
`outbound`), and anything else a capability raises is logged
(`wasm.host_call_crashed`) and handed to the guest as `UNAVAILABLE`. An
operation in the event loop ends with the guest call that made it (`Scope`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import structlog
import trio

from wasmkernel_wasm.hostapi import INVALID, UNAVAILABLE, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.capability import Binding, Capability, Context, Granted, Mode, Operation
from wasmkernel_wasm.hostapi.grants import CAPABILITIES, Grants, denial
from wasmkernel_wasm.service import HOST_CAPABILITIES

if TYPE_CHECKING:
    from wasmkernel import Application
    from wasmkernel_wasm.config import LoaderConfig, ModuleSpec

log = structlog.get_logger("wasmkernel.wasm.host")
T = TypeVar("T")


class Scope(Protocol):
    """The guest call a host call belongs to (wasmtime's `Deadline`): when it
    must end (`time.monotonic()` seconds, 0 once it was stopped), and where
    the event loop registers the cancel scope of an operation made for it, so
    that stopping the call cancels the operation."""

    at: float

    def attach(self, scope: trio.CancelScope) -> None: ...

    def detach(self, scope: trio.CancelScope) -> None: ...


def grants_of(spec: ModuleSpec, index: int, section: str) -> Grants:
    """The picklable grants of the module declared at ``[plugins.<section>.config] modules[index]``."""
    return Grants(
        module=spec.name,
        entry=f"plugins.{section}.config.modules[{index}]",
        log=spec.log,
        vars=tuple(sorted(spec.vars.items())) if spec.vars is not None else None,
        kv=spec.kv is not None,
        http=spec.http is not None,
    )


def granted(spec: ModuleSpec) -> dict[str, object]:
    """The capabilities `spec`'s registry entry grants: key -> grant."""
    values = {key: getattr(spec, key) for key in CAPABILITIES}
    return {key: value for key, value in values.items() if value is not None and value is not False}


class HostAPI:
    """The capabilities bound to a host's modules (a loader's, the components')."""

    def __init__(self, config: LoaderConfig, base: Path, section: str) -> None:
        """`section`: the plugin whose registry section declares the modules (wasm, components)."""
        self.grants = {spec.name: grants_of(spec, index, section) for index, spec in enumerate(config.modules)}
        self._granted = [(self.grants[spec.name], granted(spec)) for spec in config.modules]
        self._base = base
        self._operations: dict[str, tuple[str, Operation]] = {}
        self._bindings: dict[str, Binding] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        #: Threads for blocking operations asked from the event loop: this subsystem's own, bounded.
        self.threads = trio.CapacityLimiter(max(2, config.workers))

    @property
    def needed(self) -> bool:
        """Whether any module is granted key-value or outbound HTTP: the
        capabilities whose host functions reach this object (see `abi`)."""
        return any(grants.kv or grants.http for grants in self.grants.values())

    def bind(self, app: Application, needed_by: str) -> None:
        """At assembly: bind every capability the modules are granted, from
        the `HOST_CAPABILITIES` the wasm plugin collected (`needed_by` is the
        plugin asking). A grant no enabled plugin contributes, or one its
        capability refuses, stops startup naming its registry key."""
        table = app.services.get(HOST_CAPABILITIES, needed_by=needed_by)
        by_capability: dict[str, tuple[Capability, list[Granted]]] = {}
        for grants, capabilities in self._granted:
            for key, grant in capabilities.items():
                entry = Granted(grants.module, grants.entry, grant)
                by_capability.setdefault(key, (table.capability(entry, key), []))[1].append(entry)
        for key, (_, capability) in table.by_key.items():
            self._operations.update((op, (key, operation)) for op, operation in capability.operations.items())
        context = Context(app, needed_by, self._base, self.threads)
        for key, (capability, entries) in by_capability.items():
            binding = capability.bind(entries, context)
            if binding is not None:
                self._bindings[key] = binding

    def start(self) -> None:
        """Start the bound capabilities (open stores, clients), in the event loop."""
        self._token = trio.lowlevel.current_trio_token()
        for binding in self._bindings.values():
            binding.start()

    async def stop(self) -> None:
        for binding in self._bindings.values():
            await binding.stop()

    def _route(self, module: str, op: str, args: Sequence[bytes]) -> tuple[Binding, Mode]:
        grants = self.grants.get(module)
        if grants is None:
            raise HostDenied(f"unknown module '{module}'")
        served = self._operations.get(op)
        if served is None or len(args) != served[1].buffers:
            raise HostFailure(INVALID, f"unknown operation {op[:20]!r} or wrong number of buffers")
        key, operation = served
        binding = self._bindings.get(key)
        mode = binding.mode(module) if binding is not None else None
        if binding is None or mode is None:
            raise HostDenied(denial(grants, key, operation.function))
        return binding, mode

    def call(self, module: str, op: str, args: Sequence[bytes], scope: Scope | None = None) -> bytes:
        """Run one operation for `module`, from a thread other than the event
        loop's (a wasmtime call; `scope` is that call). `HostDenied` if it is
        not granted, `HostFailure` for a failure."""
        binding, mode = self._route(module, op, args)
        if mode != "loop":
            return _contained(module, op, lambda: binding.run(module, op, args))
        return bytes(trio.from_thread.run(self._scoped, module, op, args, scope, trio_token=self._token))

    async def _scoped(self, module: str, op: str, args: Sequence[bytes], scope: Scope | None) -> bytes:
        """`acall` in the event loop for a guest call in a thread: cancelled
        at that call's deadline or when it is stopped (its client left)."""
        with trio.CancelScope() as cancel:
            if scope is not None:
                cancel.deadline = trio.current_time() + max(0.0, scope.at - time.monotonic())
                scope.attach(cancel)
            try:
                return await self.acall(module, op, args)
            finally:
                if scope is not None:
                    scope.detach(cancel)
        raise HostFailure(UNAVAILABLE, "the module call ended before the host call completed")

    async def acall(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        """`call`, from the event loop: "loop" operations awaited, "inline"
        ones run here, "thread" ones in a thread (`threads`)."""
        binding, mode = self._route(module, op, args)
        try:
            if mode == "loop":
                return await binding.arun(module, op, args)
            if mode == "inline":
                return binding.run(module, op, args)
            return await trio.to_thread.run_sync(binding.run, module, op, args, limiter=self.threads)
        except (HostFailure, HostDenied):
            raise
        except Exception:
            raise _crashed(module, op) from None


def _crashed(module: str, op: str) -> HostFailure:
    """Log the exception being handled (a host bug or a backend's surprise) and fail only this call."""
    log.exception("wasm.host_call_crashed", module=module, op=op)
    return HostFailure(UNAVAILABLE, "the host could not complete this call (the server log has the details)")


def _contained(module: str, op: str, operation: Callable[[], T]) -> T:
    try:
        return operation()
    except (HostFailure, HostDenied):
        raise
    except Exception:
        raise _crashed(module, op) from None


__all__ = ["HostAPI", "granted", "grants_of"]
