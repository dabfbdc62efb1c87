"""`wasmkernel bench`: runs the repository's benchmark (``python -m benchmarks``).

The benchmark package lives in the source checkout, not in any installed
distribution, so the command looks for a folder holding
``benchmarks/__main__.py`` above the registry file and above the current
directory, and runs it there with this interpreter. The options mirror the
runner's (see ``benchmarks/README.md``); only the ones given are passed on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from wasmkernel import Command, default_registry_path

#: (option, argparse keyword arguments), forwarded as given.
_VALUE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("--sizes", "comma-separated matrix sizes (default 100,200,500,1000,2000)"),
    ("--reps", "repetitions per cell (default 30)"),
    ("--warmup", "warm-up requests per cell, not recorded (default 2)"),
    ("--servers", "comma-separated server rows (default: all)"),
    ("--cell-budget", "seconds per (server, size) cell before it stops (default 120)"),
    ("--out", "output folder (default benchmarks/results/<timestamp>)"),
)
_FLAGS: tuple[tuple[str, str], ...] = (
    ("--full", "add n=5000"),
    ("--smoke", "n=50,100, 3 repetitions, no load or native sections"),
    ("--skip-load", "skip the /hello request-overhead section (wrk)"),
    ("--skip-init", "skip the initialization-overhead section"),
    ("--skip-native", "skip the native Rust and numpy reference rows"),
)


def find_repository(registry: str | None, cwd: Path | None = None) -> Path | None:
    """The nearest folder holding ``benchmarks/__main__.py`` above the registry or `cwd`."""
    starts = [Path(registry or default_registry_path()).resolve().parent, (cwd or Path.cwd()).resolve()]
    for start in starts:
        for folder in (start, *start.parents):
            if (folder / "benchmarks" / "__main__.py").is_file():
                return folder
    return None


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    for option, help_text in _VALUE_OPTIONS:
        parser.add_argument(option, default=None, help=help_text)
    for option, help_text in _FLAGS:
        parser.add_argument(option, action="store_true", help=help_text)


def forwarded(args: argparse.Namespace) -> list[str]:
    """The runner's command-line arguments for the options given to `wasmkernel bench`."""
    argv: list[str] = []
    for option, _ in _VALUE_OPTIONS:
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None:
            argv += [option, str(value)]
    argv += [option for option, _ in _FLAGS if getattr(args, option[2:].replace("-", "_"))]
    return argv


def _run(args: argparse.Namespace) -> int:
    root = find_repository(args.registry)
    if root is None:
        print(
            "wasmkernel bench: no benchmarks/ package found above the registry or the current directory; run it from a WasmKernel source checkout",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, "-m", "benchmarks", *forwarded(args)], cwd=root)


def bench_command() -> Command:
    return Command("bench", "run the /matmul benchmark against WasmKernel and the peer servers (python -m benchmarks)", _run, _add_arguments)
