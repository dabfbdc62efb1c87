"""Is the machine quiet enough to publish figures? Load and steal, per section.

A benchmark on a shared machine measures its neighbours as much as itself: a
run at load average 9 once made the fast kernel look five times slower than
Gin. So every section of a run records, from ``/proc``, the 1-minute load
average at its start and end, the CPU time that processes *outside* the
benchmark's own process tree used meanwhile (``foreign cores``: busy time of
the whole machine less the benchmark's own, per second), and the hypervisor's
steal. A run is **quiet** when, before it starts, the load average is at most
`Thresholds.start_load` and a probe sees at most `Thresholds.start_foreign`
foreign cores, and every section stays within `Thresholds.foreign` and
`Thresholds.steal`. A disturbed run is still written, marked as such, and never
copied into the README.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import psutil

TICK = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Thresholds:
    """What a quiet machine may show (the defaults fit a 2-core machine)."""

    start_load: float = 0.5  # 1-minute load average before the run
    start_foreign: float = 0.10  # cores used by others during the start probe
    foreign: float = 0.15  # cores used by others, averaged over any section
    steal: float = 2.0  # % of CPU time stolen by the hypervisor in any section


@attrs.frozen
class Reading:
    """The machine's CPU counters and the benchmark's own CPU time at one moment."""

    at: float
    load1: float
    busy_s: float  # every CPU's non-idle time, steal excluded
    total_s: float  # every CPU's time, steal included
    steal_s: float
    own_s: float  # this process and every process it started (running or reaped)

    @classmethod
    def now(cls) -> Reading:
        with open("/proc/stat") as stat:
            fields = [int(x) / TICK for x in stat.readline().split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return cls(
            at=time.monotonic(),
            load1=os.getloadavg()[0],
            busy_s=user + nice + system + irq + softirq,
            total_s=sum(fields),
            steal_s=steal,
            own_s=own_cpu_seconds(),
        )


def own_cpu_seconds() -> float:
    """CPU seconds of this process's whole tree: itself, its reaped children
    (``os.times``), and every live descendant with the children it reaped."""
    mine = os.times()
    total = mine.user + mine.system + mine.children_user + mine.children_system
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


@attrs.frozen
class Interval:
    """One section of a run, as the machine saw it: a row of ``machine_load.csv``."""

    section: str
    seconds: float
    load1_start: float
    load1_end: float
    foreign_cores: float
    steal_pct: float
    quiet: bool
    why: str  # empty when quiet
    discarded: bool = False  # disturbed, its measurements thrown away and taken again

    @classmethod
    def between(cls, section: str, start: Reading, end: Reading, limits: Thresholds, *, probe: bool = False) -> Interval:
        seconds = max(end.at - start.at, 1e-6)
        foreign = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s)) / seconds
        total = max(end.total_s - start.total_s, 1e-6)
        steal = 100.0 * (end.steal_s - start.steal_s) / total
        reasons = []
        if probe and start.load1 > limits.start_load:
            reasons.append(f"load average {start.load1:.2f} > {limits.start_load}")
        foreign_limit = limits.start_foreign if probe else limits.foreign
        if foreign > foreign_limit:
            reasons.append(f"other processes used {foreign:.2f} cores > {foreign_limit}")
        if steal > limits.steal:
            reasons.append(f"steal {steal:.1f}% > {limits.steal}%")
        return cls(section, round(seconds, 1), start.load1, end.load1, round(foreign, 3), round(steal, 2), not reasons, "; ".join(reasons))


@attrs.define
class Monitor:
    """Records an `Interval` per section; `disturbed` lists what was not quiet."""

    limits: Thresholds = Thresholds()
    intervals: list[Interval] = attrs.field(factory=list)

    def probe(self, seconds: float = 10.0, settle: float = 0.0) -> Interval:
        """Before the run: wait up to `settle` seconds for the load average to
        fall to the threshold, then watch the machine for `seconds`."""
        deadline = time.monotonic() + settle
        while os.getloadavg()[0] > self.limits.start_load and time.monotonic() < deadline:
            time.sleep(5.0)
        start = Reading.now()
        time.sleep(seconds)
        interval = Interval.between("before the run", start, Reading.now(), self.limits, probe=True)
        self.intervals.append(interval)
        return interval

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        start = Reading.now()
        try:
            yield
        finally:
            self.intervals.append(Interval.between(name, start, Reading.now(), self.limits))

    def write_csv(self, path: Path) -> None:
        """The intervals as ``machine_load.csv``."""
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow([field.name for field in attrs.fields(Interval)])
            writer.writerows(attrs.astuple(interval) for interval in self.intervals)

    def discard_last(self) -> Interval:
        """Mark the last section discarded (its measurements are taken again):
        it stays in ``machine_load.csv`` and no longer makes the run disturbed."""
        last = attrs.evolve(self.intervals[-1], discarded=True)
        self.intervals[-1] = last
        return last

    @property
    def disturbed(self) -> list[str]:
        return [f"{i.section}: {i.why}" for i in self.intervals if not i.quiet and not i.discarded]
