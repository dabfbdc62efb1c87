"""`python -m benchmarks --smoke` end to end: real servers, real checksums, a report."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wasmkernel.testing import project_root

ROOT = project_root()

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not (ROOT / "benchmarks" / "__main__.py").exists(), reason="benchmarks package not present"),
]


def available_rows() -> list[str]:
    """WasmKernel's rows and those of every peer whose toolchain is installed
    (the Spring peer when Debian's Spring and Tomcat packages are)."""
    rows = ["wasmkernel-naive", "wasmkernel-fast"]
    for peer in tomllib.loads((ROOT / "benchmarks" / "peers" / "peers.toml").read_text())["peer"]:
        if all(shutil.which(exe) for exe in peer.get("requires", ())) and all(Path(f).exists() for f in peer.get("requires_files", ())):
            kernels = peer["kernels"]
            rows += [peer["name"]] if len(kernels) == 1 else [f"{peer['name']}-{kernel}" for kernel in kernels]
    return rows


def test_smoke_run_writes_verified_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--servers", ",".join(available_rows()), "--cell-budget", "30", "--out", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,  # a hang guard: peers are set up on first use (a virtual environment, npm, javac); slow on a busy machine
    )
    # A seed peer whose setup fails makes the run exit non-zero (its row is FAILED, never skipped).
    assert done.returncode == 0, done.stderr[-2000:]
    with (out / "raw.csv").open() as handle:
        raw = list(csv.DictReader(handle))
    report = (out / "REPORT.md").read_text()
    assert "## FAILED" not in report
    if "wasmkernel-naive" not in {row["server"] for row in raw}:
        pytest.fail("WasmKernel was not measured: " + report[report.find("## Skipped") :][:800])
    ok = [row for row in raw if row["status"] == "ok"]
    assert ok and all(row["verified"] == "True" and float(row["checksum"]) == float(row["expected"]) for row in ok)
    assert {int(row["n"]) for row in ok} == {50, 100}
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert {(row["server"], row["n"]) for row in summary} >= {("wasmkernel-fast", "100"), ("wasmkernel-naive", "100")}
    assert "## Targets" in report and "## Latency (ms)" in report
    # The machine's load is recorded before the run and for every section (a CI machine is busy: the run is marked so).
    assert "## Machine load" in report
    with (out / "machine_load.csv").open() as handle:
        sections = [row["section"] for row in csv.DictReader(handle)]
    assert sections[0] == "before the run" and "/matmul n=50" in sections and "/matmul n=100" in sections
    assert (out / "latency_vs_n.png").stat().st_size > 0
    assert (out / "gflops.png").exists() and (out / "memory.png").exists()
    with (out / "memory.csv").open() as handle:
        memory = list(csv.DictReader(handle))
    roles = {row["role"] for row in memory if row["server"] == "wasmkernel"}
    assert {"main", "wasm worker"} <= roles, roles
    assert {row["phase"] for row in memory if row["server"] == "wasmkernel"} == {"idle", "after"}
    assert all(float(row["rss_mb"]) > 0 for row in memory)
    assert "## Memory per server" in report


def test_smoke_run_with_cold_start(tmp_path: Path) -> None:
    """One start per scenario: WasmKernel's cold/warm cache, its phases and
    import time, and exec → first 200 for a peer and the same-server apps."""
    out = tmp_path / "results"
    peers = [row for row in available_rows() if row == "gin"]
    rows = ",".join(["wasmkernel-fast", *peers])
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--sizes", "50", "--init-trials", "1", "--servers", rows, "--cell-budget", "30", "--out", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with (out / "startup.csv").open() as handle:
        startup = list(csv.DictReader(handle))
    warm = [row for row in startup if row["server"] == "wasmkernel" and row["scenario"] == "warm-cache"]
    assert warm and float(warm[0]["ready_s"]) > 0 and float(warm[0]["matmul_s"]) > float(warm[0]["ready_s"])
    started = {row["server"] for row in startup}
    assert {"wasmkernel-bare", "starlette-full", "fastapi-trio-full", *peers} <= started, started
    with (out / "phases.csv").open() as handle:
        phases = list(csv.DictReader(handle))
    assert {row["scenario"] for row in phases} == {"warm-cache", "cold-cache"}
    assert all(float(row["workers_warm_s"]) > 0 and float(row["kernel_import_s"]) > 0 for row in phases)
    report = (out / "REPORT.md").read_text()
    assert "## Cold start: exec → first 200" in report and "first /hello ≤ 0.6 s after exec" in report
