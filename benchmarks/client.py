"""Timing `GET /matmul` requests, one at a time, and checking every answer.

Each cell (server row x size) is: one first request (recorded as phase
``first``: the cold path), the remaining warm-up requests (``warmup``), then
the repetitions (``measured``). The cell stops when its time budget is spent
(the reps made are recorded); a request over the per-request budget is
recorded as ``timeout``. A wrong checksum aborts the whole benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
import httpx

from benchmarks.checksum import expected
from benchmarks.servers import RunningServer, ServerRow


class ChecksumMismatch(Exception):
    """A server answered a wrong checksum: its results cannot be trusted."""


@attrs.frozen
class Sample:
    """One request: a row of ``raw.csv``."""

    server: str
    kernel: str
    n: int
    phase: str  # first | warmup | measured
    rep: int
    status: str  # ok | timeout | http <code> | error: ...
    latency_ms: float
    compute_ms: float | None = None
    module_ms: float | None = None
    checksum: float | None = None
    expected: float | None = None
    verified: bool = False


@attrs.frozen
class Cell:
    """What one (server, size) cell measured beyond its samples."""

    server: str
    kernel: str
    n: int
    requested: int
    made: int
    stopped: str  # "" | budget | timeout | error
    elapsed_s: float
    peak_rss_mb: float
    end_rss_mb: float
    cpu_s: float


def measure_cell(
    client: httpx.Client,
    server: RunningServer,
    row: ServerRow,
    n: int,
    *,
    reps: int,
    warmup: int,
    cell_budget: float,
    request_budget: float,
    on_request: Callable[[], None] = lambda: None,
) -> tuple[list[Sample], Cell]:
    want = expected(n)
    url = f"{server.base_url}/matmul"
    params = {"n": str(n), "kernel": row.kernel}
    samples: list[Sample] = []
    server.reset_peak()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    stopped = ""
    plan = ([("first", 0)] + [("warmup", i) for i in range(1, warmup)] if warmup else []) + [("measured", i) for i in range(reps)]
    for phase, rep in plan:
        if time.perf_counter() - started > cell_budget:
            stopped = "budget"
            break
        t0 = time.perf_counter()
        try:
            response = client.get(url, params=params, timeout=request_budget)
        except httpx.TimeoutException:
            samples.append(Sample(row.name, row.kernel, n, phase, rep, "timeout", (time.perf_counter() - t0) * 1000.0, expected=want))
            stopped = "timeout"
            break
        except httpx.HTTPError as exc:
            samples.append(Sample(row.name, row.kernel, n, phase, rep, f"error: {type(exc).__name__}", (time.perf_counter() - t0) * 1000.0))
            stopped = "error"
            break
        latency = (time.perf_counter() - t0) * 1000.0
        on_request()
        if response.status_code != 200:
            samples.append(Sample(row.name, row.kernel, n, phase, rep, f"http {response.status_code}", latency, expected=want))
            stopped = "error"
            break
        body = response.json()
        checksum = float(body["checksum"])
        if checksum != want:
            raise ChecksumMismatch(f"{row.name} answered checksum {checksum!r} for n={n}; the exact value is {want!r}")
        compute = body.get("compute_ms")
        module = body.get("module_ms")
        samples.append(
            Sample(
                row.name,
                row.kernel,
                n,
                phase,
                rep,
                "ok",
                latency,
                float(compute) if compute is not None else None,
                float(module) if module is not None else None,
                checksum,
                want,
                True,
            )
        )
    made = sum(1 for s in samples if s.phase == "measured" and s.status == "ok")
    cell = Cell(
        row.name,
        row.kernel,
        n,
        reps,
        made,
        stopped,
        time.perf_counter() - started,
        server.peak_rss_mb(),
        server.rss_mb(),
        server.cpu_seconds() - cpu_before,
    )
    return samples, cell
