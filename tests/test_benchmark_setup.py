"""How the benchmark runner classifies a server that cannot be set up: a missing
prerequisite is *unavailable*, any other failure is *FAILED* and the run exits non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.report import Results, markdown
from benchmarks.servers import ProcessSpec, SetupFailed, Unavailable, run_setup


def spec(tmp_path: Path, setup: str, requires: tuple[str, ...] = ()) -> ProcessSpec:
    return ProcessSpec("peer", "sh", "test peer", tmp_path, "exec true", setup=setup, requires=requires)


def test_missing_executable_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="'no-such-toolchain-xyz' is not installed"):
        run_setup(spec(tmp_path, "true", requires=("no-such-toolchain-xyz",)))


def test_setup_exit_3_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=r"missing jar: x\.jar"):
        run_setup(spec(tmp_path, "echo 'missing jar: x.jar' >&2; exit 3"))


def test_other_setup_failure_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(SetupFailed, match=r"setup exited with 1: .*Requires-Python >=3.11") as caught:
        run_setup(spec(tmp_path, "echo 'ERROR: Package requires a different Python: Requires-Python >=3.11' >&2; exit 1"))
    assert not isinstance(caught.value, Unavailable)


def test_report_lists_failed_and_unavailable_servers_apart() -> None:
    results = Results(sizes=[100], reps=1, warmup=0, machine={})
    results.failed["fastapi-naive"] = "setup exited with 1: no matching distribution"
    results.unavailable["gin"] = "'go' is not installed"
    report = markdown(results, [], {})
    failed = report[report.index("## FAILED") : report.index("## Not available")]
    assert "fastapi-naive" in failed and "gin" not in failed
    assert "**gin**: 'go' is not installed" in report[report.index("## Not available") :]
