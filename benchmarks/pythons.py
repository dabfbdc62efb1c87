"""``python -m benchmarks.pythons``: the same server and registry on several
Python versions, side by side in one run.

Each interpreter is a virtual environment holding this tree (`.venv`, and the
`.venv-3.X` that `make test` creates for the other supported Pythons, by
default). Every environment serves the benchmark's full registry with
`wasmkernel run` (server pinned to one core, wrk to the other); `/hello` and
the authenticated JSON `POST /api/matmul` are measured in interleaved rounds
(every environment once per round, the order rotated), and throughput ratios
against the first environment are taken round by round (median and range).
Writes ``pythons.csv`` and ``machine_load.csv`` into ``--out`` and prints the
table. Python 3.10 cannot be among them: the server requires 3.11 or newer
(only the Wasmer loader's workers run on 3.10, whatever the server's Python).
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

from benchmarks import load, quiet, same_server
from benchmarks.registries import materialize
from benchmarks.servers import ROOT, ProcessSpec, start


@attrs.frozen
class Interpreter:
    """A virtual environment with this tree installed, and its Python's version."""

    venv: Path
    version: str

    @classmethod
    def of(cls, venv: Path) -> Interpreter:
        python = venv / "bin" / "python"
        version = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"], check=True, capture_output=True, text=True)
        return cls(venv.resolve(), version.stdout.strip())

    def spec(self, registry: Path, env: dict[str, str]) -> ProcessSpec:
        command = f"exec {self.venv / 'bin' / 'wasmkernel'} run --registry {registry} --bind 127.0.0.1:$PORT --workers 0"
        return ProcessSpec(f"python-{self.version}", "Python", f"WasmKernel on CPython {self.version}", ROOT, command, env=env)


def default_venvs() -> list[Path]:
    """`.venv` first (the primary), then the other supported Pythons' `.venv-3.X`."""
    others = sorted(ROOT.glob(".venv-3.*"), key=lambda path: tuple(int(part) for part in path.name.removeprefix(".venv-").split(".")))
    return [ROOT / ".venv", *(venv for venv in others if (venv / "bin" / "wasmkernel").exists())]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pythons", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("venvs", nargs="*", type=Path, help="virtual environments to compare, the first is the reference (default: .venv, .venv-3.X)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per environment, scenario and round (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / time.strftime("%Y-%m-%d-pythons"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reason = load.wrk_available()
    if reason:
        raise SystemExit(reason)
    interpreters = [Interpreter.of(venv) for venv in (args.venvs or default_venvs())]
    if len(interpreters) < 2:
        raise SystemExit("one environment only: run `bash scripts/bootstrap.sh versions` (or make test) to create .venv-3.X, or name two")
    args.out.mkdir(parents=True, exist_ok=True)
    env = {same_server.SECRET_ENV: os.environ.get(same_server.SECRET_ENV) or secrets.token_urlsafe(48)}
    registry = args.out / "registry.toml"
    left_out = materialize("full", registry, (args.out / "cache").resolve())
    script = load.post_script(args.out / "post.lua", same_server.POST_BODY, {"Authorization": f"Bearer {same_server.token(env)}"})
    runs = [("hello", "/hello", None), ("post", same_server.POST_PATH, script)]
    monitor = quiet.Monitor()
    monitor.probe(5.0)
    results: list[load.LoadResult] = []
    for round_ in range(args.rounds):
        turn = round_ % len(interpreters)
        with monitor.section(f"round {round_ + 1}"):
            for interpreter in interpreters[turn:] + interpreters[:turn]:
                spec = interpreter.spec(registry, env)
                with start(spec, args.out / "logs", cpus=load.SERVER_CPUS) as server:
                    for scenario, path, lua in runs:
                        pinning = f"server cpu {load.SERVER_CPUS}, wrk cpu {load.WRK_CPUS}"
                        results.append(load.run_wrk(scenario, spec.name, server.base_url + path, args.duration, script=lua, pinning=pinning, round=round_))
                        print(f"round {round_ + 1} {scenario:5} {spec.name}: {results[-1].requests_per_s:,.0f} req/s")
    write(args.out, results, monitor)
    report(interpreters, results, monitor, left_out)
    return 0


def ratios(results: Sequence[load.LoadResult], scenario: str, mine: str, reference: str) -> list[float]:
    """`mine` / `reference` throughput, round by round."""
    rates = {(r.round, r.server): r.requests_per_s for r in results if r.scenario == scenario}
    rounds = sorted({r.round for r in results})
    return [rates[n, mine] / rates[n, reference] for n in rounds if (n, mine) in rates and rates.get((n, reference))]


def write(out: Path, results: Sequence[load.LoadResult], monitor: quiet.Monitor) -> None:
    with (out / "pythons.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["round", "scenario", "server", "requests_per_s", "p50_ms", "p99_ms", "requests", "pinning"])
        for r in results:
            writer.writerow([r.round + 1, r.scenario, r.server, f"{r.requests_per_s:.1f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", r.requests, r.pinning])
    monitor.write_csv(out / "machine_load.csv")


def report(interpreters: Sequence[Interpreter], results: Sequence[load.LoadResult], monitor: quiet.Monitor, left_out: Sequence[str]) -> None:
    reference = f"python-{interpreters[0].version}"
    print(f"\nthroughput relative to {reference} (median of rounds, range), {len({r.round for r in results})} rounds:")
    for scenario in ("hello", "post"):
        for interpreter in interpreters[1:]:
            name = f"python-{interpreter.version}"
            shares = ratios(results, scenario, name, reference)
            if shares:
                print(f"  {scenario:5} {name} / {reference}: {statistics.median(shares):.2f}x ({min(shares):.2f}-{max(shares):.2f})")
    if left_out:
        print(f"plugins not installed, left out of the registry: {', '.join(left_out)}")
    disturbed = monitor.disturbed
    print("machine: quiet throughout" if not disturbed else "machine: DISTURBED — " + "; ".join(disturbed))


if __name__ == "__main__":
    raise SystemExit(main())
