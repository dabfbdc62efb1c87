"""Request overhead: throughput and latency percentiles with wrk.

For the request-overhead runs (`GET /hello`, the authenticated JSON `POST`)
the server is pinned to one core and wrk (one thread, 64 connections) to the
other with `taskset`, so the two never compete for a core; `pinning` records
what each row ran with. Servers take turns in rounds (every server once per
round, the order rotated each round), and ratios between two servers are taken
round by round, so a disturbance shows as spread instead of as a winner. The
numbers compare servers with one another, not with other machines.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import attrs

SERVER_CPUS = "0"  # taskset cpu list of the server under test
WRK_CPUS = "1"  # and of wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)


@attrs.frozen
class LoadResult:
    scenario: str  # hello | post | workers | pool
    server: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str
    pinning: str = ""  # e.g. "server cpu 0, wrk cpu 1" or "none (all cores shared)"
    round: int = 0  # the interleaved round (every server runs once per round)


def wrk_available() -> str | None:
    """None if wrk (and taskset) are installed, else the reason."""
    if not shutil.which("wrk"):
        return "wrk is not installed (apt-get install wrk)"
    return None if shutil.which("taskset") else "taskset is not installed (apt-get install util-linux)"


def post_script(path: Path, body: object, headers: Mapping[str, str]) -> Path:
    """A wrk Lua script that sends `body` as a JSON POST with `headers`."""
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}", 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_wrk(scenario: str, server: str, output: str, pinning: str = "") -> LoadResult:
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(output)}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:\s+(.*)", output)
    if rate is None or total is None or 50 not in percentiles:
        raise ValueError(f"unexpected wrk output: {output[-300:]!r}")
    return LoadResult(
        scenario,
        server,
        float(rate.group(1)),
        percentiles[50],
        percentiles.get(99, float("nan")),
        int(total.group(1)),
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(1).strip() if errors else "",
        pinning,
    )


def run_wrk(
    scenario: str,
    server: str,
    url: str,
    duration: float,
    *,
    threads: int = 1,
    connections: int = 64,
    script: Path | None = None,
    cpus: str | None = WRK_CPUS,
    pinning: str = "",
    round: int = 0,
) -> LoadResult:
    """wrk on `url` (pinned to `cpus` unless None); a non-2xx answer makes the row invalid (ValueError)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", *(["-s", str(script)] if script else []), url]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-200:]}")
    result = attrs.evolve(parse_wrk(scenario, server, done.stdout, pinning), round=round)
    if result.non_2xx:
        raise ValueError(f"{server}: {result.non_2xx} of {result.requests} answers were not 2xx ({url})")
    return result
