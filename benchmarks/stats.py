"""Summary statistics and significance tests (scipy).

Per (server, n): mean, standard deviation, median, min, max and the 95%
confidence interval of the mean (Student t) of the client-side latency, plus
GFLOP/s (2n³ / mean latency). Per n: Welch's t-test of each WasmKernel row
against each peer row, and a one-way ANOVA across all rows with ≥ 2 samples.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
from scipy import stats

from benchmarks.client import Sample


@attrs.frozen
class Summary:
    server: str
    kernel: str
    n: int
    reps: int
    mean_ms: float
    std_ms: float
    median_ms: float
    min_ms: float
    max_ms: float
    ci95_low_ms: float
    ci95_high_ms: float
    gflops: float
    first_ms: float | None
    compute_mean_ms: float | None
    module_mean_ms: float | None


@attrs.frozen
class Comparison:
    """Welch's t-test of `a` (WasmKernel) against `b` at size `n`."""

    n: int
    a: str
    b: str
    mean_a_ms: float
    mean_b_ms: float
    speedup: float  # mean_b / mean_a: > 1 means `a` is faster
    t: float
    p_value: float


@attrs.frozen
class Anova:
    n: int
    groups: tuple[str, ...]
    f: float
    p_value: float


def gflops(n: int, ms: float) -> float:
    return 2.0 * n**3 / (ms / 1000.0) / 1e9 if ms > 0 else math.nan


def ci95(values: Sequence[float]) -> tuple[float, float]:
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean
    half = float(stats.t.ppf(0.975, len(values) - 1) * stats.sem(values))
    return mean - half, mean + half


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def measured(samples: Iterable[Sample]) -> dict[tuple[str, int], list[Sample]]:
    groups: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.phase == "measured" and sample.status == "ok":
            groups[(sample.server, sample.n)].append(sample)
    return groups


def summarize(samples: Sequence[Sample]) -> list[Summary]:
    firsts = {(s.server, s.n): s.latency_ms for s in samples if s.phase == "first" and s.status == "ok"}
    rows = []
    for (server, n), group in sorted(measured(samples).items(), key=lambda item: (item[0][1], item[0][0])):
        latencies = [s.latency_ms for s in group]
        low, high = ci95(latencies)
        mean = float(np.mean(latencies))
        rows.append(
            Summary(
                server,
                group[0].kernel,
                n,
                len(latencies),
                mean,
                float(np.std(latencies, ddof=1)) if len(latencies) > 1 else 0.0,
                float(np.median(latencies)),
                min(latencies),
                max(latencies),
                low,
                high,
                gflops(n, mean),
                firsts.get((server, n)),
                _mean([s.compute_ms for s in group]),
                _mean([s.module_ms for s in group]),
            )
        )
    return rows


def compare(samples: Sequence[Sample], wasmkernel_rows: Sequence[str]) -> tuple[list[Comparison], list[Anova]]:
    """Welch t-tests (each WasmKernel row vs each other row) and one ANOVA per size."""
    groups = measured(samples)
    sizes = sorted({n for _, n in groups})
    comparisons: list[Comparison] = []
    anovas: list[Anova] = []
    for n in sizes:
        here = {server: [s.latency_ms for s in group] for (server, size), group in groups.items() if size == n and len(group) >= 2}
        for a in wasmkernel_rows:
            if a not in here:
                continue
            for b, values in sorted(here.items()):
                if b == a or b in wasmkernel_rows:
                    continue
                test = stats.ttest_ind(here[a], values, equal_var=False)
                mean_a, mean_b = float(np.mean(here[a])), float(np.mean(values))
                comparisons.append(Comparison(n, a, b, mean_a, mean_b, mean_b / mean_a, float(test.statistic), float(test.pvalue)))
        if len(here) >= 2:
            names = tuple(sorted(here))
            result = stats.f_oneway(*(here[name] for name in names))
            anovas.append(Anova(n, names, float(result.statistic), float(result.pvalue)))
    return comparisons, anovas
