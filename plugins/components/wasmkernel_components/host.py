"""`ComponentHost`: compiles the declared components at startup, serves their calls.

Compiling a big component is slow (an 18 MB componentize-py component takes
10-60 s and hundreds of MB): it happens once, in a child process (its
memory goes back to the system when it exits), announced beforehand when
the file is big, and the artifact is cached by content (`.cwasm` files in
`cache_dir`); a restart only deserializes. Every call then gets a fresh
instance in a worker thread (at most `workers` at once, at most
`max_concurrency` per component, `max_queued` waiting, beyond that 503 with
Retry-After), bounded by its timeout (an epoch deadline: 504) and memory
limit (507).
"""

from __future__ import annotations

import importlib.metadata
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import structlog
import trio
import wasmtime
from wasmkernel_wasm import MIB, WasmError, WasmMemoryLimit, WasmTimeout, WasmTrap, WasmUnavailable
from wasmkernel_wasm.engine import COMPONENT_HEADER, CallMetrics, HostAPI, cache_path, first_line, read_cached, write_cached
from wasmtime.component import Component

from wasmkernel import StartupError
from wasmkernel_components.call import Call, bind
from wasmkernel_components.config import ComponentsConfig, ComponentSpec
from wasmkernel_components.linking import Policy, link, unversioned
from wasmkernel_components.policy import CLI, HTTP
from wasmkernel_components.runtime import TICK, Interrupt, Outcome, Prepared, engine, ticks

if TYPE_CHECKING:
    from wasmkernel import Application

log = structlog.get_logger("wasmkernel.components")

VERSION = importlib.metadata.version("wasmtime")
#: Rough cost of a first compile, per MiB of component (measured: 18 MB in 11-60 s, 370 MB of memory).
SECONDS_PER_MIB = 1.5
ENTRIES = {"wasi-http": ("wasi:http/incoming-handler", "handle"), "wasi-cli": ("wasi:cli/run", "run")}
POLICIES: dict[str, Policy] = {"wasi-http": HTTP, "wasi-cli": CLI}


@attrs.frozen
class Loaded:
    """A component ready to serve: what `wasmkernel components list` shows, and the prepared component."""

    spec: ComponentSpec
    size: int
    sha256: str
    cache: str
    prepared: Prepared
    #: Granted directories: (host path, guest path, writable).
    dirs: tuple[tuple[str, str, bool], ...] = ()


def is_component(data: bytes) -> bool:
    return data[:8] == COMPONENT_HEADER


def compile_in_child(source: Path, target: Path) -> None:
    """Compile `source` into the artifact `target` in a child process (`StartupError` with the compiler's reason)."""
    result = subprocess.run([sys.executable, "-m", "wasmkernel_components.compile", str(source), str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StartupError(f"component {source.name} does not compile: {_cause(result.stderr)}")


def _cause(error: object) -> str:
    """The root cause of a wasmtime error: its last line (after "Caused by:")."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the compiler failed"


class ComponentHost:
    """The components of one registry (see the module docstring)."""

    def __init__(self, config: ComponentsConfig, base: Path) -> None:
        self.config = config
        self.base = base
        self.cache_dir = (base / config.cache_dir).resolve()
        self.engine = engine()
        self.metrics = CallMetrics()
        self.loaded: dict[str, Loaded] = {}
        self.services = HostAPI(config.host_config(), base, "components")
        self._threads = trio.CapacityLimiter(config.workers)
        self._per_component = {spec.name: trio.CapacityLimiter(config.concurrency_of(spec)) for spec in config.modules}
        self._queued = 0
        self._running = 0
        self._busy = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- compiling -------------------------------------------------------------

    def _entry(self, spec: ComponentSpec, component: Component) -> tuple[str, str]:
        interface, function = ENTRIES[spec.kind]
        for name in component.type.exports(self.engine):
            if unversioned(name) == interface:
                return name, function
        raise StartupError(f"component '{spec.name}' (kind {spec.kind}) does not export {interface}")

    def prepare(self, spec: ComponentSpec) -> Loaded:
        """Read, check, compile (or load from the cache) and link one component."""
        import hashlib

        path = (self.base / spec.path).resolve()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StartupError(f"component '{spec.name}': cannot read {spec.path}: {exc.strerror}") from None
        digest = hashlib.sha256(data).hexdigest()
        if spec.sha256 is not None and digest != spec.sha256:
            raise StartupError(f"component '{spec.name}': sha256 mismatch for {spec.path}: expected {spec.sha256}, file has {digest}")
        if not is_component(data):
            raise StartupError(f"component '{spec.name}': {spec.path} is not a WebAssembly component (a core module? serve it with wasmtime-loader)")
        artifact = cache_path(self.cache_dir, data, "wasmtime-component", VERSION, "cranelift").with_suffix(".cwasm")
        state = "hit"
        try:
            component = Component.deserialize(self.engine, read_cached(artifact))
        except (OSError, ValueError, wasmtime.WasmtimeError):
            state = "compiled"
            size_mb = len(data) / MIB
            if size_mb >= self.config.compile_warning_mb:
                log.warning(
                    "component.compiling",
                    component=spec.name,
                    size_mb=round(size_mb, 1),
                    expect=f"about {math.ceil(size_mb * SECONDS_PER_MIB)} s or more and {math.ceil(size_mb * 20)} MB of memory, once (then cached)",
                )
            started = time.perf_counter()
            if size_mb >= self.config.compile_warning_mb:
                compile_in_child(path, artifact)  # its memory goes back to the system when it exits
            else:
                try:
                    write_cached(artifact, bytes(Component(self.engine, data).serialize()))
                except wasmtime.WasmtimeError as exc:
                    raise StartupError(f"component '{spec.name}' does not compile: {_cause(exc)}") from None
            log.info("component.compiled", component=spec.name, seconds=round(time.perf_counter() - started, 1))
            try:
                component = Component.deserialize(self.engine, read_cached(artifact))
            except (OSError, ValueError, wasmtime.WasmtimeError) as exc:
                raise StartupError(f"component '{spec.name}': its compiled artifact cannot be loaded: {first_line(exc)}") from None
        dirs = []
        for directory in spec.dirs:
            host = (self.base / directory.host).resolve()
            if not host.is_dir():
                raise StartupError(f"component '{spec.name}': dirs: {directory.host} is not a directory")
            dirs.append((str(host), directory.guest, directory.writable))
        entry = self._entry(spec, component)
        linker = link(self.engine, component, POLICIES[spec.kind], f"component '{spec.name}'")
        prepared = Prepared(spec.name, self.engine, component, linker, entry, self.config.memory_limit_of(spec))
        self._try_instance(spec, prepared)
        return Loaded(spec, len(data), digest, state, prepared, tuple(dirs))

    @staticmethod
    def _try_instance(spec: ComponentSpec, prepared: Prepared) -> None:
        """Instantiate once, so a component that cannot start within its memory limit stops startup, not every request."""
        call = Call(component=spec.name, token=cast("trio.lowlevel.TrioToken", None), deadline=time.monotonic() + 60.0, args=(spec.name,))
        bind(call)
        try:
            prepared.instantiate(prepared.store(ticks(60.0)))
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            cause = _cause(exc)
            if "memory" in cause and "limit" in cause:
                raise StartupError(
                    f"component '{spec.name}' needs more memory than its memory_limit_mb of {prepared.memory_limit // MIB} to start: {cause}"
                ) from None
            raise StartupError(f"component '{spec.name}' cannot be instantiated: {cause}") from None
        finally:
            bind(None)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, app: Application) -> None:
        """Compile every component (off the event loop) and start the epoch ticker."""
        self.services.start()
        for spec in self.config.modules:
            started = time.perf_counter()
            loaded = await trio.to_thread.run_sync(self.prepare, spec)
            self.loaded[spec.name] = loaded
            log.info("component.loaded", component=spec.name, kind=spec.kind, cache=loaded.cache, ms=round((time.perf_counter() - started) * 1000, 1))
        await app.nursery.start(self._background)

    async def _background(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._tick)
            task_status.started()
            await trio.sleep_forever()

    async def _tick(self) -> None:
        """Advance the epoch every `TICK` while calls run (deadlines count ticks)."""
        while True:
            if self._running == 0:
                self._busy = trio.Event()
                await self._busy.wait()
            await trio.sleep(TICK)
            self.engine.increment_epoch()

    async def stop(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            self._nursery = None
        for _ in range(1000):  # interrupt calls still running
            self.engine.increment_epoch()
        await self.services.stop()

    # -- calls -------------------------------------------------------------------------

    def get(self, name: str) -> Loaded:
        loaded = self.loaded.get(name)
        if loaded is None or self._nursery is None:
            raise WasmUnavailable(f"component '{name}' is not loaded")
        return loaded

    @asynccontextmanager
    async def slot(self, name: str) -> AsyncIterator[None]:
        """At most `max_concurrency` calls of this component and `workers` in all; 503 when `max_queued` already wait."""
        if self._queued >= self.config.max_queued:
            raise WasmUnavailable("every component worker is busy and the queue is full; retry shortly", retry_after=1)
        limiter = self._per_component[name]
        self._queued += 1
        try:
            await limiter.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            limiter.release()

    @property
    def running(self) -> int:
        """Calls running in worker threads now."""
        return self._running

    @property
    def queued(self) -> int:
        """Calls waiting for a slot now."""
        return self._queued

    async def begin(self, call: Callable[..., Awaitable[Any]]) -> None:
        """Start a call's task in the host's nursery (it outlives the endpoint while its body streams)."""
        if self._nursery is None:
            raise WasmUnavailable("the component host is not running")
        await self._nursery.start(call)

    async def in_thread(self, job: Callable[[], Outcome], interrupt: Interrupt) -> Outcome:
        """Run a call's job in a worker thread; if this task is cancelled the call is interrupted (and abandoned)."""
        self._running += 1
        self._busy.set()
        try:
            return await trio.to_thread.run_sync(job, limiter=self._threads, abandon_on_cancel=True)
        except BaseException:
            interrupt.stop()
            raise
        finally:
            self._running -= 1

    def error(self, name: str, outcome: Outcome, limit: float) -> WasmError:
        """The error for a failed call (500 trap, 504 timeout, 507 memory), naming the component."""
        where = f"component '{name}'"
        if outcome.error == "timeout":
            return WasmTimeout(f"{where} exceeded its time limit of {limit:g} s")
        if outcome.error == "memory":
            return WasmMemoryLimit(f"{where} exceeded its memory limit of {self.get(name).prepared.memory_limit // MIB} MiB ({outcome.message})")
        if outcome.error == "stopped":
            return WasmUnavailable(f"{where} was stopped: {outcome.message}")
        return WasmTrap(f"{where} trapped: {outcome.message}")
