"""Initialization overhead of the WebAssembly path (the study's §3-4-2).

Scenarios, each a fresh `wasmkernel run` of the full registry:

- ``cold-cache``: an empty compile cache (every start compiles the module);
- ``warm-cache``: the cache filled by an earlier start (deserialize only);
- ``no-prewarm``: warm cache but the loader's worker pool is not warmed at
  startup, so the first call spawns a worker and loads the module;
- ``steady``: the same request on a running, warmed server (median of reps).

For each start: seconds from `exec` until `/hello` first answers 200 (polled
every 5 ms), the latency of the first `GET /matmul?n=N&kernel=fast`, and the
seconds from `exec` to that answer. "Cold" is WasmKernel's compile cache; the
operating system's page cache stays warm (dropping it would disturb everyone
else on a shared machine). `peers` gives the same exec → first-200 figures for
every other server (first start, then warm restarts).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import httpx

from benchmarks.checksum import expected
from benchmarks.servers import ProcessSpec, RunningServer, start

POLL_S = 0.005


@attrs.frozen
class StartupSample:
    scenario: str
    trial: int
    n: int
    ready_s: float | None  # exec → first 200 of /hello
    first_ms: float | None  # latency of the first /matmul
    matmul_s: float | None = None  # exec → first 200 of /matmul?n=N
    server: str = "wasmkernel"


def _first_call(server: RunningServer, n: int, kernel: str | None = "fast") -> tuple[float, float]:
    """(latency ms, seconds since exec) of a verified `GET /matmul?n=N`."""
    params: dict[str, str | int] = {"n": n, **({"kernel": kernel} if kernel else {})}
    with httpx.Client(timeout=120.0) as client:
        t0 = time.perf_counter()
        response = client.get(f"{server.base_url}/matmul", params=params)
        done = time.perf_counter()
    response.raise_for_status()
    if float(response.json()["checksum"]) != expected(n):
        raise ValueError(f"wrong checksum at start-up for n={n}: {response.text}")
    return (done - t0) * 1000.0, done - server.started_at


def _sample(scenario: str, trial: int, n: int, server: RunningServer, kernel: str | None = "fast", name: str = "wasmkernel") -> StartupSample:
    server.wait_ready()  # the first request of a ready server (a load balancer waits for readiness too)
    ms, since_exec = _first_call(server, n, kernel)
    return StartupSample(scenario, trial, n, server.ready_after_s, ms, since_exec, name)


def peers(specs: list[tuple[ProcessSpec, bool]], log_dir: Path, trials: int, n: int = 100) -> list[StartupSample]:
    """Exec → first 200 of /hello (and of /matmul?n=N when the server has it) for
    each (spec, has_matmul): the first start, then `trials` warm restarts; the
    servers take turns, a start each."""
    samples = []
    for trial in range(trials + 1):
        for spec, has_matmul in specs:
            with start(spec, log_dir, poll=POLL_S) as server:
                scenario = "first start" if trial == 0 else "warm"
                if has_matmul:
                    samples.append(_sample(scenario, trial, n, server, None, spec.name))
                else:
                    samples.append(StartupSample(scenario, trial, n, server.ready_after_s, None, None, spec.name))
    return samples


def measure(make_spec: Callable[[Path, bool], ProcessSpec], log_dir: Path, trials: int, n: int, reps: int) -> list[StartupSample]:
    """`make_spec(cache_dir, prewarm)` gives the WasmKernel process for a cache
    folder. The scenarios take turns, a start each (cold, warm, no-prewarm, …)."""
    samples: list[StartupSample] = []
    with tempfile.TemporaryDirectory(prefix="wk-cache-") as shared:
        with start(make_spec(Path(shared), True), log_dir):
            pass  # fills the shared cache
        for trial in range(trials):
            with tempfile.TemporaryDirectory(prefix="wk-cold-") as fresh, start(make_spec(Path(fresh), True), log_dir, poll=POLL_S) as server:
                samples.append(_sample("cold-cache", trial, n, server))
            for scenario, prewarm in (("warm-cache", True), ("no-prewarm", False)):
                with start(make_spec(Path(shared), prewarm), log_dir, poll=POLL_S) as server:
                    samples.append(_sample(scenario, trial, n, server))
        with start(make_spec(Path(shared), True), log_dir) as server:
            for _ in range(3):
                _first_call(server, n)
            steady = [_first_call(server, n)[0] for _ in range(reps)]
        samples += [StartupSample("steady", i, n, None, ms) for i, ms in enumerate(steady)]
    return samples


def median_first(samples: list[StartupSample], scenario: str) -> float | None:
    values = [s.first_ms for s in samples if s.scenario == scenario and s.server == "wasmkernel" and s.first_ms is not None]
    return statistics.median(values) if values else None


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
