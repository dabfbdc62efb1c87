"""The WebAssembly host's public API: the module-loader contract.

The host never imports a WebAssembly runtime: a loader plugin (wasmer,
wasmtime) implements `ModuleLoader` and hands it out through the
`wasmkernel_module_loader` hook; other plugins get it as the `MODULE_LOADER`
service: ``app.services.get(MODULE_LOADER, needed_by="my-plugin")``. Everything that crosses a loader's API is
plain picklable data, so a loader may run modules in worker processes.
Besides this package, other plugins import `wasmkernel_wasm.engine` (the
engine API: what loaders, the components host and the HTTP triggers and
filters build on; its docstring is the loader author's contract) and, in
worker processes, `wasmkernel_wasm.portable` (its kernel-free part); tests
use `wasmkernel_wasm.testing`. Nothing else of the package is public.

The `WasmError` family are plain exceptions (the host maps them to statuses
at the kernel's error boundary), so a worker process may raise them.
`MODULE_LOADER` (a kernel `ServiceKey`) is imported on first use (PEP 562),
so a process that runs modules never imports the kernel. Worker processes
import only the portable modules (`wasmkernel_wasm.portable`: the plain
data types below, errors, the runtime-neutral call code, the compile cache's
files and the guest side of the host API; the Wasmer loader's run on
Python 3.10).
"""

from __future__ import annotations

import array
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from wasmkernel_wasm.errors import WasmBadArguments, WasmBadResponse, WasmError, WasmMemoryLimit, WasmTimeout, WasmTrap, WasmUnavailable

if TYPE_CHECKING:
    from wasmkernel_wasm.service import MODULE_LOADER

__all__ = [
    "ITEMSIZE",
    "MIB",
    "MODULE_LOADER",
    "PAGE",
    "Arg",
    "ArrayIn",
    "ArrayOut",
    "CallResult",
    "DType",
    "ModuleInfo",
    "ModuleKind",
    "ModuleLoader",
    "WasmBadArguments",
    "WasmBadResponse",
    "WasmError",
    "WasmMemoryLimit",
    "WasmRequest",
    "WasmResponse",
    "WasmTimeout",
    "WasmTrap",
    "WasmUnavailable",
]


def __getattr__(name: str) -> Any:
    if name != "MODULE_LOADER":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from wasmkernel_wasm.service import MODULE_LOADER

    globals()[name] = MODULE_LOADER
    return MODULE_LOADER


PAGE = 65536
MIB = 1024 * 1024

DType = Literal["f64", "i32", "u8"]
_TYPECODES: dict[str, str] = {"f64": "d", "i32": "i", "u8": "B"}
ITEMSIZE: dict[str, int] = {"f64": 8, "i32": 4, "u8": 1}


@attrs.frozen
class ArrayIn:
    """An input buffer: the loader copies it into the module's memory (through
    the module's `alloc` export) and passes its address as one i32 argument."""

    data: bytes
    dtype: DType = "u8"

    @classmethod
    def of(cls, values: Any, dtype: DType = "f64") -> ArrayIn:
        """From a numpy array, an `array.array`, bytes or a sequence of numbers."""
        tobytes = getattr(values, "tobytes", None)
        if isinstance(values, (bytes, bytearray, memoryview)):
            return cls(bytes(values), dtype)
        if tobytes is not None and getattr(values, "dtype", None) is not None:
            import numpy as np  # numpy is optional: only used when given numpy data

            return cls(np.ascontiguousarray(values, dtype=_NUMPY_DTYPES[dtype]).tobytes(), dtype)
        return cls(array.array(_TYPECODES[dtype], values).tobytes(), dtype)

    def __len__(self) -> int:
        return len(self.data) // ITEMSIZE[self.dtype]


@attrs.frozen
class ArrayOut:
    """An output buffer of `length` items the loader allocates in the module's
    memory, passes as one i32 argument, and returns after the call."""

    length: int
    dtype: DType = "f64"


_NUMPY_DTYPES = {"f64": "<f8", "i32": "<i4", "u8": "u1"}

Arg = int | float | ArrayIn | ArrayOut


@attrs.frozen
class CallResult:
    """What a compute call returned: the function's result (None for no
    result), the `ArrayOut` buffers' contents as bytes in argument order, and
    the time spent inside the module."""

    value: int | float | None
    outputs: tuple[bytes, ...] = ()
    duration_ms: float = 0.0

    def output_array(self, index: int, dtype: DType = "f64") -> array.array[Any]:
        out = array.array(_TYPECODES[dtype])
        out.frombytes(self.outputs[index])
        return out


@attrs.frozen
class WasmRequest:
    """An HTTP request as a handler module or WASI command sees it."""

    method: str
    path: str
    query: str = ""
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@attrs.frozen
class WasmResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@attrs.frozen
class FilterRequest:
    """What a filter module's `on_request` sees: the request line, the route's
    name, the headers (credential headers withheld) and, when the filter is
    configured with `body = true`, the body (else None)."""

    method: str
    path: str
    query: str = ""
    route: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@attrs.frozen
class HeaderEdits:
    """Headers a filter removes (names, any case) and then adds (appended)."""

    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


NO_EDITS = HeaderEdits()


@attrs.frozen
class FilterDecision:
    """A filter's answer: respond now (`respond`), or continue with the
    request's and the response's headers edited."""

    request: HeaderEdits = NO_EDITS
    response: HeaderEdits = NO_EDITS
    respond: WasmResponse | None = None


@attrs.frozen
class FilterResponse:
    """What a filter module's optional `on_response` sees."""

    method: str
    path: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()


ModuleKind = Literal["compute", "http", "wasi", "filter"]


@attrs.frozen
class ModuleInfo:
    """What `wasmkernel wasm list` shows about a loaded module."""

    name: str
    kind: ModuleKind
    path: str
    size: int
    sha256: str
    exports: tuple[str, ...]
    compiler: str
    cache: str
    timeout: float
    #: The enforced cap: the smaller of the configured limit and the module's declared maximum.
    memory_limit_mb: int | None
    generation: int = 1
    #: Exported functions: (name, parameter types, result types), types "i32" "i64" "f32" "f64" "v128" "funcref" "externref".
    signatures: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()


class ModuleLoader(Protocol):
    """Loads, caches and runs WebAssembly modules (see docs/wasm-abi.md).

    Modules are compiled at startup (`start`), never while serving. Every call
    is bounded by the module's timeout; a trap, timeout or memory overrun fails
    only that call (`WasmTrap` 500, `WasmTimeout` 504, `WasmMemoryLimit` 507)
    and the next call succeeds.
    """

    runtime: str

    async def start(self) -> None:
        """Compile (or load from cache) every declared module and warm workers."""

    async def stop(self) -> None:
        """Stop workers and watchers."""

    def prepare(self, module: str | None = None) -> Sequence[ModuleInfo]:
        """Check and compile `module` (default: every declared module) into the
        on-disk cache without starting anything; for the CLI. Raises
        `wasmkernel.StartupError` naming the module when one cannot be loaded."""

    def modules(self) -> Sequence[ModuleInfo]:
        """The loaded modules."""

    async def call(self, module: str, function: str, *args: Arg, timeout: float | None = None) -> CallResult:
        """Call a compute export; arrays are passed as pointers (see `ArrayIn`/`ArrayOut`)."""

    async def handle_http(self, module: str, request: WasmRequest) -> WasmResponse:
        """Run an HTTP-handler module's `handle` export on `request`."""

    async def run_wasi(self, module: str, request: WasmRequest, env: Mapping[str, str]) -> WasmResponse:
        """Run a WASI command module WAGI-style: body on stdin, CGI `env`, stdout parsed."""

    async def call_bytes(self, module: str, function: str, body: bytes) -> bytes:
        """Call a bytes-in/bytes-out export `function(ptr, len) -> (ptr << 32 | len)` on `body`; the bytes it returned."""

    async def filter_request(self, module: str, request: FilterRequest) -> FilterDecision:
        """Run a filter module's `on_request` export; its answer is checked like any module output (502 if unsendable)."""

    async def filter_response(self, module: str, response: FilterResponse) -> HeaderEdits:
        """Run a filter module's `on_response` export (no call, no edits, if it exports none)."""

    async def reload(self, module: str) -> ModuleInfo:
        """Recompile `module` from its file; new calls use it, calls in flight finish on the old one."""

    def readiness(self) -> tuple[bool, Any]:
        """(ready, detail) for `/readyz`: not ready while a background task the
        loader needs (its host-API server, say) is down and being restarted."""
