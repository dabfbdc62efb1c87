"""Facts about the machine and the toolchains, for the report."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

_VERSIONS = {
    "node": ["node", "--version"],
    "go": ["go", "version"],
    "java": ["java", "-version"],
    "cargo": ["cargo", "--version"],
    "wrk": ["wrk", "--version"],
}
_PACKAGES = ("wasmkernel", "hypercorn", "trio", "numpy", "scipy")


def cpu_model() -> str:
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def facts() -> dict[str, str]:
    result = {
        "cpu": cpu_model(),
        "logical cores": str(os.cpu_count()),
        "cpu affinity": str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "n/a",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for name, command in _VERSIONS.items():
        result[name] = _version(command)
    bun = Path(__file__).resolve().parent / "peers" / "express-bun" / "node_modules" / ".bin" / "bun"
    result["bun"] = _version([str(bun), "--version"]) if bun.exists() else "not installed"
    for package in _PACKAGES:
        try:
            result[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            result[package] = "not installed"
    result["wasmer"] = _wasmer_workers()
    return result


def _wasmer_workers() -> str:
    """wasmer's release and the Python 3.10 its workers run on (they have their own interpreter)."""
    try:
        from wasmkernel_wasmer_loader.environment import WASMER_VERSION, find_interpreter

        return f"{WASMER_VERSION} (workers on Python {find_interpreter().version})"
    except Exception as exc:  # not installed, or no Python 3.10
        return f"unavailable ({type(exc).__name__})"
