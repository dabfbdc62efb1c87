"""A benchmark run records how busy the machine was, and a disturbed run is never published."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the benchmarks package is not installed

from benchmarks.cli import publish
from benchmarks.quiet import Interval, Reading, Thresholds
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
