"""Soak: mixed load against one real server for a bounded time.

    .venv/bin/python -m stress.soak --duration 600      # the 10-minute run
    .venv/bin/python -m stress.soak --duration 60       # a quick one

Mix: /hello, health probes, JSON with validation (422 expected), authenticated
WASM compute (JWT and API key; 401 expected without), the benchmark matmul,
a WASM HTTP handler, a WAGI command, and 404s. Zero unexpected answers are
allowed. RSS and open fds of every process of the server are sampled; the
RSS slope is a least-squares fit after the warm-up. Writes
stress/results/soak-routes.csv, soak-processes.csv and soak-summary.csv.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio

from stress.load import Recorder, Sampler, Scenario, generate, table, write_csv
from tests.reliability.harness import API_KEY, full_plugins, registry_toml, spawn, token, wasm_built

MATRIX = [[float(i + j) for j in range(8)] for i in range(8)]


def scenarios() -> list[Scenario]:
    bearer = {"Authorization": f"Bearer {token(ttl=24 * 3600)}"}
    mix = [
        Scenario("hello", "GET", "/hello", weight=4),
        Scenario("healthz", "GET", "/healthz"),
        Scenario("readyz", "GET", "/readyz"),
        Scenario("not-found", "GET", "/no/such/path", expect=frozenset({404})),
    ]
    if wasm_built():
        mix += [
            Scenario("api.matmul jwt", "POST", "/api/matmul", headers=bearer, json={"a": MATRIX, "b": MATRIX}, weight=3),
            Scenario("api.matmul apikey", "POST", "/api/matmul", headers={"X-API-Key": API_KEY}, json={"a": MATRIX, "b": MATRIX}),
            Scenario("api.matmul invalid", "POST", "/api/matmul", headers=bearer, json={"a": [["x"]], "b": 1}, expect=frozenset({422})),
            Scenario("api.matmul anonymous", "POST", "/api/matmul", json={"a": MATRIX, "b": MATRIX}, expect=frozenset({401})),
            Scenario("matmul n=60", "GET", "/matmul?n=60", weight=2),
            Scenario("wasm http handler", "GET", "/wasm/hello/soak", weight=2),
            Scenario("wagi command", "GET", "/wagi/soak?env=HOME"),
        ]
    return mix


async def soak(duration: float, concurrency: int, workers: int, warmup: float, workdir: Path) -> int:
    instance = spawn(registry_toml(full_plugins(workdir)), workdir, workers=workers)
    try:
        recorder = Recorder()
        print(f"soak: {duration:.0f} s, {concurrency} clients, {workers} hypercorn worker(s), server pid {instance.process.pid}", file=sys.stderr)
        await generate(instance.base, scenarios(), concurrency=concurrency, seconds=min(warmup, duration / 5), recorder=Recorder())
        sampler = Sampler(instance.process.pid, interval=max(1.0, duration / 120))
        before = sampler.take()
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run, duration)
            await generate(instance.base, scenarios(), concurrency=concurrency, seconds=duration, recorder=recorder)
        elapsed = time.monotonic() - started
        await trio.sleep(6.0)  # past hypercorn's 5 s keep-alive timeout
        after = sampler.take()
        crashes = [r for r in instance.log_lines() if r.get("level") in ("error", "critical")]
    finally:
        instance.stop()
    routes = recorder.rows()
    processes = sampler.slopes(after=0.0)
    summary = [
        {
            "duration_s": round(elapsed, 1),
            "concurrency": concurrency,
            "hypercorn_workers": workers,
            "requests": recorder.total,
            "rps": round(recorder.total / elapsed, 1),
            "unexpected": len(recorder.unexpected),
            "logged_errors": len(crashes),
            "processes_before": len(before),
            "processes_after": len(after),
            "fds_before": sum(s.fds for s in before),
            "fds_after": sum(s.fds for s in after),
            "max_rss_slope_mb_per_min": max((abs(r["slope_mb_per_min"]) for r in processes), default=0.0),
        }
    ]
    print(table(routes, "\nper route"))
    print(
        table(processes, f"\nprocesses (RSS sampled every {sampler.interval:.1f} s after a {min(warmup, duration / 5):.0f} s warm-up; slope = least squares)")
    )
    print(table(summary, "\nsummary"))
    for unexpected in recorder.unexpected[:10]:
        print("unexpected:", unexpected)
    for crash in crashes[:5]:
        print("logged error:", crash)
    write_csv("soak-routes", routes)
    write_csv("soak-processes", processes)
    write_csv("soak-summary", summary)
    leaked = summary[0]["processes_after"] != summary[0]["processes_before"]
    return 1 if recorder.unexpected or crashes or leaked else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of measured load (default 600)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--workers", type=int, default=1, help="hypercorn worker processes (default 1)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of unmeasured load first (at most duration/5)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be between 1 and 3600 seconds")
    with tempfile.TemporaryDirectory(prefix="wasmkernel-soak-") as workdir:
        return trio.run(soak, args.duration, args.concurrency, args.workers, args.warmup, Path(workdir))


if __name__ == "__main__":
    raise SystemExit(main())
