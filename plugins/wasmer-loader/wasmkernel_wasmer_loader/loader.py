"""`WasmerLoader`: compiles in the main process, runs every call in a worker process.

wasmer-python holds the GIL during a call, binds instances to their thread and
cannot interrupt a running call, so calls run in a `trio_parallel` worker
context: a timeout kills the worker (`kill_on_cancel`), a crash loses only that
worker, and both are replaced on the next call.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio
import trio_parallel
import wasmer
from wasmkernel_wasm import (
    ModuleInfo,
    WasmUnavailable,
)
from wasmkernel_wasm.calls import Outcome, emit_logs, outcome_error, timeout_error
from wasmkernel_wasm.commands import module_info
from wasmkernel_wasm.config import LoaderConfig
from wasmkernel_wasm.hostapi.rpc import Server
from wasmkernel_wasm.imports import WASI, refuse_unsupported
from wasmkernel_wasm.loader import LoaderBase
from wasmkernel_wasm.modules import PreparedModule, cache_path, compile_cached
from wasmkernel_wasm.watch import watch_files

from wasmkernel import StartupError
from wasmkernel_wasmer_loader import worker
from wasmkernel_wasmer_loader.compile import compile_artifact
from wasmkernel_wasmer_loader.worker import ModuleRef

if TYPE_CHECKING:
    from wasmkernel import Application

log = structlog.get_logger("wasmkernel.wasmer_loader")

COMPILERS = ("cranelift", "singlepass")


@attrs.frozen
class Loaded:
    """One generation of a module as the main process knows it."""

    info: ModuleInfo
    ref: ModuleRef
    watched: Path


def _workers_skip_main() -> None:
    """Keep multiprocessing from re-running this program's main script in every
    worker: it does so for a script run by path (the `wasmkernel` console
    script, whose import of `wasmkernel.cli` brings in the kernel, hypercorn and
    trio: ~20 MiB per worker that never serves). Workers need only `worker`,
    and a main module named `__main__` is never re-imported."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)


class WasmerLoader(LoaderBase[Loaded]):
    """The `wasmkernel_wasm.ModuleLoader` backed by wasmer 1.1 (see docs/wasm-abi.md)."""

    jobs = worker
    runtime = "wasmer"

    def __init__(self, config: LoaderConfig, base: Path, app: Application | None = None) -> None:
        super().__init__(config, base, app)
        self._context: trio_parallel.WorkerContext | None = None
        self._unlimited = trio.CapacityLimiter(math.inf)
        self._stack = contextlib.AsyncExitStack()
        #: Workers reach the host API's shared state (key-value, HTTP) through this socket.
        self._rpc = Server(self.host)

    # -- compiling -----------------------------------------------------------

    def _refuse_unsupported(self, prepared: PreparedModule) -> None:
        shape = prepared.shape
        refuse_unsupported(
            prepared,
            f"wasmer {wasmer.__version__}",
            [
                ("exception handling", shape.tags),
                ("threads (a shared memory)", shape.shared_memory),
                (f"{WASI}.sock_accept", (WASI, "sock_accept", "function") in shape.imports),
            ],
        )

    def _compile(self, prepared: PreparedModule, generation: int) -> Loaded:
        """Compile `prepared` (in a child process if it is large) or take it from the cache."""
        spec = prepared.spec
        compiler = spec.compiler or self.config.compiler
        path = cache_path(self.cache_dir, prepared.wasm, self.runtime, wasmer.__version__, compiler)
        start = time.perf_counter()
        _, state = compile_cached(prepared, path, worker.check_artifact, lambda wasm: compile_artifact(spec.name, wasm, compiler), (RuntimeError,))
        self._log_loaded(spec, state, compiler, generation, start)
        ref = ModuleRef(
            name=spec.name,
            generation=generation,
            artifact=str(path),
            stateful=spec.stateful,
            memory_limit=prepared.memory_limit,
            env=tuple(spec.env.items()),
            dirs=self._granted_dirs(spec),
            exports=self._exports(spec),
            wasi=any(module == WASI for module, _, _ in prepared.shape.imports),
            scratch=spec.scratch,
            grants=self.host.grants[spec.name],
            host_socket=self._rpc.path if self.host.needed else "",
        )
        return Loaded(module_info(prepared, compiler, state, self.config, generation), ref, prepared.path)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.host.start(self.redis_link)
        for spec in self.config.modules:
            self._loaded[spec.name] = self._compile(self._prepare(spec), 1)
        this = multiprocessing.current_process()
        if this.daemon:
            # hypercorn's workers are daemonic, and multiprocessing refuses to start
            # children from those; ours exit when this process's pipes close.
            this.daemon = False
        # Workers fork from a forkserver that imported wasmer and this plugin's
        # `worker` once (neither imports the kernel): a worker (re)starts in
        # milliseconds instead of a fresh spawn.
        multiprocessing.get_context("forkserver").set_forkserver_preload([worker.__name__])
        _workers_skip_main()
        self._context = await self._stack.enter_async_context(
            trio_parallel.open_worker_context(idle_timeout=math.inf, grace_period=1.0, worker_type=trio_parallel.WorkerType.FORKSERVER),
        )
        try:
            if self.config.prewarm and self._loaded:
                await self._warm(self.config.workers)
            if self._app is not None:
                await self._app.nursery.start(self._background)
        except Exception as exc:
            await self.stop()
            raise StartupError(f"cannot start WebAssembly worker processes: {type(exc).__name__}: {exc}") from exc

    async def _background(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as tasks:
            self._tasks = tasks
            if self.host.needed:
                await tasks.start(self._rpc.serve)
            if self.config.watch:
                await tasks.start(watch_files, self._watched, self.reload, self.config.watch_interval)
            task_status.started()
            await trio.sleep_forever()

    async def stop(self) -> None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
            self._tasks = None
        with trio.CancelScope(shield=True):
            await self._stack.aclose()
        self._context = None
        self.host.stop()

    async def _warm(self, count: int) -> None:
        """Spawn `count` workers at once (concurrent calls each take their own)
        and deserialize every module in them."""
        refs = [loaded.ref for loaded in self._loaded.values()]
        context = self._context
        assert context is not None
        start = time.perf_counter()
        pids: list[int] = []

        async def one() -> None:
            with contextlib.suppress(trio_parallel.BrokenWorkerError, trio.ClosedResourceError):
                pids.append(await context.run_sync(worker.preload, refs, limiter=self._limiter))

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
        log.info("wasm.workers_warm", workers=len(set(pids)), ms=round((time.perf_counter() - start) * 1000, 1))

    def _replace_worker(self) -> None:
        """After a worker was killed, spawn and warm a replacement in the background."""
        if self._tasks is not None and self.config.prewarm:
            self._tasks.start_soon(self._replenish)

    async def _replenish(self) -> None:
        if self._context is None:
            return
        stats = self._context.statistics()
        if stats.idle_workers + stats.running_workers < self.config.workers:
            # Idle workers are taken first: one call per idle worker plus one per missing one.
            await self._warm(self.config.workers - stats.running_workers)

    async def reload(self, module: str) -> ModuleInfo:
        current = self._get(module)
        prepared = self._prepare(self.config.spec(module))
        loaded = self._compile(prepared, current.info.generation + 1)
        self._loaded[module] = loaded
        log.info("wasm.module_reloaded", module=module, generation=loaded.info.generation, sha256=loaded.info.sha256[:12])
        return loaded.info

    # -- calls -------------------------------------------------------------------

    async def _run(self, module: str, function: str, fn: Any, *args: Any, timeout: float | None = None) -> Outcome:
        loaded = self._get(module)
        context = self._context
        if context is None:
            raise WasmUnavailable("the WebAssembly loader is not running")
        limit = timeout if timeout is not None else loaded.info.timeout
        async with self._slot(module):
            start = time.perf_counter()
            error: str | None = "cancelled"
            try:
                with trio.move_on_after(limit) as scope:
                    try:
                        # The slot bounds concurrency; trio_parallel's own limiter must not.
                        outcome: Outcome = await context.run_sync(fn, loaded.ref, *args, kill_on_cancel=True, limiter=self._unlimited)
                    except trio.ClosedResourceError:
                        error = "unavailable"
                        raise WasmUnavailable("the WebAssembly loader is stopping") from None
                    except trio_parallel.BrokenWorkerError:
                        error = "crash"
                        raise WasmUnavailable(f"module '{module}' crashed in '{function}' (worker lost); retry the request") from None
                    error = outcome.error
                    emit_logs(module, outcome)
                if scope.cancelled_caught:
                    error = "timeout"
                    raise timeout_error(module, function, limit)
                if outcome.error is not None:
                    raise outcome_error(module, function, outcome, loaded.info.memory_limit_mb)
                return outcome
            finally:
                if error in ("crash", "timeout", "cancelled"):
                    # The worker was lost or killed (a timeout, or the client went away).
                    self._replace_worker()
                self.metrics.record(module, function, time.perf_counter() - start, error)
