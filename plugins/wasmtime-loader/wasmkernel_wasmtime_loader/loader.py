"""`WasmtimeLoader`: compiles at startup, runs every call in a thread.

wasmtime releases the GIL during calls and can interrupt them, so calls run in
trio worker threads (at most `workers` at once) with real timeouts: each store
has an epoch deadline, a ticker task advances the engine's epoch every
`runtime.TICK` seconds while calls run, and a call past its deadline traps
(`interrupt`) and its thread returns. Nothing is killed. The response does not
wait for that: at the timeout the call is abandoned and answered 504, and its
thread stops within a tick or two.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio
import wasmtime
from wasmkernel_wasm import ModuleInfo, WasmUnavailable
from wasmkernel_wasm.engine import (
    LoaderBase,
    LoaderConfig,
    Outcome,
    PreparedModule,
    cache_path,
    compile_cached,
    emit_logs,
    first_line,
    module_info,
    outcome_error,
    timeout_error,
    watch_files,
)

from wasmkernel import StartupError
from wasmkernel_wasmtime_loader import runtime
from wasmkernel_wasmtime_loader.runtime import INTERRUPTIBLE, TICK, Compiled, Deadline, Runtime

if TYPE_CHECKING:
    from wasmkernel import Application

log = structlog.get_logger("wasmkernel.wasmtime_loader")

COMPILERS = tuple(INTERRUPTIBLE)
#: How long `stop` waits for calls still running (uninterruptible ones may not stop).
STOP_GRACE = 2.0
VERSION = importlib.metadata.version("wasmtime")


@attrs.frozen
class Loaded:
    """One generation of a module."""

    info: ModuleInfo
    compiled: Compiled
    watched: Path


class WasmtimeLoader(LoaderBase[Loaded]):
    """The `wasmkernel_wasm.ModuleLoader` backed by wasmtime (see docs/wasm-abi.md)."""

    jobs = runtime
    runtime = "wasmtime"

    def __init__(self, config: LoaderConfig, base: Path, app: Application) -> None:
        super().__init__(config, base, app)
        self._runtime = Runtime()
        self._busy = trio.Event()
        #: Counts running threads, abandoned ones included (they need ticks to stop).
        self._threads = trio.CapacityLimiter(math.inf)

    # -- compiling -----------------------------------------------------------

    def _compile(self, prepared: PreparedModule, generation: int) -> Loaded:
        """Compile `prepared` (or take it from the cache) and link it."""
        spec = prepared.spec
        compiler = spec.compiler or self.config.compiler
        path = cache_path(self.cache_dir, prepared.wasm, self.runtime, VERSION, compiler)
        start = time.perf_counter()
        module, state = compile_cached(
            prepared,
            path,
            lambda artifact: self._runtime.load(artifact, compiler),
            lambda wasm: self._runtime.compile(wasm, compiler),
            (wasmtime.WasmtimeError,),
        )
        try:
            pre = self._runtime.link(module, compiler, spec.stubs())
        except wasmtime.WasmtimeError as exc:
            raise StartupError(f"wasm module '{spec.name}' cannot be linked: {first_line(exc)}") from None
        self._log_loaded(spec, state, compiler, generation, start)
        compiled = Compiled(
            name=spec.name,
            pre=pre,
            engine=self._runtime.engine(compiler),
            interruptible=INTERRUPTIBLE[compiler],
            memory_limit=prepared.memory_limit,
            stateful=spec.stateful,
            imports=bool(module.imports),
            env=tuple(spec.env.items()),
            dirs=self._granted_dirs(spec),
            exports=self._exports(spec),
            scratch=spec.scratch,
            grants=self.host.grants[spec.name],
            services=self.host if self.host.needed else None,
        )
        return Loaded(module_info(prepared, compiler, state, self.config, generation), compiled, prepared.path)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.host.start()
        for spec in self.config.modules:
            loaded = self._compile(self._prepare(spec), 1)
            if self.config.prewarm and spec.kind != "wasi":
                try:
                    loaded.compiled.instantiate()
                except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
                    raise StartupError(f"wasm module '{spec.name}' cannot be instantiated: {first_line(exc)}") from None
            self._loaded[spec.name] = loaded
        assert self._app is not None, "WasmtimeLoader needs the application (its tick task runs in app.nursery)"
        await self._app.nursery.start(self._background)

    async def _background(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as tasks:
            self._tasks = tasks
            await tasks.start(self.supervisor.run, "tick", self._tick)
            if self.config.watch:
                await tasks.start(self.supervisor.run, "watch", functools.partial(watch_files, self._watched, self.reload, self.config.watch_interval))
            task_status.started()
            await trio.sleep_forever()

    async def _tick(self) -> None:
        """Advance the epoch every `TICK` while calls run (deadlines count ticks); idle otherwise."""
        while True:
            if self._threads.borrowed_tokens == 0:
                self._busy = trio.Event()
                await self._busy.wait()
            await trio.sleep(TICK)
            self._runtime.tick()

    async def stop(self) -> None:
        """Stop the ticker and watcher; interrupt calls still running and wait
        (at most `STOP_GRACE` seconds) for their threads."""
        if self._tasks is None:
            return
        self._tasks.cancel_scope.cancel()
        self._tasks = None
        with trio.CancelScope(shield=True), trio.move_on_after(STOP_GRACE) as waiting:
            while self._threads.borrowed_tokens:
                for _ in range(1000):
                    self._runtime.tick()
                await trio.sleep(TICK)
        if waiting.cancelled_caught:
            log.warning("wasm.calls_abandoned", calls=self._threads.borrowed_tokens, reason="uninterruptible calls still running at shutdown")
        await self.host.stop()

    async def reload(self, module: str) -> ModuleInfo:
        current = self._get(module)
        spec = self.config.spec(module)

        def compile_new() -> Loaded:
            return self._compile(self._prepare(spec), current.info.generation + 1)

        loaded = await trio.to_thread.run_sync(compile_new, limiter=self.file_threads)
        self._loaded[module] = loaded
        log.info("wasm.module_reloaded", module=module, generation=loaded.info.generation, sha256=loaded.info.sha256[:12])
        return loaded.info

    # -- calls -------------------------------------------------------------------

    async def _run(self, module: str, function: str, job: Callable[..., Outcome], *args: Any, timeout: float | None = None) -> Outcome:
        loaded = self._get(module)
        if self._tasks is None:
            raise WasmUnavailable("the WebAssembly loader is not running")
        limit = timeout if timeout is not None else loaded.info.timeout
        async with self._slot(module):
            start = time.perf_counter()
            deadline = Deadline(time.monotonic() + limit)
            error: str | None = "cancelled"
            self._busy.set()
            try:
                with trio.move_on_after(limit):
                    # Abandoned at the timeout (its thread stops at its epoch deadline) or
                    # when cancelled (the client went away: `deadline.stop()` below).
                    outcome = await trio.to_thread.run_sync(job, loaded.compiled, deadline, *args, limiter=self._threads, abandon_on_cancel=True)
                    emit_logs(module, outcome)
                    error = outcome.error
                    if outcome.error != "timeout":
                        if outcome.error is not None:
                            raise outcome_error(module, function, outcome, loaded.info.memory_limit_mb)
                        return outcome
                error = "timeout"
                raise timeout_error(module, function, limit)
            finally:
                if error == "cancelled":
                    deadline.stop()
                self.metrics.record(module, function, time.perf_counter() - start, error)
