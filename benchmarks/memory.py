"""Memory of a server's process tree, per process, with each process's role.

RSS counts every page a process maps, so pages that forked WebAssembly
workers share with their forkserver are counted once per process: the sum of
RSS (what the targets use, as the issue measured it) overstates the tree's real
footprint; PSS (each shared page divided among its sharers) sums to it. Peak
is Linux ``VmHWM`` (since the last reset of the cell, or since start).
"""

from __future__ import annotations

from pathlib import Path

import attrs
import psutil

from benchmarks.servers import RunningServer


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


def role(proc: psutil.Process, index: int, forkservers: set[int]) -> str:
    """What a process of the tree is, from its command line."""
    if index == 0:
        return "main"
    command = " ".join(proc.cmdline())
    if "multiprocessing.resource_tracker" in command:
        return "resource tracker"
    if "multiprocessing.forkserver" in command:
        return "wasm worker" if proc.ppid() in forkservers else "forkserver"
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
    forkservers: set[int] = set()
    for index, proc in enumerate(server.processes()):
        try:
            name = role(proc, index, forkservers)
            if name == "forkserver":
                forkservers.add(proc.pid)
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
