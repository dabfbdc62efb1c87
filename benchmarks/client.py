"""Timing `GET /matmul` requests, one at a time, and checking every answer.

Each cell (server row x size) is: one first request (recorded as phase
``first``: the cold path), the remaining warm-up requests (``warmup``), then
the repetitions (``measured``). The cells of one size take turns, a request
each (`CellRun.step`). A cell stops when its time budget is spent (the reps
made are recorded); a request over the per-request budget is recorded as
``timeout``. A wrong checksum aborts the whole benchmark.
"""

from __future__ import annotations

import time

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


@attrs.define
class CellRun:
    """One (server row, size) cell, measured one request per `step`, so that the
    cells of several servers take turns (A, B, A, B …): whatever disturbs the
    machine for a while lands on every server alike, not on one server's pass.

    The cell's budget counts only its own requests; its CPU time and peak RSS are
    the server's over its own requests (the server's peak is reset before each)."""

    row: ServerRow
    n: int
    reps: int
    warmup: int
    cell_budget: float
    request_budget: float
    samples: list[Sample] = attrs.field(factory=list)
    stopped: str = ""  # "" | budget | timeout | error
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    end_rss_mb: float = 0.0
    _plan: list[tuple[str, int]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        warmups = [("first", 0)] + [("warmup", i) for i in range(1, self.warmup)] if self.warmup else []
        self._plan = warmups + [("measured", i) for i in range(self.reps)]

    @property
    def done(self) -> bool:
        return bool(self.stopped) or len(self.samples) >= len(self._plan)

    def step(self, client: httpx.Client, server: RunningServer) -> Sample:
        """Make the cell's next request on `server` (a wrong checksum raises `ChecksumMismatch`)."""
        phase, rep = self._plan[len(self.samples)]
        row, n, want = self.row, self.n, expected(self.n)
        server.reset_peak()
        cpu_before = server.cpu_seconds()
        t0 = time.perf_counter()
        try:
            response = client.get(f"{server.base_url}/matmul", params={"n": str(n), "kernel": row.kernel}, timeout=self.request_budget)
            latency = (time.perf_counter() - t0) * 1000.0
        except httpx.TimeoutException:
            waited = (time.perf_counter() - t0) * 1000.0
            return self._record(Sample(row.name, row.kernel, n, phase, rep, "timeout", waited, expected=want), server, "timeout")
        except httpx.HTTPError as exc:
            waited = (time.perf_counter() - t0) * 1000.0
            return self._record(Sample(row.name, row.kernel, n, phase, rep, f"error: {type(exc).__name__}", waited), server, "error")
        self.cpu_s += server.cpu_seconds() - cpu_before
        self.peak_rss_mb = max(self.peak_rss_mb, server.peak_rss_mb())
        if response.status_code != 200:
            return self._record(Sample(row.name, row.kernel, n, phase, rep, f"http {response.status_code}", latency, expected=want), server, "error")
        body = response.json()
        checksum = float(body["checksum"])
        if checksum != want:
            raise ChecksumMismatch(f"{row.name} answered checksum {checksum!r} for n={n}; the exact value is {want!r}")
        compute, module = body.get("compute_ms"), body.get("module_ms")
        sample = Sample(
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
        return self._record(sample, server, "")

    def _record(self, sample: Sample, server: RunningServer, stopped: str) -> Sample:
        self.samples.append(sample)
        self.elapsed_s += sample.latency_ms / 1000.0
        self.end_rss_mb = server.rss_mb()
        if not stopped and self.elapsed_s > self.cell_budget and len(self.samples) < len(self._plan):
            stopped = "budget"
        self.stopped = self.stopped or stopped
        return sample

    def cell(self) -> Cell:
        made = sum(1 for s in self.samples if s.phase == "measured" and s.status == "ok")
        return Cell(self.row.name, self.row.kernel, self.n, self.reps, made, self.stopped, self.elapsed_s, self.peak_rss_mb, self.end_rss_mb, self.cpu_s)
