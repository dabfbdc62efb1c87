"""The bookmarks API both ways (issue 27): size, throughput, validation cost.

    python -m benchmarks.bookmarks                       # 10 s per wrk run, 3 rounds
    python -m benchmarks.bookmarks --duration 1 --rounds 1 --connections 4 --micro-reps 3   # a quick check

1. **Lines of code** of each version (`wasmkernel_app.py` + `registry.toml`
   against `fastapi_app.py`): lines that are not blank, comments or
   docstrings.
2. **Throughput**: `GET /bookmarks` (20 per page) and an authenticated,
   validated `POST /bookmarks` with wrk (one thread, `--connections`), on
   WasmKernel and FastAPI under the same `hypercorn --worker-class trio
   --workers 1`, and FastAPI under uvicorn; servers on cpu 0, wrk on cpu 1
   (taskset). Rounds are interleaved (every row once per round, in turn) and
   the spread across rounds is reported. Every answer must be 2xx.
3. **Validation cost per request** of `POST /api/matmul`'s body for two
   10x10 and two 300x300 matrices: the pure-Python `jsonschema` the
   validation plugin used before against jsonschema-rs now (median of
   `--micro-reps`), plus JSON decoding (standard library with a float hook,
   as before, against orjson).

Writes `bookmarks.csv`, `loc.csv` and `validation.csv` to `--out` (default
benchmarks/results/<date>-bookmarks) and prints a table. Figures are for a
quiet machine: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import jwt
import orjson

from benchmarks.load import SERVER_CPUS, post_script, run_wrk, wrk_available
from benchmarks.servers import ROOT, ProcessSpec, RunningServer, start

HERE = Path(__file__).resolve().parent
SECRET = "bookmarks-benchmark-secret-0123456789abcdef"
BODY = {"url": "https://example.com/a/page", "title": "A page worth keeping", "tags": ["reading", "later"]}
ROWS = (
    ("wasmkernel-hypercorn-trio", "hypercorn --worker-class trio --workers 1", "benchmarks.bookmarks.wasmkernel_app:app"),
    ("fastapi-hypercorn-trio", "hypercorn --worker-class trio --workers 1", "benchmarks.bookmarks.fastapi_app:app"),
    ("fastapi-uvicorn", "uvicorn --workers 1", "benchmarks.bookmarks.fastapi_app:app"),
)


# -- size -------------------------------------------------------------------------------


def code_lines(path: Path) -> int:
    """Lines of `path` that are not blank, comments or (Python) docstrings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    skipped: set[int] = set()
    if path.suffix == ".py":
        for node in ast.walk(ast.parse("\n".join(lines))):
            body = getattr(node, "body", None)
            first = body[0] if isinstance(body, list) and body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                skipped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return sum(1 for number, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#") and number not in skipped)


def sizes() -> list[dict[str, Any]]:
    versions = {"wasmkernel": ("wasmkernel_app.py", "registry.toml"), "fastapi": ("fastapi_app.py",)}
    return [{"version": version, "files": " + ".join(files), "lines": sum(code_lines(HERE / name) for name in files)} for version, files in versions.items()]


# -- throughput ---------------------------------------------------------------------------


def token(ttl: int = 7200) -> str:
    return jwt.encode({"sub": "bench", "scope": "bookmarks:write", "exp": int(time.time()) + ttl}, SECRET, algorithm="HS256")


def spec(name: str, server: str, target: str, workdir: Path) -> ProcessSpec:
    env = {"BOOKMARKS_JWT_SECRET": SECRET, "BOOKMARKS_DB": str(workdir / f"{name}.sqlite3"), "PYTHONPATH": str(ROOT)}
    where = "--bind 127.0.0.1:$PORT" if server.startswith("hypercorn") else "--host 127.0.0.1 --port $PORT --log-level warning"
    command = f"exec {sys.executable} -m {server} {where} {target}"
    return ProcessSpec(name, "Python", server.split(maxsplit=1)[0], ROOT, command, env=env)


def check(server: RunningServer) -> None:
    """The features answer as they should before anything is measured."""
    auth = {"Authorization": f"Bearer {token()}"}
    unscoped = {"Authorization": f"Bearer {jwt.encode({'sub': 'x', 'scope': '', 'exp': 2**31}, SECRET)}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        created = client.post("/bookmarks", json=BODY, headers=auth)
        expected: list[tuple[object, object]] = [
            (created.status_code, 201),
            (client.get(f"/bookmarks/{created.json().get('id', 0)}").status_code, 200),
            (client.post("/bookmarks", json={**BODY, "url": "ftp://x"}, headers=auth).status_code, 422),
            (client.post("/bookmarks", json=BODY).status_code, 401),
            (client.post("/bookmarks", json=BODY, headers=unscoped).status_code, 403),
            (client.get("/bookmarks?limit=0").status_code, 422),
        ]
        with client.stream("GET", "/bookmarks/events") as stream:
            client.delete(f"/bookmarks/{created.json()['id']}", headers=auth)
            lines = stream.iter_lines()
            seen = next(line for line in lines if line.startswith("event:"))
        expected.append((seen.split(":", 1)[1].strip(), "deleted"))
        for _ in range(40):  # a page of 20 to list
            client.post("/bookmarks", json=BODY, headers=auth)
    wrong = [(got, want) for got, want in expected if got != want]
    if wrong:
        raise SystemExit(f"{server.spec.name} answers wrongly (got, expected): {wrong}")


@attrs.frozen
class Sample:
    round: int
    server: str
    scenario: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def throughput(args: argparse.Namespace, out: Path) -> list[Sample]:
    reason = wrk_available()
    if reason is not None:
        raise SystemExit(f"cannot measure throughput: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="bookmarks-"))
    script = post_script(workdir / "post.lua", BODY, {"Authorization": f"Bearer {token()}"})
    servers = [start(spec(name, server, target, workdir), out / "logs", probe="/bookmarks", cpus=SERVER_CPUS) for name, server, target in ROWS]
    samples = []
    try:
        for server in servers:
            check(server)
        for number in range(1, args.rounds + 1):
            for server in servers:  # interleaved: A, B, C, A, B, C...
                for scenario, path, lua in (("GET /bookmarks", "/bookmarks", None), ("POST /bookmarks", "/bookmarks", script)):
                    found = run_wrk(scenario, server.spec.name, server.base_url + path, args.duration, connections=args.connections, script=lua)
                    samples.append(Sample(number, server.spec.name, scenario, found.requests_per_s, found.p50_ms, found.p99_ms))
                    print(f"round {number}  {server.spec.name:<28}{scenario:<18}{found.requests_per_s:>10.0f} req/s  p50 {found.p50_ms:.2f} ms")
    finally:
        for server in servers:
            server.stop()
    return samples


# -- validation cost ------------------------------------------------------------------------


def median_ms(work: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def validation(reps: int, matrix_sizes: list[int]) -> list[dict[str, Any]]:
    import jsonschema
    import jsonschema_rs
    from wasmkernel_matmul.matrices import operands

    from wasmkernel import model_schema
    from wasmkernel.jsonio import _exact, parse_json

    schema = model_schema(operands(512))
    before = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    after = jsonschema_rs.validator_for(schema, validate_formats=True)
    rows = []
    for n in matrix_sizes:
        matrix = [[(i * n + j) % 7 * 0.5 for j in range(n)] for i in range(n)]
        raw = orjson.dumps({"a": matrix, "b": matrix})
        body = json.loads(raw)
        assert not list(before.iter_errors(body)) and after.is_valid(body)
        for step, old, new in (
            ("decode", lambda raw=raw: _exact(raw), lambda raw=raw: parse_json(raw)),
            ("validate", lambda body=body: list(before.iter_errors(body)), lambda body=body: after.is_valid(body)),
        ):
            old_ms, new_ms = median_ms(old, reps), median_ms(new, reps)
            rows.append(
                {
                    "n": n,
                    "body_bytes": len(raw),
                    "step": step,
                    "before_ms": round(old_ms, 4),
                    "after_ms": round(new_ms, 4),
                    "speedup": round(old_ms / new_ms, 1),
                }
            )
    return rows


# -- report ------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if rows:
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def summarize(samples: list[Sample]) -> list[dict[str, Any]]:
    rows = []
    for server, _, _ in ROWS:
        for scenario in ("GET /bookmarks", "POST /bookmarks"):
            rates = [s.requests_per_s for s in samples if s.server == server and s.scenario == scenario]
            if rates:
                rows.append(
                    {
                        "server": server,
                        "scenario": scenario,
                        "median_rps": round(statistics.median(rates)),
                        "min_rps": round(min(rates)),
                        "max_rps": round(max(rates)),
                        "rounds": len(rates),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10; whole seconds)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--micro-reps", type=int, default=30, help="repetitions of each validation step (30)")
    parser.add_argument("--matrix-sizes", default="10,300", help="n of the n x n pairs whose validation cost is measured (10,300)")
    parser.add_argument("--skip-load", action="store_true", help="sizes and validation cost only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / "benchmarks" / "results" / f"{datetime.date.today().isoformat()}-bookmarks"
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()

    lines = sizes()
    write_csv(out / "loc.csv", lines)
    for row in lines:
        print(f"{row['version']:<12}{row['lines']:>5} lines  ({row['files']})")
    costs = validation(args.micro_reps, [int(n) for n in args.matrix_sizes.split(",")])
    write_csv(out / "validation.csv", costs)
    for row in costs:
        what = f"{row['n']}x{row['n']} pair ({row['body_bytes']} bytes) {row['step']:<9}"
        print(f"{what} before {row['before_ms']:>10.3f} ms, after {row['after_ms']:>8.3f} ms ({row['speedup']}x)")
    if not args.skip_load:
        samples = throughput(args, out)
        write_csv(out / "bookmarks_raw.csv", [attrs.asdict(sample) for sample in samples])
        summary = summarize(samples)
        write_csv(out / "bookmarks.csv", summary)
        for row in summary:
            spread = f"(min {row['min_rps']}, max {row['max_rps']}, {row['rounds']} rounds)"
            print(f"{row['server']:<28}{row['scenario']:<18} median {row['median_rps']:>7} req/s  {spread}")
    load_after = os.getloadavg()
    (out / "load.json").write_text(json.dumps({"loadavg_before": load_before, "loadavg_after": load_after, "cpus": os.cpu_count()}))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (a figure is worth keeping only from a quiet machine); wrote {out}")


if __name__ == "__main__":
    main()
