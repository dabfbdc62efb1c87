"""What every loader does the same way around its runtime-specific `_run`:
the table of loaded modules and the three call shapes (compute, HTTP handler,
WASI command)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import structlog
import trio

from wasmkernel_wasm import Arg, CallResult, ModuleInfo, WasmRequest, WasmResponse, WasmUnavailable
from wasmkernel_wasm.calls import Outcome
from wasmkernel_wasm.cgi import parse_cgi_output
from wasmkernel_wasm.config import LoaderConfig, ModuleSpec
from wasmkernel_wasm.metrics import CallMetrics
from wasmkernel_wasm.modules import PreparedModule, prepare_module
from wasmkernel_wasm.wire import decode_response, encode_request

if TYPE_CHECKING:
    from kernel import Application

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

    def __init__(self, config: LoaderConfig, base: Path, app: Application | None = None) -> None:
        self.config = config
        self.base = base
        self.cache_dir = (base / config.cache_dir).resolve()
        self.metrics = CallMetrics()
        self._loaded: dict[str, L] = {}
        self._limiter = trio.CapacityLimiter(config.workers)
        self._tasks: trio.Nursery | None = None
        self._app = app

    def _granted_dirs(self, spec: ModuleSpec) -> tuple[tuple[str, str, bool], ...]:
        """A WASI module's granted directories: (host path, guest path, writable)."""
        return tuple((str((self.base / d.host).resolve()), d.guest, d.writable) for d in spec.dirs)

    @staticmethod
    def _log_loaded(spec: ModuleSpec, state: str, compiler: str, generation: int, start: float) -> None:
        log.info(
            "wasm.module_loaded", module=spec.name, cache=state, compiler=compiler, generation=generation, ms=round((time.perf_counter() - start) * 1000, 2)
        )

    def _compile(self, prepared: PreparedModule, generation: int) -> L:
        """Compile `prepared` (or take it from the cache) in this process."""
        raise NotImplementedError

    def prepare(self, module: str | None = None) -> Sequence[ModuleInfo]:
        return [self._compile(prepare_module(spec, self.base, self.config), 1).info for spec in self.config.selected(module)]

    def modules(self) -> Sequence[ModuleInfo]:
        return [loaded.info for loaded in self._loaded.values()]

    def _watched(self) -> Mapping[str, Path]:
        return {name: loaded.watched for name, loaded in self._loaded.items()}

    def _get(self, module: str) -> L:
        try:
            return self._loaded[module]
        except KeyError:
            raise WasmUnavailable(f"WebAssembly module '{module}' is not loaded") from None

    async def _run(self, module: str, function: str, job: Any, *args: Any, timeout: float | None = None) -> Outcome:
        raise NotImplementedError

    async def call(self, module: str, function: str, *args: Arg, timeout: float | None = None) -> CallResult:
        outcome = await self._run(module, function, self.jobs.call, function, args, timeout=timeout)
        return CallResult(outcome.value, outcome.outputs, outcome.duration_ms)

    async def handle_http(self, module: str, request: WasmRequest) -> WasmResponse:
        outcome = await self._run(module, "handle", self.jobs.handle, encode_request(request))
        return decode_response(outcome.value, module)

    async def run_wasi(self, module: str, request: WasmRequest, env: Mapping[str, str]) -> WasmResponse:
        outcome = await self._run(module, "_start", self.jobs.run_wasi, request.body, tuple(env.items()))
        return parse_cgi_output(outcome.value, module)
