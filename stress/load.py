"""The bounded load generator and the measurements the stress runs share.

A fixed number of trio tasks, each with its own httpx client, loop over a
weighted mix of `Scenario`s until a deadline; every answer is recorded per
scenario (latency, status, expected or not). `Sampler` records RSS, open file
descriptors and process counts of a server's process tree. Loopback only.
"""

from __future__ import annotations

import csv
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import psutil
import trio

RESULTS = Path(__file__).resolve().parent / "results"


@attrs.frozen
class Scenario:
    """One kind of request and the statuses it may legitimately get."""

    name: str
    method: str
    path: str
    expect: frozenset[int] = frozenset({200})
    weight: int = 1
    headers: Mapping[str, str] = attrs.field(factory=dict)
    json: Any = None


@attrs.define
class Recorder:
    """Latencies and outcomes per scenario."""

    latencies: defaultdict[str, list[float]] = attrs.field(factory=lambda: defaultdict(list))
    statuses: defaultdict[str, Counter[str]] = attrs.field(factory=lambda: defaultdict(Counter))
    unexpected: list[tuple[float, str, str]] = attrs.field(factory=list)

    def record(self, scenario: Scenario, outcome: str, seconds: float, expected: bool) -> None:
        self.latencies[scenario.name].append(seconds)
        self.statuses[scenario.name][outcome] += 1
        if not expected:
            self.unexpected.append((time.time(), scenario.name, outcome))

    @property
    def total(self) -> int:
        return sum(sum(counter.values()) for counter in self.statuses.values())

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for name, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            rows.append(
                {
                    "route": name,
                    "requests": len(values),
                    "unexpected": sum(1 for _, scenario, _ in self.unexpected if scenario == name),
                    "p50_ms": round(percentile(ordered, 50) * 1000, 2),
                    "p99_ms": round(percentile(ordered, 99) * 1000, 2),
                    "max_ms": round(ordered[-1] * 1000, 2),
                    "statuses": " ".join(f"{k}:{v}" for k, v in sorted(self.statuses[name].items())),
                }
            )
        return rows


def percentile(ordered: Sequence[float], p: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def generate(
    base: str,
    scenarios: Sequence[Scenario],
    *,
    concurrency: int,
    seconds: float,
    recorder: Recorder,
    timeout: float = 30.0,
    pause: float = 0.0,
    headers: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """`concurrency` tasks send requests from the weighted mix for `seconds`."""
    deadline = trio.current_time() + seconds
    weights = [s.weight for s in scenarios]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
            while trio.current_time() < deadline:
                scenario = rng.choices(scenarios, weights)[0]
                extra = dict(headers()) if headers else {}
                started = time.perf_counter()
                try:
                    response = await client.request(scenario.method, scenario.path, headers={**scenario.headers, **extra}, json=scenario.json)
                    outcome, expected = str(response.status_code), response.status_code in scenario.expect
                except httpx.HTTPError as exc:
                    outcome, expected = type(exc).__name__, False
                recorder.record(scenario, outcome, time.perf_counter() - started, expected)
                if pause:
                    await trio.sleep(pause)

    async with trio.open_nursery() as nursery:
        for seed in range(concurrency):
            nursery.start_soon(worker, seed)


@attrs.frozen
class Sample:
    at: float
    pid: int
    role: str
    rss_mb: float
    fds: int


def tree(root_pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def role_of(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    if "wasmkernel_wasmer_loader.worker" in command:
        return "wasm-worker"
    if "spawn_main" in command:
        return "hypercorn-worker"
    return "server"


@attrs.define
class Sampler:
    """Samples RSS and fds of every process under `root_pid` every `interval` s."""

    root_pid: int
    interval: float = 2.0
    samples: list[Sample] = attrs.field(factory=list)

    def take(self) -> list[Sample]:
        now = time.monotonic()
        taken = []
        for process in tree(self.root_pid):
            try:
                taken.append(Sample(now, process.pid, role_of(process), process.memory_info().rss / 2**20, process.num_fds()))
            except psutil.Error:
                continue
        self.samples += taken
        return taken

    async def run(self, seconds: float) -> None:
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            self.take()
            await trio.sleep(self.interval)

    def slopes(self, after: float) -> list[dict[str, Any]]:
        """Per process: RSS least-squares slope (MiB/min) over samples taken
        `after` seconds past the first one (warm-up excluded), first/last RSS."""
        if not self.samples:
            return []
        start = self.samples[0].at
        by_pid: defaultdict[int, list[Sample]] = defaultdict(list)
        for sample in self.samples:
            if sample.at - start >= after:
                by_pid[sample.pid].append(sample)
        rows = []
        for pid, samples in sorted(by_pid.items()):
            if len(samples) < 3:
                continue
            xs = [(s.at - start) / 60 for s in samples]
            ys = [s.rss_mb for s in samples]
            slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
            rows.append(
                {
                    "pid": pid,
                    "role": samples[0].role,
                    "rss_first_mb": round(ys[0], 1),
                    "rss_last_mb": round(ys[-1], 1),
                    "slope_mb_per_min": round(slope, 3),
                    "fds_first": samples[0].fds,
                    "fds_last": samples[-1].fds,
                }
            )
        return rows


def table(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    if not rows:
        return f"{title}: (no rows)"
    headers = list(rows[0])
    cells = [[str(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def write_csv(name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.csv"
    if rows:
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path
