"""Overload: far more concurrent clients than one server can serve, then
recovery.

    .venv/bin/python -m stress.overload --duration 120 --clients 500
    .venv/bin/python -m stress.overload --duration 30               # quick

Phases: a baseline (4 clients, 5 s), the overload (`--clients` clients for
`--duration` s, every client its own connection, each sending as fast as it
is answered), then recovery (4 clients, 10 s). The server runs the limits
plugin with a rate limit (`--rate` req/s, `--burst`, keyed by subject or
client address — all clients here come from 127.0.0.1, so they share one
bucket) and a 5 s handling timeout. During overload the expected answers are
200 or 429 (shed) or 504 (timed out); recovery must be all 200 with a p99
close to the baseline's. Writes stress/results/overload.csv.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from stress.load import Recorder, Scenario, generate, table, write_csv
from tests.reliability.harness import full_plugins, registry_toml, spawn


def phase_rows(phase: str, recorder: Recorder, seconds: float) -> list[dict[str, Any]]:
    return [{"phase": phase, "rps": round(row["requests"] / seconds, 1), **row} for row in recorder.rows()]


async def overload(duration: float, clients: int, rate: float, burst: int, workdir: Path) -> int:
    limits = {"rate": rate, "burst": burst, "timeout_seconds": 5}
    instance = spawn(registry_toml(full_plugins(workdir, limits=limits)), workdir)
    try:
        normal = [Scenario("hello", "GET", "/hello", weight=3), Scenario("matmul n=60", "GET", "/matmul?n=60")]
        shed = frozenset({200, 429, 503, 504})
        flooded = [Scenario(s.name, s.method, s.path, expect=shed, weight=s.weight) for s in normal]
        rows = []
        # Baseline and recovery stay under the rate limit (paced clients).
        pace = 4 / (rate * 0.8) if rate else 0.0
        baseline = Recorder()
        await generate(instance.base, normal, concurrency=4, seconds=5, recorder=baseline, pause=pace)
        rows += phase_rows("baseline", baseline, 5)
        print(f"overload: {clients} clients for {duration:.0f} s against rate={rate}/s burst={burst}", file=sys.stderr)
        flood = Recorder()
        await generate(instance.base, flooded, concurrency=clients, seconds=duration, recorder=flood, timeout=15)
        rows += phase_rows("overload", flood, duration)
        await trio.sleep(max(1.0, burst / rate if rate else 1.0))  # let the bucket refill
        recovery = Recorder()
        await generate(instance.base, normal, concurrency=4, seconds=10, recorder=recovery, pause=pace)
        rows += phase_rows("recovery", recovery, 10)
        alive = instance.process.poll() is None
        crashes = [r for r in instance.log_lines() if r.get("level") in ("error", "critical")]
    finally:
        instance.stop()
    print(table(rows, "\noverload phases"))
    print(f"\nserver alive after overload: {alive}; errors logged: {len(crashes)}")
    write_csv("overload", rows)
    ok = alive and not recovery.unexpected and not baseline.unexpected and not flood.unexpected and not crashes
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.overload", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of overload (default 120)")
    parser.add_argument("--clients", type=int, default=500, help="concurrent clients during overload (default 500)")
    parser.add_argument("--rate", type=float, default=200.0, help="limits plugin rate, requests/s (default 200)")
    parser.add_argument("--burst", type=int, default=200, help="limits plugin burst (default 200)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 1800 or not 1 <= args.clients <= 5000:
        parser.error("--duration must be within 1..1800 s and --clients within 1..5000")
    with tempfile.TemporaryDirectory(prefix="wasmkernel-overload-") as workdir:
        return trio.run(overload, args.duration, args.clients, args.rate, args.burst, Path(workdir))


if __name__ == "__main__":
    raise SystemExit(main())
