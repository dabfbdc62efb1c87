"""The physical-limit rows: native Rust (``benchmarks/native``) and numpy/OpenBLAS.

Same matrices as every server, no HTTP: how far each server's compute is
from compiled code and from a tuned BLAS on this machine, in the same run.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Sequence

import attrs
import numpy as np

from benchmarks.checksum import expected
from benchmarks.servers import ROOT, ProcessSpec, SetupFailed, run_setup

NATIVE_DIR = ROOT / "benchmarks" / "native"
NATIVE_SPEC = ProcessSpec("rust-native", "Rust", "no HTTP", NATIVE_DIR, "", setup="cargo build --release --quiet", requires=("cargo",))


@attrs.frozen
class Reference:
    """One kernel at one size, outside any server. `gflops` uses the best time:
    these rows are the machine's limit, and the best run is the least disturbed."""

    name: str  # rust-native-naive, rust-native-fast, numpy
    n: int
    reps: int
    median_ms: float
    best_ms: float
    gflops: float


def _reference(name: str, n: int, times_ms: Sequence[float]) -> Reference:
    best = min(times_ms)
    return Reference(name, n, len(times_ms), float(np.median(times_ms)), best, 2.0 * n**3 / best / 1e6)


def rust(sizes: Sequence[int], reps: int) -> list[Reference]:
    """Build and run ``matmul-native`` (both kernels); `SetupFailed` if it cannot."""
    run_setup(NATIVE_SPEC)
    results = []
    for n in sizes:
        count = reps if n < 2000 else min(reps, 3)
        done = subprocess.run(
            [str(NATIVE_DIR / "target" / "release" / "matmul-native"), "--kernel", "all", "--reps", str(count), str(n)],
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise SetupFailed(f"matmul-native exited with {done.returncode}: {done.stderr.strip()[-200:]}")
        times: dict[str, list[float]] = {}
        for line in csv.DictReader(io.StringIO(done.stdout)):
            if float(line["checksum"]) != expected(n):
                raise SetupFailed(f"matmul-native checksum {line['checksum']} != {expected(n)} for n={n}")
            times.setdefault(line["kernel"], []).append(float(line["ms"]))
        results += [_reference(f"rust-native-{kernel}", n, values) for kernel, values in sorted(times.items())]
    return results


def _numpy_times(n: int, reps: int) -> list[float]:
    idx = np.arange(n * n, dtype=np.int64).reshape(n, n)
    a, b = (idx % 7) * 0.5, (idx % 5) * 0.25
    for _warm in range(3):  # BLAS thread start-up and first-touch page faults
        c = a @ b
    if float(c.sum()) != expected(n):
        raise SystemExit(f"numpy checksum {float(c.sum())} != {expected(n)} for n={n}")
    times = []
    for _rep in range(reps):
        t0 = time.perf_counter()
        c = a @ b
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def numpy_blas(sizes: Sequence[int], reps: int) -> list[Reference]:
    """``A @ B`` with numpy's BLAS (its default thread count) on the benchmark
    matrices, in a fresh interpreter (like the Rust binary: nothing else in the process)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.native", str(max(reps, 5)), *map(str, sizes)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SetupFailed(f"numpy reference failed: {done.stderr.strip()[-300:]}")
    return [_reference("numpy", int(n), times) for n, times in json.loads(done.stdout).items()]


if __name__ == "__main__":
    count, *ns = map(int, sys.argv[1:])
    print(json.dumps({n: _numpy_times(n, count) for n in ns}))
