"""Cost of the host API and of filter modules, for each loader (and key-value backend).

    python benchmarks/hostapi.py [--calls 200] [--rounds 5] [--requests 300] [--loaders wasmer-loader wasmtime-loader]

1. Host-call cost: the `hostcalls` module's `bench_log(n)`, `bench_var(n)`
   and `bench_kv(n)` exports make n host calls inside one guest call (kv: n
   set + n get); µs per host call = time inside the module / calls, median
   of `rounds`. Key-value for each backend: memory, SQLite, Redis (a
   throw-away redis-server, if installed, through the redis plugin).
2. Key-value operations per second: the same calls, as ops per second of one
   sequential guest, and straight on the main process's `HostAPI` (no wasm).
3. Filter overhead over HTTP: one server (hypercorn, trio, loopback) serving
   the same handler on three routes — unfiltered, behind the header-rule
   filter (on_request + on_response) and behind the HMAC filter (body
   signed) — requested in interleaved rounds in the same run; median and p99
   latency, and the median's difference to the unfiltered route.

Prints the tables and writes CSV files under benchmarks/results/<date>-hostapi/.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import hmac
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wasmkernel_wasm import MODULE_LOADER, ModuleLoader  # noqa: E402
from wasmkernel_wasm.testing import wasm_plugins  # noqa: E402

from wasmkernel import Application  # noqa: E402
from wasmkernel.testing import RedisServer, app_from, free_port, redis_binary, running  # noqa: E402

DIST = ROOT / "wasm_modules" / "dist"
KEY = "bench-key"


def module_config(cache: Path, backend: str, data: Path) -> dict[str, Any]:
    kv: dict[str, Any] = {"backend": backend, "max_total_bytes": 1 << 30}
    if backend == "sqlite":
        kv["path"] = str(data / f"kv-{time.monotonic_ns()}.sqlite3")
    return {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [{"name": "hc", "path": str(DIST / "hostcalls.wasm"), "log": True, "vars": {"greeting": "hi"}, "kv": kv}],
    }


def app_for(loader: str, config: dict[str, Any], redis_url: str | None) -> Application:
    plugins: dict[str, Any] = {"router": {}, **wasm_plugins(loader, config)}
    if redis_url:
        plugins = {"redis": {"config": {"url": redis_url}}, **plugins}
    return app_from(plugins)


async def per_call_us(loader: ModuleLoader, function: str, calls: int, rounds: int, per: int) -> float:
    """µs per host call of `function(calls)` (it makes `per` host calls per iteration)."""
    await loader.call("hc", function, 1)  # warm the instance cache and connection
    samples = []
    for _ in range(rounds):
        result = await loader.call("hc", function, calls)
        samples.append(result.duration_ms * 1000 / (calls * per))
    return statistics.median(samples)


async def direct_ops(app: Application, loader: ModuleLoader, ops: int) -> float:
    """kv set+get pairs per second on the main process's HostAPI (no wasm), in the event loop."""
    host = loader.host  # type: ignore[attr-defined]
    start = time.perf_counter()
    for index in range(ops // 2):
        await host.acall("hc", "set", [b"direct", str(index).encode()])
        await host.acall("hc", "get", [b"direct"])
    return ops / (time.perf_counter() - start)


async def host_calls(loader_name: str, args: argparse.Namespace, redis_url: str | None, work: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    backends = ["memory", "sqlite"] + (["redis"] if redis_url else [])
    for backend in backends:
        app = app_for(loader_name, module_config(work / "cache", backend, work), redis_url if backend == "redis" else None)
        async with running(app):
            loader = app.services.get(MODULE_LOADER, needed_by="bench")
            if backend == "memory":
                for op, function in (("log", "bench_log"), ("vars", "bench_var")):
                    us = await per_call_us(loader, function, args.calls, args.rounds, 1)
                    rows.append({"loader": loader_name, "operation": op, "backend": "-", "us_per_call": round(us, 2), "ops_per_s": round(1e6 / us)})
            us = await per_call_us(loader, "bench_kv", args.calls, args.rounds, 2)
            rows.append({"loader": loader_name, "operation": "kv set/get", "backend": backend, "us_per_call": round(us, 2), "ops_per_s": round(1e6 / us)})
            if loader_name == args.loaders[0]:
                direct = await direct_ops(app, loader, args.calls * 2)
                row = {"loader": "none (HostAPI)", "operation": "kv set/get", "backend": backend}
                rows.append({**row, "us_per_call": round(1e6 / direct, 2), "ops_per_s": round(direct)})
    return rows


def filter_config(cache: Path) -> dict[str, Any]:
    hc = str(DIST / "hostcalls.wasm")
    return {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [
            {"name": "hc", "path": hc, "kind": "http"},
            {"name": "rule", "path": str(DIST / "header_rule.wasm"), "kind": "filter", "vars": {"deny": "badbot", "strip_response": "x-none"}},
            {"name": "sign", "path": str(DIST / "hmac_filter.wasm"), "kind": "filter", "vars": {"key": KEY}},
        ],
        "routes": [
            {"path": "/plain/{op}", "module": "hc", "methods": ["POST"]},
            {"path": "/ruled/{op}", "module": "hc", "methods": ["POST"]},
            {"path": "/signed/{op}", "module": "hc", "methods": ["POST"]},
        ],
        "filters": [{"module": "rule", "prefixes": ["/ruled"]}, {"module": "sign", "prefixes": ["/signed"], "body": True}],
    }


async def filter_overhead(loader_name: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    app = app_from({"router": {}, **wasm_plugins(loader_name, filter_config(work / "cache"))})
    config = HypercornConfig()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    body = b'{"url": "https://example.com/some/where"}'
    headers = {"x-signature": hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()}
    latencies: dict[str, list[float]] = {"plain": [], "ruled": [], "signed": []}
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        nursery.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    await client.get("/")
                    break
                except httpx.TransportError:
                    await trio.sleep(0.05)
            for route in latencies:  # warm every route
                for _ in range(20):
                    await client.post(f"/{route}/headers", content=body, headers=headers)
            for _ in range(args.requests // 10):
                for route, samples in latencies.items():
                    for _ in range(10):
                        start = time.perf_counter()
                        response = await client.post(f"/{route}/headers", content=body, headers=headers)
                        samples.append((time.perf_counter() - start) * 1000)
                        assert response.status_code == 200, (route, response.status_code, response.text)
        stop.set()
    base = statistics.median(latencies["plain"])
    rows = []
    for route, samples in latencies.items():
        ordered = sorted(samples)
        median = statistics.median(ordered)
        rows.append(
            {
                "loader": loader_name,
                "route": {"plain": "no filter", "ruled": "header_rule (on_request + on_response)", "signed": "hmac_filter (body signed)"}[route],
                "requests": len(samples),
                "median_ms": round(median, 3),
                "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 3),
                "overhead_ms": round(median - base, 3),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    widths = [max(len(str(key)), *(len(str(row[key])) for row in rows)) for key in keys]
    lines = ["  ".join(str(key).ljust(width) for key, width in zip(keys, widths, strict=True))]
    lines += ["  ".join(str(row[key]).ljust(width) for key, width in zip(keys, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


async def main(args: argparse.Namespace) -> None:
    # Log lines are still made (and `log` host calls still recorded) but not rendered: the figures are the host's cost.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    out = ROOT / "benchmarks" / "results" / f"{datetime.date.today().isoformat()}-hostapi"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-hostapi-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work / "redis") if redis_binary() is not None else None
        if redis is not None:
            redis.start()
        try:
            calls: list[dict[str, Any]] = []
            filters: list[dict[str, Any]] = []
            for loader in args.loaders:
                calls += await host_calls(loader, args, redis.url if redis is not None else None, work)
                filters += await filter_overhead(loader, args, work)
        finally:
            if redis is not None:
                redis.stop()
    print(f"host calls ({args.calls} per guest call, median of {args.rounds}; kv = one set or get):")
    print(table(calls))
    print(f"\nfilter overhead over HTTP (hypercorn trio, loopback, sequential, {args.requests} requests per route):")
    print(table(filters))
    write(out / "host_calls.csv", calls)
    write(out / "filters.csv", filters)
    print(f"\nwrote {out}/host_calls.csv and filters.csv")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="host calls per guest call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per filter route")
    parser.add_argument("--loaders", nargs="+", default=["wasmer-loader", "wasmtime-loader"])
    trio.run(main, parser.parse_args())
