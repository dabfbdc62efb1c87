"""Per-request overhead of the kernel, in-process (no sockets, no server):
the same `GET /hello` answered by a bare ASGI app, by the kernel with only the
router, and by the kernel with a registry's whole middleware chain.

    python benchmarks/kernel_overhead.py [--requests 20000] [--registry plugin_registry.toml] [--clock process]

Prints µs per request (median of 5 rounds) and writes
benchmarks/results/kernel_overhead.csv. Each request runs the full ASGI cycle:
scope → app → http.response.start/body sent to a no-op `send`. ``--clock
process`` counts this process's CPU time instead of wall time: the figure to
compare on a machine other jobs share.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wasmkernel import Application, Route, hookimpl  # noqa: E402
from wasmkernel.registry import load_registry, parse_registry  # noqa: E402

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


async def bare_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class HelloRoute:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def hello(request: Any) -> str:
            return "Hello, world!"

        return [Route("/bench-hello", hello)]


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/bench-hello",
        "raw_path": b"/bench-hello",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


CLOCK = time.perf_counter


async def drive(app: ASGIApp, requests: int) -> float:
    """Seconds per request over `requests` sequential requests."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = CLOCK()
    for _ in range(requests):
        await app(scope(), receive, send)
    elapsed = CLOCK() - start
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed / requests


async def measure(apps: dict[str, ASGIApp], requests: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():
        await drive(app, requests // 10)  # warm-up
    for _ in range(rounds):  # interleave apps so machine noise hits all alike
        for name, app in apps.items():
            results[name].append(await drive(app, requests))
    return results


def default_chain_app(registry: str, without: frozenset[str] = frozenset()) -> Application:
    """The registry's application with `HelloRoute`, quiet logs and a rate
    limiter that never refuses; the plugins named in `without` disabled."""
    os.environ.setdefault("WASMKERNEL_JWT_SECRET", "benchmark-only-secret-0123456789abcdefghijklmnop")
    default = load_registry(registry)
    tables: dict[str, dict[str, Any]] = {
        e.name: {"enabled": e.enabled, "config": dict(e.config), "order": e.order, "before": list(e.before), "after": list(e.after)} for e in default.plugins
    }
    tables["bench"] = {}
    for name in without & tables.keys():
        tables[name]["enabled"] = False
    # Quiet logs: measure the chain, not the terminal.
    if "logging" in tables:
        tables["logging"]["config"]["level"] = "error"
    if "limits" in tables:  # keep the rate limiter in the chain, never empty its bucket
        tables["limits"]["config"].update(rate=1e9, burst=10**9)
        if without:  # its per-route settings may name a disabled plugin's routes
            tables["limits"]["config"]["allow_unknown_routes"] = True
    if "access-log" in tables:
        tables["access-log"]["config"]["level"] = "debug"
    return Application.assemble(parse_registry({"plugins": tables}, default.path), extra_plugins={"bench": HelloRoute()})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--registry", default=str(ROOT / "plugin_registry.toml"))
    parser.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "kernel_overhead.csv"))
    parser.add_argument("--clock", choices=["wall", "process"], default="wall", help="wall time (default) or this process's CPU time")
    args = parser.parse_args()
    global CLOCK  # noqa: PLW0603
    CLOCK = time.process_time if args.clock == "process" else time.perf_counter

    bare_kernel = Application.assemble(parse_registry({"plugins": {"router": {}, "bench": {}}}, Path("bare.toml")), extra_plugins={"bench": HelloRoute()})
    full = default_chain_app(args.registry)
    apps: dict[str, ASGIApp] = {"bare ASGI app": bare_app, "kernel + router": bare_kernel, "kernel + default chain": full}
    async with trio.open_nursery() as nursery:
        for app in (bare_kernel, full):
            await app.startup(nursery)
        results = await measure(apps, args.requests, args.rounds)
        for app in (bare_kernel, full):
            await app.shutdown()
        nursery.cancel_scope.cancel()

    base = statistics.median(results["bare ASGI app"])
    chain = " -> ".join(m.name for m in full.middleware)
    print(f"{args.requests} sequential in-process requests x {args.rounds} rounds, {args.clock} clock, Python {sys.version.split()[0]}")
    print(f"default chain: {chain}")
    print(f"{'app':<26}{'µs/request (median)':>22}{'overhead vs bare (µs)':>24}")
    rows = []
    for name, samples in results.items():
        median = statistics.median(samples)
        rows.append({"app": name, "us_per_request": round(median * 1e6, 2), "overhead_us": round((median - base) * 1e6, 2)})
        print(f"{name:<26}{median * 1e6:>22.2f}{(median - base) * 1e6:>24.2f}")
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["app", "us_per_request", "overhead_us"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    trio.run(main)
