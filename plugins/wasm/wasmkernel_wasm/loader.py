"""What every loader does the same way around its runtime-specific `_run`:
the table of loaded modules and the three call shapes (compute, HTTP handler,
WASI command)."""

from __future__ import annotations

import math
import numbers
import operator
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import structlog
import trio
from wasmkernel_health import Supervisor

from wasmkernel import StartupError
from wasmkernel_wasm import (
    NO_EDITS,
    Arg,
    ArrayIn,
    ArrayOut,
    CallResult,
    FilterDecision,
    FilterRequest,
    FilterResponse,
    HeaderEdits,
    ModuleInfo,
    WasmBadArguments,
    WasmBadResponse,
    WasmError,
    WasmRequest,
    WasmResponse,
    WasmUnavailable,
)
from wasmkernel_wasm.calls import STDOUT_LIMIT, ExportNames, Outcome
from wasmkernel_wasm.cgi import parse_cgi_output
from wasmkernel_wasm.config import LoaderConfig, ModuleSpec
from wasmkernel_wasm.filter_wire import decode_decision, decode_edits, encode_filter_request, encode_filter_response
from wasmkernel_wasm.hostapi import NAMESPACE, abi
from wasmkernel_wasm.hostapi.capabilities import HostAPI
from wasmkernel_wasm.imports import check_imports, check_stubs
from wasmkernel_wasm.metrics import CallMetrics
from wasmkernel_wasm.modules import PreparedModule, prepare_module
from wasmkernel_wasm.scratch import ScratchFileError, prepare_scratch, read_output, relative_part
from wasmkernel_wasm.stderr import stderr_excerpt
from wasmkernel_wasm.wire import decode_response, encode_request

if TYPE_CHECKING:
    from wasmkernel import Application

log = structlog.get_logger("wasmkernel.wasm")


class LoadedModule(Protocol):
    """One generation of a module as a loader keeps it."""

    @property
    def info(self) -> ModuleInfo: ...

    @property
    def watched(self) -> Path: ...


L = TypeVar("L", bound=LoadedModule)


class LoaderBase(Generic[L]):
    """Base of loaders: subclasses fill `_loaded` and implement `_run`, which
    runs one of `jobs`' functions (`call`, `handle`, `run_wasi`: module-level,
    so worker processes can receive them) under the module's limits."""

    jobs: Any
    runtime: str

    def __init__(self, config: LoaderConfig, base: Path, app: Application | None = None) -> None:
        self.config = config
        self.base = base
        self.cache_dir = (base / config.cache_dir).resolve()
        self.metrics = CallMetrics()
        self._loaded: dict[str, L] = {}
        #: One token per worker; a call holds one while it runs (see `_slot`).
        self._limiter = trio.CapacityLimiter(config.workers)
        self._per_module = {spec.name: trio.CapacityLimiter(config.concurrency_of(spec)) for spec in config.modules}
        self._queued = 0
        self._tasks: trio.Nursery | None = None
        self._app = app
        #: The host capabilities bound to the modules' grants (see `wasmkernel_wasm.hostapi`).
        self.host = HostAPI(config, base, "wasm")
        #: Restarts the loader's background tasks (host RPC server, watcher, ticker) if one dies.
        self.supervisor = Supervisor(f"{self.runtime}-loader")
        #: Threads for file work around calls (scratch directories, reload): this subsystem's own.
        self.file_threads = trio.CapacityLimiter(2)

    def readiness(self) -> tuple[bool, Any]:
        """Ready while every background task runs; the loaded modules and the tasks as detail."""
        ok, tasks = self.supervisor.readiness()
        return ok, {"modules": [info.name for info in self.modules()], "tasks": tasks}

    def use_services(self, app: Application) -> None:
        """Bind the host capabilities to the modules' grants (during assembly,
        so that the services they take start first)."""
        # needed_by "wasm": the host plugin starts this loader, so what the capabilities use starts before it.
        self.host.bind(app, needed_by="wasm")

    def _granted_dirs(self, spec: ModuleSpec) -> tuple[tuple[str, str, bool], ...]:
        """A WASI module's granted directories: (host path, guest path, writable)."""
        return tuple((str((self.base / d.host).resolve()), d.guest, d.writable) for d in spec.dirs)

    @staticmethod
    def _log_loaded(spec: ModuleSpec, state: str, compiler: str, generation: int, start: float) -> None:
        log.info(
            "wasm.module_loaded", module=spec.name, cache=state, compiler=compiler, generation=generation, ms=round((time.perf_counter() - start) * 1000, 2)
        )

    @staticmethod
    def _exports(spec: ModuleSpec) -> ExportNames:
        return ExportNames(alloc=spec.alloc, dealloc=spec.dealloc, memory=spec.memory)

    #: (module, name) functions every loader links besides WASI: the host API,
    #: offered to every kind but WASI commands.
    host_functions: tuple[tuple[str, str], ...] = tuple((NAMESPACE, name) for name in abi.FUNCTIONS)

    def _refuse_unsupported(self, prepared: PreparedModule) -> None:
        """`StartupError` if the runtime cannot run a feature `prepared` uses."""

    def _prepare(self, spec: ModuleSpec) -> PreparedModule:
        """Read and check `spec`'s module: file, pin, memory, exports, imports, features."""
        prepared = prepare_module(spec, self.base, self.config)
        self._refuse_unsupported(prepared)
        provided = self.host_functions if spec.kind != "wasi" else ()
        index = self.config.modules.index(spec)
        check_stubs(prepared, provided, f"plugins.wasm.config.modules[{index}].stub_imports")
        check_imports(prepared, provided, self.runtime)
        if spec.argv_pointer:
            _check_argv_entry(prepared, f"plugins.wasm.config.modules[{index}].argv_pointer")
        return prepared

    def _compile(self, prepared: PreparedModule, generation: int) -> L:
        """Compile `prepared` (or take it from the cache) in this process."""
        raise NotImplementedError

    def prepare(self, module: str | None = None) -> Sequence[ModuleInfo]:
        return [self._compile(self._prepare(spec), 1).info for spec in self.config.selected(module)]

    def modules(self) -> Sequence[ModuleInfo]:
        return [loaded.info for loaded in self._loaded.values()]

    def _watched(self) -> Mapping[str, Path]:
        return {name: loaded.watched for name, loaded in self._loaded.items()}

    def _get(self, module: str) -> L:
        try:
            return self._loaded[module]
        except KeyError:
            raise WasmUnavailable(f"WebAssembly module '{module}' is not loaded") from None

    @asynccontextmanager
    async def _slot(self, module: str) -> AsyncIterator[None]:
        """Wait for a worker the module may use: at most its `max_concurrency`
        calls and `workers` calls in all run at once; when `max_queued` calls
        already wait, 503 with Retry-After at once. A call's time limit starts
        once it holds its slot, never while it waits."""
        if self._queued >= self.config.max_queued:
            raise WasmUnavailable("every WebAssembly worker is busy and the queue is full; retry shortly", retry_after=1)
        per_module = self._per_module[module]
        self._queued += 1
        try:
            await per_module.acquire()
            try:
                await self._limiter.acquire()
            except BaseException:
                per_module.release()
                raise
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._limiter.release()
            per_module.release()

    async def _run(self, module: str, function: str, job: Any, *args: Any, timeout: float | None = None) -> Outcome:
        raise NotImplementedError

    async def call(self, module: str, function: str, *args: Arg, timeout: float | None = None) -> CallResult:
        """Call a compute export with `args` checked against its parameter types
        (`WasmBadArguments`, 400) and its result checked to be finite (502)."""
        checked = checked_arguments(self._get(module).info, function, args)
        outcome = await self._run(module, function, self.jobs.call, function, checked, timeout=timeout)
        if isinstance(outcome.value, float) and not math.isfinite(outcome.value):
            raise WasmBadResponse(f"module '{module}' function '{function}' returned a non-finite number ({outcome.value})")
        return CallResult(outcome.value, outcome.outputs, outcome.duration_ms)

    async def handle_http(self, module: str, request: WasmRequest) -> WasmResponse:
        outcome = await self._run(module, "handle", self.jobs.handle, encode_request(request))
        return _logged(decode_response, outcome.value, module)

    async def call_bytes(self, module: str, function: str, body: bytes) -> bytes:
        outcome = await self._run(module, function, self.jobs.handle, body, function)
        return bytes(outcome.value)

    async def filter_request(self, module: str, request: FilterRequest) -> FilterDecision:
        outcome = await self._run(module, "on_request", self.jobs.handle, encode_filter_request(request), "on_request")
        return _logged(decode_decision, outcome.value, module)

    async def filter_response(self, module: str, response: FilterResponse) -> HeaderEdits:
        if "on_response" not in self._get(module).info.exports:
            return NO_EDITS
        outcome = await self._run(module, "on_response", self.jobs.handle, encode_filter_response(response), "on_response")
        return _logged(decode_edits, outcome.value, module)

    async def run_wasi(self, module: str, request: WasmRequest, env: Mapping[str, str]) -> WasmResponse:
        """Run the command with its argv, a scratch directory of its own (removed
        afterwards, even when the call was killed), stdout as CGI or raw body,
        stderr into the log and the exit status mapped by `exit_status`."""
        spec = self.config.spec(module)
        scratch = tempfile.mkdtemp(prefix="wasmkernel-wasi-")
        output: bytes | None = None
        try:
            if spec.scratch is not None or spec.devices:
                body_file = relative_part(spec.body_file, spec.scratch) if spec.body_file and spec.scratch else None
                await trio.to_thread.run_sync(prepare_scratch, scratch, request.body, body_file, spec.devices, limiter=self.file_threads)
            argv = tuple(spec.argv(request.params))
            outcome = await self._run(module, spec.entry, self.jobs.run_wasi, request.body, tuple(env.items()), argv, scratch, spec.entry, spec.argv_pointer)
            if spec.output_file is not None and spec.scratch is not None and outcome.exit_status == 0:
                output_file = relative_part(spec.output_file, spec.scratch)
                output = await trio.to_thread.run_sync(self._output_file, module, scratch, output_file, limiter=self.file_threads)
        finally:
            with trio.CancelScope(shield=True):  # also when the client left
                await trio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True), limiter=self.file_threads)
        if outcome.stderr:
            # A field of one log line, never raw text: a guest cannot forge log lines.
            log.info("wasm.stderr", module=module, exit_status=outcome.exit_status, stderr=outcome.stderr.decode("utf-8", "replace"))
        status = spec.exit_status.get(str(outcome.exit_status))
        if status is None and outcome.exit_status != 0:
            host_paths = (scratch, str(self.base), str(self.cache_dir), *(granted[0] for granted in self._granted_dirs(spec)))
            excerpt = stderr_excerpt(outcome.stderr, spec.stderr_excerpt, host_paths)
            said = f"; stderr: {excerpt}" if excerpt else ""
            raise WasmError(f"module '{module}' function '{spec.entry}' failed: exited with status {outcome.exit_status}{said}")
        if spec.output == "raw":
            return WasmResponse(status or 200, (("content-type", spec.content_type),), outcome.value if output is None else output)
        response = _logged(parse_cgi_output, outcome.value, module)
        return response if status is None else WasmResponse(status, response.headers, response.body)

    @staticmethod
    def _output_file(module: str, scratch: str, output_file: PurePosixPath) -> bytes:
        """The response body a program that exited 0 left in its `output_file`
        (502 if it left none, or no usable one; a mapped non-zero exit serves stdout)."""
        try:
            return read_output(scratch, output_file, STDOUT_LIMIT)
        except ScratchFileError as exc:
            log.warning("wasm.bad_response", module=module, reason=str(exc))
            raise WasmBadResponse(f"module '{module}': {exc}") from None


T = TypeVar("T")
_INT_BITS = {"i32": 32, "i64": 64}
_F32_MAX = 3.4028234663852886e38


def _fitted(kind: str, value: object) -> tuple[Arg, str]:
    """`value` as a `kind` parameter takes it (numpy numbers become Python's), or why it cannot be one."""
    if isinstance(value, (ArrayIn, ArrayOut)):
        return value, "" if kind == "i32" else f"is {kind}, not a pointer"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return 0, f"must be a number ({kind})"
    if kind in _INT_BITS:
        if not isinstance(value, numbers.Integral):
            return 0, f"must be an integer ({kind})"
        half, integer = 2 ** (_INT_BITS[kind] - 1), operator.index(value)
        return integer, "" if -half <= integer < half else f"is out of range for {kind}"
    if kind in ("f32", "f64"):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        finite = math.isfinite(number) and (kind == "f64" or abs(number) <= _F32_MAX)
        return number, "" if finite else f"must be a finite number within {kind}"
    return 0, f"has type {kind}, which cannot be passed from Python"


def checked_arguments(info: ModuleInfo, function: str, args: Sequence[Arg]) -> tuple[Arg, ...]:
    """`args` as the export `function` of `info` takes them: integers within
    i32/i64, finite floats within f32/f64 (an integer is a fine float, a float
    is never an integer), arrays for i32 pointers. `WasmBadArguments` (400)
    names the first argument that does not fit."""
    signature = next((found for found in info.signatures if found[0] == function), None)
    if signature is None:
        return tuple(args)  # an unknown export: the runtime answers (no exported function ...)
    params = signature[1]
    where = f"module '{info.name}' function '{function}'"
    if len(args) != len(params):
        raise WasmBadArguments(f"{where} takes {len(params)} arguments, got {len(args)}")
    out: list[Arg] = []
    for position, (kind, given) in enumerate(zip(params, args), start=1):
        value, problem = _fitted(kind, given)
        if problem:
            raise WasmBadArguments(f"{where}: argument {position} {problem}")
        out.append(value)
    return tuple(out)


def _check_argv_entry(prepared: PreparedModule, key: str) -> None:
    """`StartupError` (naming `key`) unless the entry takes (i32 argc, i32 argv) and the allocator is exported."""
    spec = prepared.spec
    signature = next((found for found in prepared.shape.signatures if found[0] == spec.entry), None)
    if signature is None or signature[1] != ("i32", "i32"):
        raise StartupError(f"{key}: module '{spec.name}' export {spec.entry!r} must take (i32 argc, i32 argv)")
    missing = [name for name in (spec.alloc, spec.dealloc) if name not in prepared.shape.exports]
    if missing:
        raise StartupError(f"{key}: module '{spec.name}' does not export {', '.join(missing)} (set alloc / dealloc to its allocator's exports)")


def _logged(parse: Callable[[bytes, str], T], output: bytes, module: str) -> T:
    """`parse` a module's output; an unsendable one (502) is logged naming the module."""
    try:
        return parse(output, module)
    except WasmBadResponse as exc:
        log.warning("wasm.bad_response", module=module, reason=str(exc), detail=exc.reason)
        raise
