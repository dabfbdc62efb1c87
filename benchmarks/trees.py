"""``python -m benchmarks.trees BEFORE AFTER``: two (or more) checkouts of
WasmKernel side by side in one run — the before-and-after of a change.

Each argument is a checkout with its own `.venv` (``git worktree add`` of the
earlier commit, then ``make install`` in it). Every checkout serves the
benchmark's full registry (`wasmkernel run`, the server pinned to one core,
wrk to the other) once per round, the order rotated each round, and each
start measures, in this order:

- **cold start**: exec to the first 200 of ``GET /hello`` (polled every
  5 ms; the compile cache is warm after the first start of the run);
- **idle memory**: Σ RSS and Σ PSS of the server's process tree and the
  server process alone, once ``/readyz`` says ready (workers warm);
- **throughput**: wrk on ``GET /hello`` and on the authenticated JSON
  ``POST /api/matmul`` (`--duration` seconds each).

Ratios against the first checkout are taken round by round (median, range).
Writes ``trees.csv`` and ``machine_load.csv`` into ``--out``; the run records
the machine's load per round and says whether it was quiet.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from benchmarks import load, memory, quiet, same_server
from benchmarks.pythons import ratios
from benchmarks.registries import materialize
from benchmarks.servers import ROOT, ProcessSpec, start


@attrs.frozen
class Tree:
    """A checkout with its `.venv`, named by its commit."""

    root: Path
    name: str

    @classmethod
    def of(cls, root: Path) -> Tree:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], check=True, capture_output=True, text=True)
        return cls(root.resolve(), f"{root.resolve().name}@{commit}{'+' if dirty.stdout.strip() else ''}")

    def spec(self, registry: Path, env: dict[str, str]) -> ProcessSpec:
        command = f"exec {self.root / '.venv' / 'bin' / 'wasmkernel'} run --registry {registry} --bind 127.0.0.1:$PORT --workers 0"
        return ProcessSpec(self.name, "Python", f"WasmKernel at {self.name}", self.root, command, env=env)


@attrs.frozen
class Start:
    """What one start of one tree measured (a row of ``trees.csv``)."""

    round: int
    tree: str
    ready_s: float
    tree_rss_mb: float
    tree_pss_mb: float
    server_rss_mb: float
    processes: int
    hello_rps: float
    post_rps: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trees", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path, help="checkouts to compare, each with its .venv; the first is the reference")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per tree, scenario and round (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / time.strftime("%Y-%m-%d-trees"))
    return parser.parse_args(argv)


def measure(tree: Tree, spec: ProcessSpec, round_: int, out: Path, post: Path, duration: float) -> tuple[Start, list[load.LoadResult]]:
    pinning = f"server cpu {load.SERVER_CPUS}, wrk cpu {load.WRK_CPUS}"
    with start(spec, out / "logs", cpus=load.SERVER_CPUS, poll=0.005) as server:
        server.wait_ready()
        rows = memory.snapshot(server, "idle")
        runs = [
            load.run_wrk("hello", tree.name, server.base_url + "/hello", duration, pinning=pinning, round=round_),
            load.run_wrk("post", tree.name, server.base_url + same_server.POST_PATH, duration, script=post, pinning=pinning, round=round_),
        ]
    sample = Start(
        round_ + 1,
        tree.name,
        round(server.ready_after_s, 3),
        round(sum(r.rss_mb for r in rows), 1),
        round(sum(r.pss_mb for r in rows), 1),
        round(rows[0].rss_mb, 1) if rows else 0.0,
        len(rows),
        round(runs[0].requests_per_s, 1),
        round(runs[1].requests_per_s, 1),
    )
    return sample, runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reason = load.wrk_available()
    if reason:
        raise SystemExit(reason)
    trees = [Tree.of(root) for root in args.trees]
    if len({tree.name for tree in trees}) != len(trees):
        raise SystemExit("two of the checkouts are the same commit and state: name different ones")
    args.out.mkdir(parents=True, exist_ok=True)
    env = {same_server.SECRET_ENV: os.environ.get(same_server.SECRET_ENV) or secrets.token_urlsafe(48)}
    registry = (args.out / "registry.toml").resolve()  # each checkout runs in its own folder
    materialize("full", registry, (args.out / "cache").resolve())
    post = load.post_script(args.out / "post.lua", same_server.POST_BODY, {"Authorization": f"Bearer {same_server.token(env)}"})
    monitor = quiet.Monitor()
    monitor.probe(5.0)
    for tree in trees:  # fill the compile cache: every measured start has it warm
        with start(tree.spec(registry, env), args.out / "logs"):
            pass
    starts: list[Start] = []
    results: list[load.LoadResult] = []
    for round_ in range(args.rounds):
        turn = round_ % len(trees)
        with monitor.section(f"round {round_ + 1}"):
            for tree in trees[turn:] + trees[:turn]:
                sample, runs = measure(tree, tree.spec(registry, env), round_, args.out, post, args.duration)
                starts.append(sample)
                results.extend(runs)
                print(
                    f"round {round_ + 1} {tree.name}: ready {sample.ready_s:.3f} s, tree {sample.tree_rss_mb:.1f} MiB RSS "
                    f"({sample.processes} processes, server {sample.server_rss_mb:.1f}), hello {sample.hello_rps:,.0f}/s, post {sample.post_rps:,.0f}/s",
                    flush=True,
                )
    write(args.out, starts, monitor)
    report(trees, starts, results, monitor)
    return 0


def write(out: Path, starts: Sequence[Start], monitor: quiet.Monitor) -> None:
    with (out / "trees.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([field.name for field in attrs.fields(Start)])
        writer.writerows(attrs.astuple(sample) for sample in starts)
    monitor.write_csv(out / "machine_load.csv")


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def report(trees: Sequence[Tree], starts: Sequence[Start], results: Sequence[load.LoadResult], monitor: quiet.Monitor) -> None:
    rounds = len({sample.round for sample in starts})
    print(f"\nmedian (min-max) over {rounds} rounds:")
    print("| tree | exec → first /hello (s) | tree Σ RSS (MiB) | tree Σ PSS (MiB) | server RSS (MiB) | /hello req/s | POST req/s |")
    print("|---|---|---|---|---|---|---|")
    for tree in trees:
        mine = [sample for sample in starts if sample.tree == tree.name]
        columns = ("ready_s", "tree_rss_mb", "tree_pss_mb", "server_rss_mb", "hello_rps", "post_rps")
        print(f"| {tree.name} | " + " | ".join(_spread([getattr(sample, column) for sample in mine]) for column in columns) + " |")
    reference = trees[0].name
    for scenario in ("hello", "post"):
        for tree in trees[1:]:
            shares = ratios(results, scenario, tree.name, reference)
            if shares:
                print(
                    f"{scenario:5} throughput {tree.name} / {reference}: {statistics.median(shares):.2f}x ({min(shares):.2f}-{max(shares):.2f}), round by round"
                )
    disturbed = monitor.disturbed
    print("machine: quiet throughout" if not disturbed else "machine: DISTURBED — " + "; ".join(disturbed))


if __name__ == "__main__":
    raise SystemExit(main())
