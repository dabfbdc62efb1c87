"""`python -m benchmarks.realtime --smoke` end to end: real servers, real
WebSocket clients, Redis and nginx where installed; 0 messages lost and the
CSV, chart and report written."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wasmkernel.testing import project_root

ROOT = project_root()

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="Node.js and npm are needed (the load generator is Node.js ws clients)"
    ),
]


def _installed(name: str) -> bool:
    return (shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")) is not None


def rows() -> list[str]:
    """Every row whose programs are installed (Redis rows need redis-server, the nginx row nginx too)."""
    names = ["raw-asgi", "starlette", "node-ws", "wasmkernel"]
    if _installed("redis-server"):
        names.append("wasmkernel-2w-redis")
        if _installed("nginx"):
            names.append("wasmkernel-2x-nginx")
    return names


def test_smoke_run_delivers_every_message(tmp_path: Path) -> None:
    out = tmp_path / "realtime"
    servers = rows()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.realtime", "--smoke", "--servers", ",".join(servers), "--out", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with (out / "realtime.csv").open() as handle:
        results = list(csv.DictReader(handle))
    assert [row["server"] for row in results] == servers
    for row in results:
        assert int(row["subscribers"]) == 50 and int(row["messages"]) == 5
        assert int(row["deliveries"]) == int(row["deliveries_expected"]) == 250, row
        assert int(row["lost"]) == 0 and int(row["duplicates"]) == 0 and int(row["publish_errors"]) == 0, row
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"]) <= float(row["max_ms"]), row
        assert float(row["rss_idle_mb"]) > 0 and float(row["loadgen_cpu_pct"]) > 0, row
    with (out / "messages.csv").open() as handle:
        messages = list(csv.DictReader(handle))
    assert len(messages) == 5 * len(servers) and all(int(m["arrivals"]) == 50 for m in messages)
    report = (out / "REPORT.md").read_text()
    assert "**PASS** 0 messages lost in every configuration" in report
    assert (out / "fanout.png").stat().st_size > 10_000
    if "wasmkernel-2x-nginx" in servers:
        split = next(row for row in results if row["server"] == "wasmkernel-2x-nginx")["connections_per_process"].split("/")
        assert len(split) == 2 and all(int(n) >= 20 for n in split), split  # subscribers split over both instances
