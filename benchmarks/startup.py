"""Initialization overhead of the WebAssembly path (the study's §3-4-2).

Scenarios, each a fresh `wasmkernel run` of the full registry:

- ``cold-cache``: an empty compile cache (every start compiles the module);
- ``warm-cache``: the cache filled by an earlier start (deserialize only);
- ``no-prewarm``: warm cache but the loader's worker pool is not warmed at
  startup, so the first call spawns a worker and loads the module;
- ``steady``: the same request on a running, warmed server (median of reps).

For each start: seconds until `/hello` first answers, and the latency of the
first `GET /matmul?n=N&kernel=fast`.
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


@attrs.frozen
class StartupSample:
    scenario: str
    trial: int
    n: int
    ready_s: float | None
    first_ms: float


def _first_call(server: RunningServer, n: int) -> float:
    with httpx.Client(timeout=120.0) as client:
        t0 = time.perf_counter()
        response = client.get(f"{server.base_url}/matmul", params={"n": n, "kernel": "fast"})
        elapsed = (time.perf_counter() - t0) * 1000.0
    response.raise_for_status()
    if float(response.json()["checksum"]) != expected(n):
        raise ValueError(f"wrong checksum at start-up for n={n}: {response.text}")
    return elapsed


def measure(make_spec: Callable[[Path, bool], ProcessSpec], log_dir: Path, trials: int, n: int, reps: int) -> list[StartupSample]:
    """`make_spec(cache_dir, prewarm)` gives the WasmKernel process for a cache folder."""
    samples: list[StartupSample] = []
    with tempfile.TemporaryDirectory(prefix="wk-cache-") as shared:
        for trial in range(trials):
            with tempfile.TemporaryDirectory(prefix="wk-cold-") as fresh, start(make_spec(Path(fresh), True), log_dir) as server:
                samples.append(StartupSample("cold-cache", trial, n, server.ready_after_s, _first_call(server, n)))
        with start(make_spec(Path(shared), True), log_dir):
            pass  # fills the shared cache
        for scenario, prewarm in (("warm-cache", True), ("no-prewarm", False)):
            for trial in range(trials):
                with start(make_spec(Path(shared), prewarm), log_dir) as server:
                    samples.append(StartupSample(scenario, trial, n, server.ready_after_s, _first_call(server, n)))
        with start(make_spec(Path(shared), True), log_dir) as server:
            for _ in range(3):
                _first_call(server, n)
            steady = [_first_call(server, n) for _ in range(reps)]
        samples += [StartupSample("steady", i, n, None, ms) for i, ms in enumerate(steady)]
    return samples


def median_first(samples: list[StartupSample], scenario: str) -> float | None:
    values = [s.first_ms for s in samples if s.scenario == scenario]
    return statistics.median(values) if values else None
