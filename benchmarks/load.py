"""Request overhead: `GET /hello` throughput and latency percentiles with wrk.

wrk runs on the same machine and shares its cores with the server, as in
the facts sheet (`wrk -t2 -c64 -d10s`); the numbers compare servers with
one another, not with other machines.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import attrs

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)


@attrs.frozen
class LoadResult:
    server: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str


def wrk_available() -> str | None:
    """None if wrk is installed, else the reason to skip."""
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def parse_wrk(server: str, output: str) -> LoadResult:
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(output)}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:\s+(.*)", output)
    if rate is None or total is None or 50 not in percentiles:
        raise ValueError(f"unexpected wrk output: {output[-300:]!r}")
    return LoadResult(
        server,
        float(rate.group(1)),
        percentiles[50],
        percentiles.get(99, float("nan")),
        int(total.group(1)),
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(1).strip() if errors else "",
    )


def run_wrk(server: str, url: str, duration: float, threads: int = 2, connections: int = 64) -> LoadResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", url]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-200:]}")
    return parse_wrk(server, done.stdout)
