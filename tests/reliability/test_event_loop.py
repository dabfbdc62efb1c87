"""A large request does not stall the others: while `POST /api/matmul`
decodes, checks and multiplies two 300x300 matrices, `GET /health` keeps
answering about as fast as it does on an idle server (measured first, in the
same test). Checking that body with the pure-Python JSON Schema validator,
on the event loop, held every other request for over a second."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import orjson
import trio
from wasmkernel_wasm.testing import base_config, dist, use_loader, wasm_plugins

from wasmkernel.testing import app_from, running

__all__ = ["dist"]

N = 300
API_KEY = "event-loop-test-key-0123456789"


async def health_latency(client: httpx.AsyncClient) -> float:
    """From when a /health request arrives to its answer: in-process, it
    waits for the event loop like a request from a socket would (the
    checkpoint lets every other runnable task go first)."""
    started = time.perf_counter()
    await trio.lowlevel.checkpoint()
    response = await client.get("/health")
    assert response.status_code == 200
    return time.perf_counter() - started


async def test_health_answers_while_a_300x300_body_is_handled(dist: Path, tmp_path: Path) -> None:
    loader = use_loader("wasmer-loader")
    app = app_from(
        {
            "errors": {},
            "authz": {},
            "validation": {},
            "auth-apikey": {"config": {"key": [{"name": "ci", "key": API_KEY, "scopes": ["matrix:compute"]}]}},
            "router": {},
            "health": {},
            **wasm_plugins(loader, base_config(dist, tmp_path)),
            "matmul": {},
        }
    )
    matrix = [[(i * N + j) % 7 * 0.5 for j in range(N)] for i in range(N)]
    body = orjson.dumps({"a": matrix, "b": matrix})  # encoded before measuring: the client shares the loop
    headers = {"X-API-Key": API_KEY, "content-type": "application/json"}
    async with running(app) as client:
        started = time.perf_counter()
        warm = await client.post("/api/matmul", content=body, headers=headers)  # worker, caches, code paths
        assert warm.status_code == 200, warm.text[:300]
        # The baseline spans as long as one POST takes, so it sees as much of the machine's noise.
        window = time.perf_counter() - started
        baseline: list[float] = []
        started = time.perf_counter()
        while len(baseline) < 20 or time.perf_counter() - started < window:
            baseline.append(await health_latency(client))
        during: list[float] = []
        statuses: list[int] = []

        async def multiply() -> None:
            statuses.append((await client.post("/api/matmul", content=body, headers=headers)).status_code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(multiply)
            while not statuses:
                during.append(await health_latency(client))
    assert statuses == [200]
    assert len(during) >= 3, "the event loop never served /health while the body was handled"
    median, worst = statistics.median(baseline), max(baseline)
    message = f"/health took {max(during) * 1e3:.1f} ms meanwhile; idle: median {median * 1e3:.2f} ms, max {worst * 1e3:.2f} ms"
    # Decoding the body (orjson, in a worker thread) still holds the GIL for
    # its few milliseconds; the pure-Python validator held the loop for 1.3 s
    # (quiet machine) to 10 s (busy), thousands of idle /health answers.
    # Beside 12 busy loops one GIL hand-over can cost several scheduler
    # slices (188 ms seen against an idle worst of 24 ms): the bound scales
    # with the idle worst, which grows with the machine's load.
    assert max(during) <= 200 * median + 10 * worst, message
