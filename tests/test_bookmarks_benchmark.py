"""The bookmarks benchmark runs (tiny settings: its figures come from a quiet
machine), both versions pass the same feature check before being measured,
and WasmKernel's version is no longer than FastAPI's."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bookmarks.__main__ import sizes
from tests.conftest import ROOT

pytestmark = pytest.mark.server


def test_wasmkernel_version_is_no_longer_than_fastapis() -> None:
    lines = {row["version"]: row["lines"] for row in sizes()}
    assert lines["wasmkernel"] <= lines["fastapi"], lines


@pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("taskset") is None, reason="wrk and taskset are needed")
def test_the_benchmark_runs(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.bookmarks", "--duration", "1", "--rounds", "1", "--connections", "2"]
    command += ["--micro-reps", "1", "--matrix-sizes", "10", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with (tmp_path / "bookmarks.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["server"], row["scenario"]) for row in rows} == {
        (server, scenario)
        for server in ("wasmkernel-hypercorn-trio", "fastapi-hypercorn-trio", "fastapi-uvicorn")
        for scenario in ("GET /bookmarks", "POST /bookmarks")
    }
    assert all(float(row["median_rps"]) > 0 for row in rows)
    assert (tmp_path / "validation.csv").read_text().count("\n") == 3  # header + decode + validate for 10x10
