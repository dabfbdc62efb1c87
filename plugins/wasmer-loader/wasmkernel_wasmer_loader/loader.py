"""`WasmerLoader`: everything wasmer does happens in Python 3.10 processes.

wasmer 1.1 runs only on CPython 3.10, holds the GIL during a call, binds
instances to their thread and cannot interrupt a running call. So the server
(Python ≥ 3.11) never imports it: a short-lived 3.10 process compiles the
modules the cache misses (`compile.Compiler`), and every call
runs in a 3.10 worker process (`pool.WorkerPool`, in the environment that
`environment` finds or creates). A timeout, or a client that goes away, kills
the call's worker; a crash loses only that worker; either way a replacement
is started and warmed in the background.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio
from wasmkernel_wasm import MIB, ModuleInfo, WasmError, WasmUnavailable
from wasmkernel_wasm.engine import (
    WASI,
    EngineConfig,
    LoaderBase,
    LoaderConfig,
    Outcome,
    PreparedModule,
    Server,
    cache_path,
    compile_cached,
    emit_logs,
    module_info,
    outcome_error,
    refuse_unsupported,
    timeout_error,
    watch_files,
)

from wasmkernel import StartupError
from wasmkernel_wasmer_loader.compile import Compiler
from wasmkernel_wasmer_loader.environment import WASMER_VERSION, WorkerEnvironment, install_worker_code, worker_environment
from wasmkernel_wasmer_loader.pool import Worker, WorkerFailed, WorkerLost, WorkerPool
from wasmkernel_wasmer_loader.worker.wire import Job, ModuleRef, WireError, decode_outcome

if TYPE_CHECKING:
    from wasmkernel import Application

log = structlog.get_logger("wasmkernel.wasmer_loader")

COMPILERS = ("cranelift", "singlepass")
#: A reply may hold what the module's memory holds (a response, output
#: arrays), plus this much: log lines, a WASI command's captured output.
REPLY_SLACK = 64 * MIB


@attrs.frozen
class WasmerConfig(EngineConfig):
    """`EngineConfig`, and where the workers' Python 3.10 and their
    environment are (empty: found or created, see `environment`)."""

    python: str = ""
    environment: str = ""


@attrs.frozen
class Loaded:
    """One generation of a module as the server knows it."""

    info: ModuleInfo
    ref: ModuleRef
    watched: Path


def _trusted(artifact: bytes) -> None:
    """A cached artifact needs no check beyond its frame's sha256 (see `_compile`)."""


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class WasmerLoader(LoaderBase[Loaded]):
    """The `wasmkernel_wasm.ModuleLoader` backed by wasmer 1.1 (see docs/wasm-abi.md)."""

    jobs = Job
    runtime = "wasmer"

    def __init__(self, config: LoaderConfig, base: Path, app: Application | None = None, settings: WasmerConfig | None = None) -> None:
        super().__init__(config, base, app)
        self._settings = settings if settings is not None else WasmerConfig()
        self._environment: WorkerEnvironment | None = None
        self._code: Path | None = None
        self._compiler: Compiler | None = None
        self._pool: WorkerPool | None = None
        #: Why the workers are not ready: "warming up" during a warm-up, what
        #: made the last one fail, "" once one succeeded (see `readiness`).
        self._workers_state = ""
        #: Workers reach the host API's shared state (key-value, HTTP) through this socket.
        self._rpc = Server(self.host)

    # -- the workers' interpreter -------------------------------------------------

    def _path(self, value: str) -> str:
        """A configured path: relative ones (with a slash) are relative to the registry's directory."""
        return str(self.base / value) if value and "/" in value and not Path(value).is_absolute() else value

    def _command(self) -> Callable[[int], list[str]]:
        """How to start a worker (finding the interpreter and creating its environment on first use)."""
        if self._environment is None:
            environment = worker_environment(self._path(self._settings.python), self._path(self._settings.environment))
            self._code = install_worker_code(self.cache_dir)
            log.info("wasm.wasmer_workers", python=environment.interpreter.version, found=environment.interpreter.where, environment=str(environment.directory))
            self._environment = environment
        assert self._code is not None
        return functools.partial(self._environment.command, self._code)

    # -- compiling ---------------------------------------------------------------

    def _refuse_unsupported(self, prepared: PreparedModule) -> None:
        shape = prepared.shape
        refuse_unsupported(
            prepared,
            f"wasmer {WASMER_VERSION}",
            [
                ("exception handling", shape.tags),
                ("threads (a shared memory)", shape.shared_memory),
                (f"{WASI}.sock_accept", (WASI, "sock_accept", "function") in shape.imports),
            ],
        )

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        """One compile process for the modules compiled together."""
        with Compiler(self._command()) as compiler:
            self._compiler = compiler
            try:
                yield
            finally:
                self._compiler = None

    def _compile(self, prepared: PreparedModule, generation: int) -> Loaded:
        """Compile `prepared` or take it from the cache (in the batch's compile process)."""
        compiler_process = self._compiler
        assert compiler_process is not None, "compile inside _batch()"
        spec = prepared.spec
        compiler = spec.compiler or self.config.compiler
        path = cache_path(self.cache_dir, prepared.wasm, self.runtime, WASMER_VERSION, compiler)
        start = time.perf_counter()
        # A cached artifact is trusted once its sha256 frame checks (its key holds
        # wasmer's version, the compiler and the CPU): the workers deserialize it,
        # and no 3.10 process starts when every module is a hit.
        _, state = compile_cached(prepared, path, _trusted, lambda wasm: compiler_process.compile(spec.name, wasm, compiler), (RuntimeError,))
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
            stubs=spec.stubs(),
        )
        return Loaded(module_info(prepared, compiler, state, self.config, generation), ref, prepared.path)

    def prepare(self, module: str | None = None) -> Sequence[ModuleInfo]:
        with self._batch():
            return super().prepare(module)

    def _compile_all(self) -> dict[str, Loaded]:
        with self._batch():
            return {spec.name: self._compile(self._prepare(spec), 1) for spec in self.config.modules}

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.host.start()
        # Finding (or, the first time, creating) the environment and compiling block: a thread.
        self._loaded.update(await trio.to_thread.run_sync(self._compile_all, limiter=self.file_threads))
        self._pool = WorkerPool(self._command(), self.config.workers, WASMER_VERSION)
        try:
            if self._app is not None:
                # Serving starts meanwhile: calls before the warm-up ends wait
                # for a worker being started; /readyz says ready once it ended.
                await self._app.nursery.start(self._background)
            elif self.config.prewarm and self._loaded:
                await self._warm(self.config.workers)
        except Exception as exc:
            await self.stop()
            cause = _leaf(exc)
            raise StartupError(f"cannot start the WebAssembly worker processes: {type(cause).__name__}: {cause}") from None

    async def _background(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as tasks:
            self._tasks = tasks
            if self.host.needed:
                await tasks.start(self.supervisor.run, "host-rpc", self._rpc.serve)
            if self.config.watch:
                await tasks.start(self.supervisor.run, "watch", functools.partial(watch_files, self._watched, self.reload, self.config.watch_interval))
            if self.config.prewarm and self._loaded:
                self._workers_state = "warming up"
                tasks.start_soon(self._replenish)
            task_status.started()
            await trio.sleep_forever()

    async def stop(self) -> None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
            self._tasks = None
        if self._pool is not None:
            with trio.CancelScope(shield=True):
                await self._pool.aclose()
            self._pool = None
        await self.host.stop()

    async def _warm(self, count: int) -> None:
        """Start `count` workers at once and deserialize every module in them."""
        pool = self._pool
        assert pool is not None
        refs = [loaded.ref for loaded in self._loaded.values()]
        start = time.perf_counter()

        async def preload(worker: Worker) -> None:
            await worker.request(Job.preload, (refs,), 0, 1024)

        pids = await pool.warm(count, preload)
        log.info("wasm.workers_warm", workers=len(pids), ms=round((time.perf_counter() - start) * 1000, 1))

    def _replace_worker(self) -> None:
        """After a worker was lost or killed, start and warm a replacement in the background."""
        if self._tasks is not None and self.config.prewarm:
            self._tasks.start_soon(self._replenish)

    async def _replenish(self) -> None:
        """Warm workers up to `workers` (at startup, and after one was lost);
        a failure is logged and makes the loader not ready, saying why."""
        try:
            missing = self.config.workers - self._pool.statistics()[1] if self._pool is not None else 0
            if missing > 0:  # none when the call that asked lost no worker (cancelled while it waited for one)
                await self._warm(missing)
        except Exception as exc:  # the next call starts one itself, and says why if it cannot
            self._workers_state = f"{type(_leaf(exc)).__name__}: {_leaf(exc)}"
            log.error("wasm.worker_start_failed", error=self._workers_state)
        else:
            self._workers_state = ""

    def readiness(self) -> tuple[bool, Any]:
        """Not ready while the workers warm up or after a warm-up failed (the
        detail says why); else ready while every background task runs."""
        ok, detail = super().readiness()
        if self._workers_state:
            return False, {**detail, "workers": self._workers_state}
        return ok, detail

    async def reload(self, module: str) -> ModuleInfo:
        current = self._get(module)
        prepared = self._prepare(self.config.spec(module))

        def compile_new() -> Loaded:
            with self._batch():
                return self._compile(prepared, current.info.generation + 1)

        loaded = await trio.to_thread.run_sync(compile_new, limiter=self.file_threads)
        self._loaded[module] = loaded
        log.info("wasm.module_reloaded", module=module, generation=loaded.info.generation, sha256=loaded.info.sha256[:12])
        return loaded.info

    # -- calls -------------------------------------------------------------------

    async def _acquire(self, pool: WorkerPool) -> Worker:
        try:
            return await pool.acquire()
        except trio.ClosedResourceError:
            raise WasmUnavailable("the WebAssembly loader is stopping") from None
        except (WorkerLost, OSError) as exc:
            log.error("wasm.worker_start_failed", error=str(exc))
            raise WasmUnavailable("no WebAssembly worker could be started (the server log says why); retry shortly", retry_after=1, reason=str(exc)) from None

    async def _run(self, module: str, function: str, job: Job, *args: Any, timeout: float | None = None) -> Outcome:
        loaded = self._get(module)
        pool = self._pool
        if pool is None:
            raise WasmUnavailable("the WebAssembly loader is not running")
        limit = timeout if timeout is not None else loaded.info.timeout
        async with self._slot(module):
            start = time.perf_counter()
            error: str | None = "cancelled"
            try:
                try:
                    worker = await self._acquire(pool)
                except WasmUnavailable:
                    error = "unavailable"
                    raise
                answered = False
                try:
                    with trio.move_on_after(limit) as scope:
                        try:
                            outcome = decode_outcome(await worker.request(job, (loaded.ref, *args), limit, loaded.ref.memory_limit + REPLY_SLACK))
                        except (WorkerLost, WireError) as exc:
                            error = "crash"
                            log.warning("wasm.worker_lost", module=module, function=function, reason=str(exc))
                            raise WasmUnavailable(f"module '{module}' crashed in '{function}' (worker lost); retry the request", reason=str(exc)) from None
                        except WorkerFailed as exc:
                            answered, error = True, "worker"
                            log.error("wasm.worker_failed", module=module, function=function, error=str(exc))
                            raise WasmError(
                                f"module '{module}' function '{function}' failed in its worker (the server log says why)", reason=str(exc)
                            ) from None
                        answered = True
                        error = outcome.error
                        emit_logs(module, outcome)
                finally:
                    await (pool.release(worker) if answered else pool.discard(worker))
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
