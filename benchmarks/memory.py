"""Memory of a server's process tree, per process, with each process's role.

``python -m benchmarks.memory [REGISTRY]`` prints WasmKernel's tree at idle.

RSS counts every page a process maps, so pages that processes share (the
Python 3.10 interpreter and wasmer's library of the WebAssembly workers) are
counted once per process: the sum of RSS (what the targets use, as the issue
measured it) overstates the tree's real footprint; PSS (each shared page
divided among its sharers) sums to it. Peak
is Linux ``VmHWM`` (since the last reset of the cell, or since start).
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

import attrs
import psutil

from benchmarks.servers import ROOT, RunningServer, start, wasmkernel_spec


@attrs.frozen
class ProcessMemory:
    """One process of a server's tree at one moment: a row of ``memory.csv``."""

    server: str
    phase: str  # idle (started, nothing requested) | after (after the last cell or load run)
    role: str
    pid: int
    rss_mb: float
    pss_mb: float
    peak_mb: float


def role(proc: psutil.Process, index: int) -> str:
    """What a process of the tree is, from its command line."""
    if index == 0:
        return "main"
    command = " ".join(proc.cmdline())
    if "wasmkernel_wasmer_loader.worker" in command:
        return "wasm worker"
    if "multiprocessing.spawn" in command:
        return "hypercorn worker"
    return f"child ({proc.name()})"


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return 0.0


def snapshot(server: RunningServer, phase: str) -> list[ProcessMemory]:
    rows = []
    for index, proc in enumerate(server.processes()):
        try:
            name = role(proc, index)
            info = proc.memory_full_info()
            rows.append(ProcessMemory(server.spec.name, phase, name, proc.pid, info.rss / 2**20, info.pss / 2**20, _hwm_mb(proc.pid)))
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
    return rows


def totals(rows: list[ProcessMemory]) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(server, phase) → (Σ RSS, Σ PSS, Σ peak, process count)."""
    out: dict[tuple[str, str], tuple[float, float, float, int]] = {}
    for row in rows:
        rss, pss, peak, count = out.get((row.server, row.phase), (0.0, 0.0, 0.0, 0))
        out[(row.server, row.phase)] = (rss + row.rss_mb, pss + row.pss_mb, peak + row.peak_mb, count + 1)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.memory [REGISTRY]``: start `wasmkernel run` on
    REGISTRY (default: plugin_registry.toml) as deployed, print every process
    of its tree at idle (after its first `/hello`), then stop it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=main.__doc__)
    parser.add_argument("registry", nargs="?", type=Path, default=ROOT / "plugin_registry.toml")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait after the first /hello (default 1)")
    args = parser.parse_args(argv)
    env = {"WASMKERNEL_JWT_SECRET": os.environ.get("WASMKERNEL_JWT_SECRET") or secrets.token_urlsafe(48)}
    with start(wasmkernel_spec(args.registry.resolve(), env), Path(os.environ.get("TMPDIR", "/tmp")) / "wasmkernel-memory-logs") as server:
        time.sleep(args.settle)
        rows = snapshot(server, "idle")
    print(f"{'process':18} {'RSS MiB':>8} {'PSS MiB':>8} {'peak MiB':>9}")
    for row in rows:
        print(f"{row.role:18} {row.rss_mb:8.1f} {row.pss_mb:8.1f} {row.peak_mb:9.1f}")
    print(f"{'Σ (' + str(len(rows)) + ' processes)':18} {sum(r.rss_mb for r in rows):8.1f} {sum(r.pss_mb for r in rows):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
