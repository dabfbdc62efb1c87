"""The matmul plugin: matrix multiplication in a WebAssembly module.

Routes:

- `GET /matmul?n=N&kernel=naive|fast` — the benchmark endpoint, same contract
  as the peer servers in ``benchmarks/peers``: the module builds
  A[i][j] = ((i·n+j) mod 7)·0.5 and B[i][j] = ((i·n+j) mod 5)·0.25 itself
  (`bench_checksum`), multiplies them and returns the sum of C. `naive`
  (default, the peers' kernel) is one call; `fast` (packed, blocked simd128)
  splits the rows over `split_rows` concurrent calls, i.e. worker processes.
  Answers ``{"n", "kernel", "checksum", "compute_ms", "module_ms"}``:
  `compute_ms` is the host's wall time around the module calls (what a client
  waits for the multiply, worker round trips included), `module_ms` the
  longest time one call spent inside the module.
- `POST /api/matmul` (scope ``matrix:compute``) — ``{"a": [[...]], "b": [[...]]}``
  → ``{"c": [[...]]}``, computed by `matmul_fast`.

Both are typed routes (`wasmkernel_matmul.matrices`: `BenchmarkQuery` →
`BenchmarkResult`, `Operands` → `Product`): the kernel checks the query and
the body against the models' schemas (422) before the endpoints run.

Config (``[plugins.matmul.config]``):

- `module` (str, default ``"matmul"``): the loader's module name.
- `max_n` (int, default 5000): largest `n` for `GET /matmul`.
- `public_max_n` (int, default 1000): largest `n` an anonymous caller may
  ask for; a larger one needs an identity with scope ``matrix:compute`` (401
  without credentials, 403 without the scope; needs the authz plugin, which
  authenticates the route optionally). Compute time grows as n³: n = 5000 is
  minutes of a worker, so it is not for anyone who asks.
- `api_max_dim` (int, default 512): largest dimension for `POST /api/matmul`.
- `api_max_body_bytes` (int, default 8 MiB): body limit of `POST /api/matmul`
  (a 512x512 pair of matrices is a few MB of JSON).
- `split_rows` (int, default 2): concurrent calls the fast kernel uses.
- `split_min_n` (int, default 256): below this `n` the fast kernel makes one
  call (a worker round trip costs more than the rows it would save).

Also contributes the `wasmkernel bench` command (see `command.py`).
"""

from __future__ import annotations

import itertools
import math
import time

import attrs
import structlog
import trio
from wasmkernel_wasm import MODULE_LOADER, ArrayIn, ArrayOut, CallResult, ModuleLoader, WasmError

from wasmkernel import (
    Application,
    Authenticator,
    AuthRequirement,
    Command,
    ConfiguredPlugin,
    Forbidden,
    Request,
    Route,
    StartupError,
    Unauthorized,
    hookimpl,
)
from wasmkernel_matmul import command
from wasmkernel_matmul.matrices import BenchmarkQuery, BenchmarkResult, Operands, Product, benchmark_query, check_finite, operands, parse_operands

log = structlog.get_logger("wasmkernel.matmul")

SCOPE = "matrix:compute"
EXPORTS = ("bench_checksum", "matmul_fast")


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class Config:
    module: str = "matmul"
    max_n: int = attrs.field(default=5000, validator=_positive)
    public_max_n: int = attrs.field(default=1000, validator=_positive)
    api_max_dim: int = attrs.field(default=512, validator=_positive)
    api_max_body_bytes: int = attrs.field(default=8 * 1024 * 1024, validator=_positive)
    split_rows: int = attrs.field(default=2, validator=_positive)
    split_min_n: int = attrs.field(default=256, validator=_positive)


def row_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """Split rows 0..n into at most `parts` contiguous, non-empty ranges."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


class Plugin(ConfiguredPlugin[Config]):
    config_class = Config
    requires = ("wasm",)
    order = 52
    loader: ModuleLoader
    #: Whose challenges a 401 carries.
    authenticators: tuple[Authenticator, ...] = ()

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        self.loader = app.services.get(MODULE_LOADER, needed_by="matmul")
        self.authenticators = tuple(found for _, found in app.hooks.gather("wasmkernel_authenticators"))
        cfg = self.config
        return [
            Route(
                "/matmul",
                self.benchmark,
                name="matmul",
                query_model=benchmark_query(cfg.max_n),
                auth=AuthRequirement(required=False, identify=True),
                summary="Multiply the benchmark matrices of size n in WebAssembly; returns the checksum",
                tags=("matmul", "benchmark"),
                responses={
                    200: BenchmarkResult,
                    401: f"n above {cfg.public_max_n} without credentials",
                    403: f"n above {cfg.public_max_n} without scope {SCOPE}",
                    422: "bad n or kernel",
                },
            ),
            Route(
                "/api/matmul",
                self.multiply,
                methods=("POST",),
                name="api.matmul",
                auth=AuthRequirement(scopes=(SCOPE,)),
                body_model=operands(cfg.api_max_dim),
                max_body_size=cfg.api_max_body_bytes,
                summary="Multiply two matrices: {a, b} → {c}",
                tags=("matmul",),
                responses={200: Product, 401: "no credentials", 403: f"missing scope {SCOPE}", 422: "bad matrices"},
            ),
        ]

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        """Refuse to start when the configured module is not loaded or lacks an
        export (the loader, a service, started before this plugin)."""
        loader = self.loader
        found = {info.name: info for info in loader.modules()}
        info = found.get(self.config.module)
        if info is None:
            raise StartupError(f"module '{self.config.module}' is not loaded (loaded: {', '.join(sorted(found)) or 'none'})")
        missing = [name for name in EXPORTS if name not in info.exports]
        if missing:
            raise StartupError(f"module '{self.config.module}' does not export {', '.join(missing)}")

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return [command.bench_command()]

    # -- endpoints --------------------------------------------------------------

    def _check_caller(self, request: Request, n: int) -> None:
        identity = request.identity
        if identity is None:
            challenges = [("WWW-Authenticate", a.challenge) for a in self.authenticators]
            raise Unauthorized(f"n above {self.config.public_max_n} needs credentials with scope {SCOPE}", headers=challenges)
        if SCOPE not in identity.scopes:
            raise Forbidden(f"n above {self.config.public_max_n} needs scope {SCOPE}")

    async def benchmark(self, request: Request, query: BenchmarkQuery) -> BenchmarkResult:
        n, kernel = query.n, query.kernel
        if n > self.config.public_max_n:
            self._check_caller(request, n)
        loader = self.loader
        module = self.config.module
        ranges = row_ranges(n, self.config.split_rows if kernel == "fast" and n >= self.config.split_min_n else 1)
        fast = int(kernel == "fast")
        results: list[CallResult] = []

        async def run(lo: int, hi: int) -> None:
            results.append(await loader.call(module, "bench_checksum", n, lo, hi, fast))

        started = time.perf_counter()
        async with request.cancelled_on_disconnect(), trio.open_nursery() as nursery:
            for lo, hi in ranges:
                nursery.start_soon(run, lo, hi)
        compute_ms = (time.perf_counter() - started) * 1000.0
        checksum = sum(float(result.value or 0.0) for result in results)
        if math.isnan(checksum):  # the module refused its arguments
            raise WasmError(f"module '{module}' function 'bench_checksum' returned NaN for n={n}")
        return BenchmarkResult(n, kernel, checksum, compute_ms, max(result.duration_ms for result in results))

    async def multiply(self, request: Request, body: Operands) -> Product:
        a, b = parse_operands(body)
        result = await self.loader.call(
            self.config.module,
            "matmul_fast",
            ArrayIn(a.values, "f64"),
            ArrayIn(b.values, "f64"),
            ArrayOut(a.rows * b.cols),
            a.rows,
            a.cols,
            b.cols,
        )
        c = result.output_array(0).tolist()
        check_finite(c)
        m = b.cols
        return Product([c[i * m : (i + 1) * m] for i in range(a.rows)])
