"""The test suite on a busy machine: runs pytest `--runs` times in a row with
`--busy` busy-loop processes beside it (each spins one CPU at normal
priority, as other jobs on a shared CI machine would). A test that fails only
because the machine is busy is a bad test: this is how to find one.

    .venv/bin/python -m stress.loaded_suite --busy 12 --runs 3
    .venv/bin/python -m stress.loaded_suite --busy 12 --runs 1 -- plugins/wasm -x   # pytest arguments after --

Each run's pytest output goes to `<out>/run-<n>.log`; `<out>/runs.csv` has
one row per run (duration, counts, exit status, the load average seen: mean
and max of /proc/loadavg's one-minute figure, sampled every 10 s). Stops at
the first failing run unless `--keep-going`; exits non-zero if any run
failed. The busy loops are killed however the script ends.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_LOOP = "while True: pass"
#: pytest's final line: "3 failed, 1183 passed, 41 skipped, 2 errors in 901.23s (0:15:01)"
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


@contextmanager
def busy_loops(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` processes spinning a CPU each, until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield loops
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait()


def counts(output: str) -> dict[str, int]:
    """The counts of pytest's summary line (the last line that has them)."""
    for line in reversed(output.splitlines()):
        found = SUMMARY.findall(line)
        if found and " in " in line:
            result: dict[str, int] = {}
            for number, kind in found:
                result["errors" if kind.startswith("error") else kind] = int(number)
            return result
    return {}


def run_suite(run: int, pytest_args: Sequence[str], out: Path, interval: float = 10.0) -> dict[str, object]:
    """One pytest run; the load average is sampled while waiting for it."""
    log = out / f"run-{run}.log"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", *pytest_args]
    loads = [os.getloadavg()[0]]
    started = time.monotonic()
    with log.open("w") as output:
        suite = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    code = suite.wait(timeout=interval)
                    break
                except subprocess.TimeoutExpired:
                    loads.append(os.getloadavg()[0])
        finally:
            if suite.poll() is None:
                suite.kill()
                suite.wait()
    seconds = time.monotonic() - started
    found = counts(log.read_text(errors="replace"))
    return {
        "run": run,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "passed": found.get("passed", 0),
        "failed": found.get("failed", 0),
        "errors": found.get("errors", 0),
        "skipped": found.get("skipped", 0),
        "load_mean": round(sum(loads) / len(loads), 2),
        "load_max": round(max(loads), 2),
        "log": str(log),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=12, help="busy-loop processes beside the suite (default 12)")
    parser.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    parser.add_argument("--keep-going", action="store_true", help="run them all even after a failing run")
    parser.add_argument("--out", type=Path, default=Path(".wasmkernel/loaded-suite"), help="logs and runs.csv (default .wasmkernel/loaded-suite)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # A SIGTERM ends the script like Ctrl-C does: the busy loops are killed on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rows: list[dict[str, object]] = []
    with busy_loops(args.busy):
        for run in range(1, args.runs + 1):
            row = {"busy": args.busy, **run_suite(run, args.pytest_args, args.out)}
            rows.append(row)
            print(
                f"run {run}/{args.runs} with {args.busy} busy loops: exit {row['exit_code']}, {row['passed']} passed, {row['failed']} failed, "
                f"{row['errors']} errors, {row['skipped']} skipped in {row['seconds']} s; load mean {row['load_mean']}, max {row['load_max']}",
                flush=True,
            )
            if row["exit_code"] != 0 and not args.keep_going:
                break
    with (args.out / "runs.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    failed = [row for row in rows if row["exit_code"] != 0]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs passed; {args.out / 'runs.csv'}")
    return 1 if failed or len(rows) < args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
