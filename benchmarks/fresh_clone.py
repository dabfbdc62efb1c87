"""``python -m benchmarks.fresh_clone``: how long a fresh clone's ``make run``
takes to serve, and how big the environment it installs is.

Each trial clones this repository's ``HEAD`` into a temporary folder and runs
``make run`` there on a free port, as a new user would, with **empty caches**
(pip's cache and ``$XDG_CACHE_HOME``, where the Wasmer workers' environment
lives, point into the trial's folder: nothing from earlier installs is reused;
``--warm`` keeps the machine's caches). It measures the seconds from the start
of ``make run`` until ``/health`` answers 200, the lines ``make run`` printed
by then, and the sizes of ``.venv`` and of the Wasmer workers' environment.
The machine's load is recorded per trial (`benchmarks.quiet`). Writes
``fresh_clone.csv`` and ``machine_load.csv`` into ``--out`` and prints the
table; the README's targets: serving in 2 minutes or less, ``.venv`` at most
150 MiB.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import attrs

from benchmarks import quiet
from benchmarks.servers import ROOT, free_port

TIMEOUT_S = 900.0
MIB = 1024 * 1024


@attrs.frozen
class Trial:
    """One fresh clone served: a row of ``fresh_clone.csv``."""

    trial: int
    caches: str  # "empty" or "warm"
    serving_s: float
    lines: int
    venv_mib: float
    wasmer_env_mib: float
    failure: str  # empty when it served; make's exit status when it stopped first, or "timeout"


def tree_mib(path: Path) -> float:
    """Disk use of `path` (files counted once, symlinks not followed)."""
    total = 0
    seen: set[int] = set()
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(root, name))
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_blocks * 512
    return round(total / MIB, 1)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_trial(number: int, workdir: Path, warm: bool) -> Trial:
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = dict(os.environ)
    for variable in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(variable, None)
    if not warm:
        env["PIP_CACHE_DIR"] = str(workdir / "pip-cache")
        env["XDG_CACHE_HOME"] = str(workdir / "cache")
    port = free_port()
    log = workdir / "make-run.log"
    with log.open("wb") as output:
        started = time.monotonic()
        make = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not healthy(port) and make.poll() is None and time.monotonic() - started < TIMEOUT_S:
                time.sleep(0.2)
            serving = time.monotonic() - started
            stopped = make.poll()
            outcome = "" if stopped is None and healthy(port) else ("timeout" if stopped is None else str(stopped))
        finally:
            with_group(make, signal.SIGINT)
            try:
                make.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_group(make, signal.SIGKILL)
                make.wait()
    lines = len([line for line in log.read_bytes().splitlines() if line.strip() and b'"event": "request"' not in line and b"Running on" not in line])
    wasmer_envs = list((Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasmkernel").glob("wasmer-py3.10-*"))
    return Trial(
        trial=number,
        caches="warm" if warm else "empty",
        serving_s=round(serving, 1),
        lines=lines,
        venv_mib=tree_mib(clone / ".venv"),
        wasmer_env_mib=sum(tree_mib(found) for found in wasmer_envs),
        failure=outcome,
    )


def with_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fresh_clone", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1, help="fresh clones, one after the other (default 1)")
    parser.add_argument("--warm", action="store_true", help="keep the machine's pip and Wasmer-environment caches")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / time.strftime("%Y-%m-%d-fresh-clone"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    monitor = quiet.Monitor()
    monitor.probe(5.0)
    trials = []
    for number in range(1, args.trials + 1):
        with tempfile.TemporaryDirectory(prefix="wasmkernel-fresh-") as workdir, monitor.section(f"trial {number}"):
            trials.append(run_trial(number, Path(workdir), args.warm))
        print(f"trial {number}: {trials[-1]}")
    with (args.out / "fresh_clone.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([field.name for field in attrs.fields(Trial)])
        writer.writerows(attrs.astuple(trial) for trial in trials)
    monitor.write_csv(args.out / "machine_load.csv")
    failed = [trial for trial in trials if trial.failure]
    for trial in trials:
        sizes = f".venv {trial.venv_mib} MiB, Wasmer workers' environment {trial.wasmer_env_mib} MiB"
        failure = f", FAILED ({trial.failure})" if trial.failure else ""
        print(f"{trial.caches} caches: serving after {trial.serving_s} s, {trial.lines} lines, {sizes}{failure}")
    disturbed = monitor.disturbed
    print("machine: quiet throughout" if not disturbed else "machine: DISTURBED — " + "; ".join(disturbed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
