"""``python -m benchmarks``: run the benchmark and write the report.

Sections: /matmul cells for every selected server row (WasmKernel through its
real plugin stack, and the peers), native references, initialization
overhead, /hello request overhead; then statistics, CSVs, charts and
REPORT.md in the output folder.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import attrs
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import load as load_test
from benchmarks import machine, memory, native, quiet, same_server, startup, startup_phases, stats
from benchmarks.client import CellRun, ChecksumMismatch
from benchmarks.registries import check, materialize
from benchmarks.report import Results, readme_section, splice_readme, write_all
from benchmarks.servers import (
    ROOT,
    ProcessSpec,
    RunningServer,
    ServerRow,
    SetupFailed,
    Unavailable,
    peer_rows,
    run_setup,
    start,
    wasmkernel_rows,
    wasmkernel_spec,
)

DEFAULT_SIZES = (100, 200, 500, 1000, 2000)
SMOKE_SIZES = (50, 100)
#: Times a /matmul size the machine disturbed is measured again before the run is marked disturbed.
REMEASURE = 2
MATMUL_WASM = ROOT / "wasm_modules" / "dist" / "matmul.wasm"
JWT_ENV = same_server.SECRET_ENV

console = Console(stderr=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help=f"comma-separated sizes (default {','.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--full", action="store_true", help="add n=5000")
    parser.add_argument("--reps", type=int, default=30, help="measured repetitions per cell (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up requests per cell; the first is reported as the first request (default 2)")
    parser.add_argument("--servers", help="comma-separated rows (default: every row); e.g. wasmkernel-naive,wasmkernel-fast,fastapi-naive,gin")
    parser.add_argument("--cell-budget", type=float, default=120.0, help="seconds per (row, size) cell; stops there and records the reps made (default 120)")
    parser.add_argument(
        "--request-budget", type=float, default=None, help="seconds one request may take before it is recorded as timed out (default: the cell budget)"
    )
    parser.add_argument("--smoke", action="store_true", help="n=50,100, 3 reps, 1 warm-up, no load or native section, no init section unless --init-trials")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<timestamp>)")
    parser.add_argument("--skip-load", action="store_true", help="skip the /hello load test")
    parser.add_argument("--skip-init", action="store_true", help="skip the initialization-overhead section")
    parser.add_argument("--skip-native", action="store_true", help="skip the native Rust and numpy references")
    parser.add_argument("--load-duration", type=float, default=10.0, help="seconds of wrk per server and round (default 10)")
    parser.add_argument("--load-rounds", type=int, default=3, help="interleaved wrk rounds: every server once per round, order rotated (default 3)")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait for a quiet machine before starting (default 300; --smoke: 0)")
    parser.add_argument("--probe", type=float, default=10.0, help="seconds the machine is watched before the run (default 10; --smoke: 1)")
    parser.add_argument(
        "--init-trials", type=int, default=None, help="starts per initialization and cold-start scenario (default 5; --smoke runs the section only when given)"
    )
    parser.add_argument("--readme", action="store_true", help="rewrite the README's benchmark figures (between its markers) from this run")
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.warmup = min(args.reps, 3), min(args.warmup, 1)
        args.skip_load = args.skip_native = True
        args.skip_init = args.skip_init or args.init_trials is None
        args.settle, args.probe = 0.0, min(args.probe, 1.0)
    args.init_trials = 5 if args.init_trials is None else args.init_trials
    if args.sizes:
        args.sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    else:
        args.sizes = list(SMOKE_SIZES if args.smoke else DEFAULT_SIZES)
    if args.full and 5000 not in args.sizes:
        args.sizes.append(5000)
    if any(not 1 <= n <= 5000 for n in args.sizes):
        parser.error("sizes must be in 1..5000")
    if args.reps < 1 or args.warmup < 0:
        parser.error("--reps must be ≥ 1 and --warmup ≥ 0")
    args.request_budget = args.request_budget or args.cell_budget
    args.out = args.out or ROOT / "benchmarks" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")
    return args


class Run:
    """One benchmark run: its options, output folder, results and registries."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.logs = self.out / "logs"
        self.out.mkdir(parents=True, exist_ok=True)
        self.env = {JWT_ENV: os.environ.get(JWT_ENV) or secrets.token_urlsafe(48)}
        self.results = Results(sizes=list(args.sizes), reps=args.reps, warmup=args.warmup, machine=machine.facts())
        # Absolute: the registries written under out/registries/ resolve relative paths from there.
        self.cache = (self.out / "cache").resolve()
        self.broken: dict[str, dict[str, str]] = {}
        self.failed_processes: set[str] = set()
        self.measured_memory: set[str] = set()  # servers whose memory the /matmul cells recorded
        self.monitor = quiet.Monitor()

    # -- WasmKernel ------------------------------------------------------------

    def wasm_ready(self) -> str | None:
        """None when matmul.wasm exists (building it if needed), else why not."""
        if MATMUL_WASM.exists():
            return None
        done = subprocess.run(["bash", str(ROOT / "wasm_modules" / "build.sh"), "matmul"], check=False, capture_output=True, text=True)
        if done.returncode != 0 or not MATMUL_WASM.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"wasm_modules/build.sh failed: {tail[0]}"
        return None

    def wasmkernel(
        self,
        template: str,
        cache: Path,
        prewarm: bool = True,
        name: str = "",
        workers: int = 0,
        loader_workers: int | None = None,
        log_level: str | None = None,
    ) -> ProcessSpec:
        """The `wasmkernel run` process for a registry template; plugins that are
        not installed or fail to load are left out and reported (never hidden)."""
        name = name or f"wasmkernel-{template}"
        registry = self.registry_path(name)
        broken = self.broken.setdefault(template, {})
        while True:
            dropped = materialize(template, registry, cache, prewarm=prewarm, exclude=broken, loader_workers=loader_workers, log_level=log_level)
            failure = check(registry, self.env)
            if failure is None or not failure[0] or failure[0] in broken:
                break
            broken[failure[0]] = failure[1]
        notes = [f"registry {template}.toml: plugins not installed, left out: {', '.join(dropped)}"] if dropped else []
        notes += [f"registry {template}.toml: left out '{plugin}', it fails: {why}" for plugin, why in broken.items()]
        if failure is not None:
            notes.append(f"registry {template}.toml does not assemble: {failure[1]}")
        self.results.notes += [note for note in notes if note not in self.results.notes]
        return wasmkernel_spec(registry, self.env, name, workers=workers)

    def registry_path(self, name: str) -> Path:
        """Where the registry of the WasmKernel process `name` is written."""
        return self.out / "registries" / f"{re.sub(r'[^A-Za-z0-9.-]+', '-', name).strip('-')}.toml"

    # -- /matmul cells --------------------------------------------------------------

    def rows(self) -> list[ServerRow]:
        rows: list[ServerRow] = []
        reason = self.wasm_ready()
        spec = self.wasmkernel("full", self.cache, name="wasmkernel")
        for row in wasmkernel_rows(spec):
            if reason:
                self.results.failed[row.name] = reason
            else:
                rows.append(row)
        rows += peer_rows()
        known = {row.name for row in rows} | set(self.results.skipped)
        if self.args.servers:
            wanted = [s.strip() for s in self.args.servers.split(",") if s.strip()]
            unknown = [s for s in wanted if s not in known]
            if unknown:
                raise SystemExit(f"unknown server rows: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
            rows = [row for row in rows if row.name in wanted]
        self.results.naive_peers = [row.name for row in peer_rows() if row.naive]
        return rows

    def matmul(self, rows: list[ServerRow]) -> None:
        """Every server is started first; then, size by size, the cells take
        turns a request at a time (rotating who goes first), so a disturbance
        lands on every server alike instead of on one server's pass."""
        by_process: dict[str, list[ServerRow]] = {}
        for row in rows:
            by_process.setdefault(row.process.name, []).append(row)
        total = (self.args.warmup + self.args.reps) * len(rows) * len(self.args.sizes)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        servers: dict[str, RunningServer] = {}
        try:
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("/matmul", total=total)
                for name, group in by_process.items():
                    spec = group[0].process
                    try:
                        progress.update(task, description=f"setting up {spec.name}")
                        run_setup(spec)
                        servers[name] = start(spec, self.logs)
                    except SetupFailed as exc:
                        self.failed_processes.add(spec.name)
                        self.setup_failed([row.name for row in group], exc)
                        progress.advance(task, (self.args.warmup + self.args.reps) * len(group) * len(self.args.sizes))
                        continue
                    servers[name].wait_ready()  # idle = started and warmed up
                    self.results.memory += memory.snapshot(servers[name], "idle")
                    self.measured_memory.add(spec.name)
                live = [row for row in rows if row.process.name in servers]
                last: dict[str, tuple[int, float]] = {}
                with httpx.Client() as client:
                    for n in self.args.sizes:
                        self.quiet_size(n, live, servers, last, client, lambda: progress.advance(task))
                for server in servers.values():
                    self.results.memory += memory.snapshot(server, "after")
        finally:
            for server in servers.values():
                server.stop()

    def quiet_size(
        self,
        n: int,
        rows: list[ServerRow],
        servers: dict[str, RunningServer],
        last: dict[str, tuple[int, float]],
        client: httpx.Client,
        advance: Callable[[], None],
    ) -> None:
        """`size`, measured again (at most `REMEASURE` times) while the machine
        disturbed it: a short section that a burst of hypervisor steal hit
        does not make the whole run unpublishable; what was thrown away stays
        in ``machine_load.csv``, marked discarded."""
        for attempt in range(REMEASURE + 1):
            kept = (len(self.results.samples), len(self.results.cells), dict(last), dict(self.results.skipped))
            with self.monitor.section(f"/matmul n={n}" + (f" (again, {attempt + 1})" if attempt else "")):
                self.size(n, rows, servers, last, client, advance)
            section = self.monitor.intervals[-1]
            if section.quiet or attempt == REMEASURE:
                return
            console.print(f"[yellow]/matmul n={n} was disturbed ({section.why}): measuring it again")
            self.monitor.discard_last()
            del self.results.samples[kept[0] :], self.results.cells[kept[1] :]
            last.clear()
            last.update(kept[2])
            self.results.skipped = kept[3]

    def size(
        self,
        n: int,
        rows: list[ServerRow],
        servers: dict[str, RunningServer],
        last: dict[str, tuple[int, float]],
        client: httpx.Client,
        advance: Callable[[], None],
    ) -> None:
        """The cells of size `n`, interleaved; a server whose request timed out,
        failed or died is restarted (its other rows go on with the new one)."""
        args = self.args
        cells = []
        for row in rows:
            if row.name in last:
                prev_n, prev_ms = last[row.name]
                predicted = prev_ms * (n / prev_n) ** 3 / 1000.0
                if predicted > args.request_budget:
                    self.results.skipped[f"{row.name} n={n}"] = f"predicted {predicted:.0f} s per request > request budget {args.request_budget:.0f} s"
                    for _ in range(args.warmup + args.reps):
                        advance()
                    continue
            if row.process.name in servers:
                cells.append(CellRun(row, n, args.reps, args.warmup, args.cell_budget, args.request_budget))
        turn = 0
        while pending := [cell for cell in cells if not cell.done]:
            for cell in pending[turn % len(pending) :] + pending[: turn % len(pending)]:
                name = cell.row.process.name
                if cell.done or name not in servers:
                    continue
                cell.step(client, servers[name])
                advance()
                if cell.stopped in ("timeout", "error") or not servers[name].alive():
                    # The server may still be busy with the abandoned request: restart it.
                    servers[name].stop()
                    try:
                        servers[name] = start(servers[name].spec, self.logs)
                    except SetupFailed as exc:
                        del servers[name]
                        self.setup_failed([f"{row.name} (from n={n})" for row in rows if row.process.name == name], SetupFailed(f"restart failed: {exc}"))
            turn += 1
        for cell in cells:
            self.results.samples += cell.samples
            self.results.cells.append(cell.cell())
            for _ in range(args.warmup + args.reps - len(cell.samples)):
                advance()
            ok = [s.latency_ms for s in cell.samples if s.status == "ok"]
            if ok:
                last[cell.row.name] = (n, min(ok))
            if cell.stopped:
                console.print(f"[yellow]{cell.row.name} n={n}: stopped ({cell.stopped}) after {len(cell.samples)} requests")
            if cell.stopped in ("timeout", "error"):
                last[cell.row.name] = (n, args.request_budget * 1000.0 * 2)

    def setup_failed(self, names: list[str], exc: SetupFailed) -> None:
        """Record a server that cannot run: *unavailable* on this machine (the run
        goes on) or *failed* (the run goes on, then exits non-zero)."""
        target = self.results.unavailable if isinstance(exc, Unavailable) else self.results.failed
        for name in names:
            target[name] = str(exc)
        if isinstance(exc, Unavailable):
            console.print(f"[yellow]{', '.join(names)}: not available on this machine: {exc}")
        else:
            console.print(f"[red bold]FAILED {', '.join(names)}: {exc}")

    # -- other sections ---------------------------------------------------------------

    def references(self) -> None:
        reps = min(self.args.reps, 5)
        try:
            self.results.references += native.rust(self.args.sizes, reps)
        except SetupFailed as exc:
            self.setup_failed(["rust-native"], exc)
        except (OSError, subprocess.SubprocessError) as exc:
            self.setup_failed(["rust-native"], SetupFailed(str(exc)))
        try:
            self.results.references += native.numpy_blas(self.args.sizes, reps)
        except SetupFailed as exc:
            self.setup_failed(["numpy"], exc)

    def init_overhead(self, rows: list[ServerRow]) -> None:
        """WasmKernel's start scenarios (compile cache cold and warm, with and
        without prewarmed workers), where its start-up time goes (phases and
        import time), then exec → first 200 for every other server."""

        def make(cache: Path, prewarm: bool) -> ProcessSpec:
            return self.wasmkernel("full", cache, prewarm, name=f"wasmkernel-init-{'prewarm' if prewarm else 'lazy'}")

        if self.wasm_ready() is not None:
            self.results.failed["initialization overhead"] = "matmul.wasm cannot be built"
            return
        trials = self.args.init_trials
        try:
            self.results.startup = startup.measure(make, self.logs, trials, 100, max(5, min(self.args.reps, 30)))
        except (SetupFailed, httpx.HTTPError, ValueError) as exc:
            self.results.failed["initialization overhead"] = f"{type(exc).__name__}: {exc}"
        self.wasmkernel("full", self.cache, name="wasmkernel-phases-warm", log_level="info")  # the loader's warm-up line is at info
        warm = self.registry_path("wasmkernel-phases-warm")
        try:
            startup_phases.phases(str(warm), self.env)  # fills the compile cache if the /matmul rows did not
            for trial in range(trials):
                self.results.phases.append(startup_phases.Phases.of("warm-cache", trial, startup_phases.phases(str(warm), self.env)))
                with tempfile.TemporaryDirectory(prefix="wk-phases-") as fresh:
                    self.wasmkernel("full", Path(fresh), name="wasmkernel-phases-cold", log_level="info")
                    cold = str(self.registry_path("wasmkernel-phases-cold"))
                    self.results.phases.append(startup_phases.Phases.of("cold-cache", trial, startup_phases.phases(cold, self.env)))
            imports = startup_phases.importtime(str(warm), self.env)
            self.results.imports = [startup_phases.ImportTime(package, seconds) for package, seconds in imports.items()]
        except (SystemExit, OSError, subprocess.SubprocessError, ValueError) as exc:
            self.results.failed["start-up phases"] = f"{type(exc).__name__}: {exc}"
        peers = list({row.process.name: row.process for row in rows if not row.is_wasmkernel}.values())
        plan = [(spec, True) for spec in peers if spec.name not in self.failed_processes]
        plan += [(self.wasmkernel("bare", self.cache), False), *[(spec, False) for spec in same_server.specs(self.env)]]
        ready = []
        for spec, has_matmul in plan:
            try:
                run_setup(spec)
                ready.append((spec, has_matmul))
            except SetupFailed as exc:
                self.setup_failed([f"cold start: {spec.name}"], exc)
        console.print(f"cold start: {', '.join(spec.name for spec, _ in ready)}")
        try:
            self.results.startup += startup.peers(ready, self.logs, trials)
        except SetupFailed as exc:
            self.setup_failed(["cold start (peers)"], exc)
        except (httpx.HTTPError, ValueError) as exc:
            self.setup_failed(["cold start (peers)"], SetupFailed(f"{type(exc).__name__}: {exc}"))

    def load(self, rows: list[ServerRow]) -> None:
        """wrk runs: /hello for every server and the authenticated JSON POST for the
        same-server stacks (server and wrk on separate cores), WasmKernel's
        hypercorn-worker and WebAssembly-pool scaling."""
        reason = load_test.wrk_available()
        if reason:
            self.results.unavailable["load test"] = reason
            return
        pinned = f"server cpu {load_test.SERVER_CPUS}, wrk cpu {load_test.WRK_CPUS}"
        shared = "none: server and wrk share both cores"
        script = load_test.post_script(self.out / "post.lua", same_server.POST_BODY, {"Authorization": f"Bearer {same_server.token(self.env)}"})
        hello = LoadRun("hello", "/hello")
        post = LoadRun("post", same_server.POST_PATH, script=script)
        full = self.wasmkernel("full", self.cache)
        frameworks = same_server.specs(self.env)
        peers = list({row.process.name: row.process for row in rows if not row.is_wasmkernel}.values())
        plan: list[tuple[ProcessSpec, str | None, list[LoadRun]]] = [
            (self.wasmkernel("bare", self.cache), load_test.SERVER_CPUS, [hello]),
            (full, load_test.SERVER_CPUS, [hello, post]),
            *[(spec, load_test.SERVER_CPUS, [hello, post]) for spec in frameworks],
            *[(spec, load_test.SERVER_CPUS, [hello]) for spec in peers],
        ]
        for workers in (1, 2):
            spec = self.wasmkernel("full", self.cache, name=f"wasmkernel-full --workers {workers}", workers=workers)
            plan.append((spec, load_test.SERVER_CPUS, [LoadRun("workers", "/hello")]))
            plan.append((attrs.evolve(spec, name=f"{spec.name} (unpinned)"), None, [LoadRun("workers", "/hello", wrk_cpus=None, threads=2)]))
        for pool in (1, 2):
            spec = self.wasmkernel("full", self.cache, name=f"wasmkernel-full, {pool} wasm worker(s)", loader_workers=pool)
            plan.append((spec, None, [LoadRun("pool", "/matmul?n=500&kernel=naive", wrk_cpus=None, connections=4)]))
        for round_ in range(self.args.load_rounds):
            turn = round_ % len(plan)
            with self.monitor.section(f"wrk round {round_ + 1}"):
                for spec, cpus, runs in plan[turn:] + plan[:turn]:
                    self.load_one(spec, cpus, runs, round_, pinned, shared)

    def load_one(self, spec: ProcessSpec, cpus: str | None, runs: list[LoadRun], round_: int, pinned: str, shared: str) -> None:
        """Start `spec`, run its wrk runs, stop it (memory is recorded in its first round)."""
        if spec.name in self.failed_processes:
            return  # already reported as failed or unavailable
        try:
            run_setup(spec)
            with start(spec, self.logs, cpus=cpus) as server:
                server.wait_ready()  # measured warmed up, as a load balancer would send traffic
                if spec.name not in self.measured_memory:
                    self.results.memory += memory.snapshot(server, "idle")
                for run in runs:
                    console.print(f"wrk {run.scenario} {run.path} (round {round_ + 1}): {spec.name}")
                    pinning = pinned if cpus is not None and run.wrk_cpus is not None else shared
                    self.results.load.append(
                        load_test.run_wrk(
                            run.scenario,
                            spec.name,
                            server.base_url + run.path,
                            self.args.load_duration,
                            threads=run.threads,
                            connections=run.connections,
                            script=run.script,
                            cpus=run.wrk_cpus,
                            pinning=pinning,
                            round=round_,
                        )
                    )
                if spec.name not in self.measured_memory:
                    self.results.memory += memory.snapshot(server, "after")
                    self.measured_memory.add(spec.name)
        except SetupFailed as exc:
            self.failed_processes.add(spec.name)
            self.setup_failed([f"load: {spec.name}"], exc)
        except (RuntimeError, ValueError) as exc:
            self.failed_processes.add(spec.name)
            self.setup_failed([f"load: {spec.name}"], SetupFailed(str(exc)))


@attrs.frozen
class LoadRun:
    """One wrk run against a started server."""

    scenario: str
    path: str
    script: Path | None = None
    wrk_cpus: str | None = load_test.WRK_CPUS
    threads: int = 1
    connections: int = 64


def compile_bytecode() -> None:
    """Compile the kernel's and the plugins' sources to bytecode, as installing
    their wheels would: they are installed editable here, and an environment
    with PYTHONDONTWRITEBYTECODE would recompile every module at every start."""
    for folder in (ROOT / "kernel", ROOT / "plugins"):
        compileall.compile_dir(str(folder), quiet=1, rx=re.compile(r"[/\\](tests|build)[/\\]"))


def publish(results: Results, out: Path, command: str, readme: Path) -> bool:
    """Rewrite `readme`'s benchmark figures from this run — only if the machine
    was quiet throughout (a disturbed run stays in its folder, marked)."""
    if results.disturbed:
        console.print("[red bold]README.md not rewritten: the machine was not quiet — " + "; ".join(results.disturbed))
        return False
    splice_readme(readme, readme_section(results, os.path.relpath(out.resolve(), ROOT), command))
    console.print(f"{readme.name}: benchmark figures rewritten")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    compile_bytecode()
    run.results.notes.append("the kernel's and the plugins' sources were compiled to bytecode before the run, as installing their wheels does")
    console.print(f"benchmark → {run.out}  sizes={args.sizes} reps={args.reps} warmup={args.warmup}")
    started = time.perf_counter()
    console.print(f"waiting up to {args.settle:.0f} s for a quiet machine, then watching it for {args.probe:g} s")
    before = run.monitor.probe(args.probe, settle=args.settle)
    if not before.quiet:
        console.print(f"[yellow]the machine is not quiet ({before.why}): this run will be marked disturbed")
    code = 0
    try:
        rows = run.rows()
        run.matmul(rows)
        if not args.skip_native:
            console.print("native references (Rust, numpy)")
            with run.monitor.section("native references"):
                run.references()
        if not args.skip_init:
            console.print("initialization overhead")
            with run.monitor.section("initialization overhead"):
                run.init_overhead(rows)
        if not args.skip_load:
            run.load(rows)
    except ChecksumMismatch as exc:
        run.results.aborted = str(exc)
        console.print(f"[red]aborted: {exc}")
        code = 1
    except KeyboardInterrupt:
        run.results.aborted = "interrupted"
        code = 130
    results = run.results
    results.machine_load = run.monitor.intervals
    results.disturbed = run.monitor.disturbed
    results.summaries = stats.summarize(results.samples)
    results.comparisons, results.anovas = stats.compare(results.samples, ["wasmkernel-naive", "wasmkernel-fast"])
    results.notes.append(f"total wall time {time.perf_counter() - started:.0f} s")
    write_all(results, run.out)
    console.print(f"report: {run.out / 'REPORT.md'}")
    if args.readme:
        words = [w if not w.startswith(str(ROOT)) else os.path.relpath(w, ROOT) for w in (sys.argv[1:] if argv is None else argv)]
        if not publish(results, run.out, " ".join([".venv/bin/python -m benchmarks", *words]), ROOT / "README.md"):
            code = code or 2
    if results.failed:
        console.print(f"[red bold]FAILED: {len(results.failed)} server(s) could not be measured: " + "; ".join(f"{k}: {v}" for k, v in results.failed.items()))
        code = code or 1
    return code
