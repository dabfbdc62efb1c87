"""Startup cost of the WebAssembly loader, in-process (wasmkernel.testing).

Measures, for the registry {router, <loader>} serving matmul, hello, faults and
wagi_echo:

- time to first response with an empty compile cache (cold) and with a cache
  hit (warm), workers pre-spawned;
- the first request's own latency with and without pre-spawned workers
  (`prewarm`), cache hit;
- the very first start in the process (cold imports and disk caches).

Usage: python benchmarks/wasm_startup.py [--loader wasmer-loader] [--repeat 5]
Prints a table and writes benchmarks/results/wasm_startup.csv.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from wasmkernel_wasm.testing import wasm_plugins

from wasmkernel.testing import app_from, running

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "wasm_modules" / "dist"
RESULTS = ROOT / "benchmarks" / "results" / "wasm_startup.csv"


def config(cache_dir: Path, prewarm: bool) -> dict[str, Any]:
    modules = [
        {"name": "matmul", "path": str(DIST / "matmul.wasm")},
        {"name": "hello", "path": str(DIST / "hello.wasm"), "kind": "http"},
        {"name": "faults", "path": str(DIST / "faults.wasm"), "kind": "http"},
        {"name": "wagi", "path": str(DIST / "wagi_echo.wasm"), "kind": "wasi"},
    ]
    routes = [{"path": "/hello/{name}", "module": "hello"}]
    return {"cache_dir": str(cache_dir), "workers": 2, "prewarm": prewarm, "watch": False, "modules": modules, "routes": routes}


async def measure(loader: str, cache_dir: Path, prewarm: bool) -> tuple[float, float, float]:
    """(startup ms, first request ms, time to first response ms)."""
    start = time.perf_counter()
    app = app_from({"router": {}, **wasm_plugins(loader, config(cache_dir, prewarm))})
    async with running(app) as client:
        started = time.perf_counter()
        response = await client.get("/hello/bench")
        done = time.perf_counter()
        assert response.status_code == 200, response.text
    return (started - start) * 1000, (done - started) * 1000, (done - start) * 1000


async def main(loader: str, repeat: int) -> None:
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        # The first start in a process also pays for cold imports and disk caches.
        rows["first in process: cold cache, prewarm"] = [await measure(loader, cache, True)]
        for _ in range(repeat):
            shutil.rmtree(cache, ignore_errors=True)
            rows.setdefault("cold cache, prewarm", []).append(await measure(loader, cache, True))
            rows.setdefault("cache hit, prewarm", []).append(await measure(loader, cache, True))
            rows.setdefault("cache hit, no prewarm", []).append(await measure(loader, cache, False))
            shutil.rmtree(cache, ignore_errors=True)
            rows.setdefault("cold cache, no prewarm", []).append(await measure(loader, cache, False))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    header = ["scenario", "startup_ms", "first_request_ms", "time_to_first_response_ms"]
    table = []
    for scenario, samples in rows.items():
        table.append([scenario, *(f"{statistics.median(column):.1f}" for column in zip(*samples))])
    with RESULTS.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["loader", *header, "repeat"])
        writer.writerows([[loader, *row, repeat] for row in table])
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    print(f"loader: {loader}, median of {repeat}")
    for row in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loader", default="wasmer-loader")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.loader, args.repeat)
