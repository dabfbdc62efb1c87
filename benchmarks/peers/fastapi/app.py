"""FastAPI peer for the WasmKernel /matmul HTTP benchmark (see ../README.md).

Run: python -m uvicorn app:app --host 127.0.0.1 --port $PORT --no-access-log --log-level warning
Kernels: ``naive`` (pure-Python lists, i-k-j; the default) and ``numpy`` (A @ B).
"""

from __future__ import annotations

import re
import time

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

_DIGITS = re.compile(r"[0-9]{1,9}")
KERNELS = ("naive", "numpy")


def _error(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=422)


def build_lists(n: int) -> tuple[list[list[float]], list[list[float]]]:
    a = [[((i * n + j) % 7) * 0.5 for j in range(n)] for i in range(n)]
    b = [[((i * n + j) % 5) * 0.25 for j in range(n)] for i in range(n)]
    return a, b


def matmul_naive(a: list[list[float]], b: list[list[float]], n: int) -> list[list[float]]:
    """Zero C; for i, for k, a = A[i][k], for j: C[i][j] += a*B[k][j]."""
    c = [[0.0] * n for _ in range(n)]
    rng = range(n)
    for i in rng:
        ai = a[i]
        ci = c[i]
        for k in rng:
            aik = ai[k]
            bk = b[k]
            for j in rng:
                ci[j] += aik * bk[j]
    return c


def build_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n * n, dtype=np.int64).reshape(n, n)
    return (idx % 7) * 0.5, (idx % 5) * 0.25


@app.get("/hello", response_class=PlainTextResponse)
def hello() -> str:
    return "Hello, world!"


# A plain ``def``: FastAPI runs it in its threadpool, so the event loop keeps serving.
@app.get("/matmul")
def matmul(n: str | None = None, kernel: str = "naive") -> JSONResponse:
    if n is None or not _DIGITS.fullmatch(n) or not 1 <= int(n) <= 5000:
        return _error("n must be an integer in 1..5000")
    size = int(n)
    if kernel not in KERNELS:
        return _error(f"unknown kernel {kernel!r} (expected one of {', '.join(KERNELS)})")
    if kernel == "naive":
        a, b = build_lists(size)
        t0 = time.perf_counter()
        c = matmul_naive(a, b, size)
        ms = (time.perf_counter() - t0) * 1000.0
        checksum = sum(sum(row) for row in c)
    else:
        an, bn = build_numpy(size)
        t0 = time.perf_counter()
        cn = an @ bn
        ms = (time.perf_counter() - t0) * 1000.0
        checksum = float(cn.sum())
    return JSONResponse({"n": size, "kernel": kernel, "checksum": checksum, "compute_ms": ms})
