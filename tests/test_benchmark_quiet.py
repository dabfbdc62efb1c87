"""A benchmark run records how busy the machine was, and a disturbed run is never published."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the benchmarks package is not installed

from benchmarks.cli import REMEASURE, Run, publish
from benchmarks.quiet import Interval, Monitor, Reading, Thresholds
from benchmarks.report import README_END, README_START, Results, markdown


def reading(at: float, busy: float, own: float, steal: float = 0.0, load1: float = 0.1) -> Reading:
    return Reading(at=at, load1=load1, busy_s=busy, total_s=2 * at + steal, steal_s=steal, own_s=own)


def test_cpu_used_by_the_benchmark_itself_is_not_a_disturbance() -> None:
    # 10 s: the machine was busy 12 CPU-seconds, 11.5 of them the benchmark's own processes.
    interval = Interval.between("x", reading(0, 0, 0), reading(10, 12, 11.5), Thresholds())
    assert interval.foreign_cores == 0.05 and interval.quiet


def test_other_processes_steal_and_load_make_a_section_disturbed() -> None:
    busy = Interval.between("wrk round 1", reading(0, 0, 0), reading(10, 12, 8), Thresholds())
    assert not busy.quiet and "0.40 cores" in busy.why
    stolen = Interval.between("native", reading(0, 0, 0), reading(10, 1, 1, steal=2.0), Thresholds())
    assert not stolen.quiet and "steal" in stolen.why
    loaded = Interval.between("before the run", reading(0, 0, 0, load1=3.0), reading(10, 0, 0), Thresholds(), probe=True)
    assert not loaded.quiet and "load average 3.00" in loaded.why


def run_results(disturbed: bool) -> Results:
    results = Results(sizes=[100], reps=1, warmup=0, machine={})
    results.machine_load = [Interval.between("before the run", reading(0, 0, 0), reading(10, 5 if disturbed else 0, 0), Thresholds(), probe=True)]
    results.disturbed = [f"{i.section}: {i.why}" for i in results.machine_load if not i.quiet]
    return results


def test_a_disturbed_run_is_marked_and_never_copied_into_the_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    original = f"intro\n{README_START}\nold figures\n{README_END}\n"
    readme.write_text(original)
    results = run_results(disturbed=True)
    assert "DISTURBED RUN" in markdown(results, [], {})
    assert not publish(results, tmp_path / "run", "python -m benchmarks --readme", readme)
    assert readme.read_text() == original


def test_a_quiet_run_rewrites_the_readme_figures_with_the_load_it_saw(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold figures\n{README_END}\n")
    results = run_results(disturbed=False)
    assert "Quiet run" in markdown(results, [], {})
    assert publish(results, tmp_path / "run", "python -m benchmarks --readme", readme)
    text = readme.read_text()
    assert "old figures" not in text and "load average 0.10 before it started" in text


class Scripted(Monitor):
    """A monitor whose sections come out as scripted: (quiet, why) each."""

    verdicts: Iterator[tuple[bool, str]]

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        yield
        quiet, why = next(self.verdicts)
        self.intervals.append(Interval(name, 1.0, 0.1, 0.1, 0.0, 0.0, quiet, why))


def test_a_disturbed_size_is_measured_again_and_only_the_last_measurement_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of steal in one short /matmul section does not make the whole run
    unpublishable: the size is measured again, what was thrown away stays in the
    machine-load table marked discarded; a size disturbed every time stays disturbed."""
    run = Run(argparse.Namespace(out=tmp_path, sizes=[100], reps=1, warmup=0))
    monitor = run.monitor = Scripted()
    monitor.verdicts = iter([(False, "steal 2.7% > 2.0%"), (True, "")])
    monkeypatch.setattr(run, "size", lambda n, *rest: run.results.cells.append(f"cell of n={n}"))  # type: ignore[arg-type]  # a stand-in
    run.quiet_size(100, [], {}, {}, httpx.Client(), lambda: None)
    assert list(map(str, run.results.cells)) == ["cell of n=100"]  # the disturbed measurement was thrown away
    assert [(i.section, i.quiet, i.discarded) for i in monitor.intervals] == [("/matmul n=100", False, True), ("/matmul n=100 (again, 2)", True, False)]
    assert monitor.disturbed == []

    monitor.verdicts = iter([(False, "steal")] * (REMEASURE + 1))
    run.quiet_size(200, [], {}, {}, httpx.Client(), lambda: None)
    assert monitor.disturbed == [f"/matmul n=200 (again, {REMEASURE + 1}): steal"]
