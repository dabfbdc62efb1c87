"""End to end through the real wasmer loader, the matmul.wasm module and the
auth plugins (skipped when one of them is missing)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wasmkernel_wasm.testing import wasm_plugins

from wasmkernel import Application
from wasmkernel.testing import app_from, project_root, running

MATMUL_WASM = project_root() / "wasm_modules" / "dist" / "matmul.wasm"
SECRET = "matmul-test-secret-0123456789-abcdefghijklmnop"
NEEDED = ("wasmkernel_wasmer_loader", "wasmkernel_auth_jwt", "wasmkernel_authz", "jwt")

pytestmark = [
    pytest.mark.skipif(not MATMUL_WASM.exists(), reason="wasm_modules/dist/matmul.wasm is not built (run wasm_modules/build.sh)"),
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in NEEDED),
        reason="needs the wasmer-loader, auth-jwt and authz plugins and PyJWT installed",
    ),
]


def wasm_app(tmp_path: Path, **matmul: Any) -> Application:
    loader = {"cache_dir": str(tmp_path / "cache"), "workers": 2, "watch": False, "modules": [{"name": "matmul", "path": str(MATMUL_WASM)}]}
    return app_from(
        {
            **wasm_plugins("wasmer-loader", loader),
            "auth-jwt": {"config": {"algorithms": ["HS256"], "secret": SECRET}},
            "authz": {},
            "router": {},
            "matmul": {"config": matmul},
        },
        kernel={"allow_unenforced": True},  # matmul checks its own query
    )


def token(*scopes: str) -> dict[str, str]:
    import jwt

    claims = {"sub": "tester", "scope": " ".join(scopes), "exp": int(time.time()) + 600}
    return {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


async def test_benchmark_checksums_are_exact(tmp_path: Path) -> None:
    expected = {1: 0.0, 2: 2.75, 100: 749850.0, 300: 20249775.0}  # 300 ≥ split_min_n: rows split over two workers
    async with running(wasm_app(tmp_path, split_min_n=256)) as client:
        for kernel in ("naive", "fast"):
            for n, checksum in expected.items():
                response = await client.get("/matmul", params={"n": n, "kernel": kernel})
                assert response.status_code == 200, response.text
                assert response.json()["checksum"] == checksum, (kernel, n)
        assert (await client.get("/matmul?n=5001")).status_code == 422


async def test_api_multiplies_and_enforces_the_scope(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(17, 9)), rng.normal(size=(9, 5))
    body = {"a": a.tolist(), "b": b.tolist()}
    async with running(wasm_app(tmp_path)) as client:
        anonymous = await client.post("/api/matmul", json=body)
        unscoped = await client.post("/api/matmul", json=body, headers=token("other"))
        ok = await client.post("/api/matmul", json=body, headers=token("matrix:compute"))
        ragged = await client.post("/api/matmul", json={"a": [[1, 2], [3]], "b": [[1], [2]]}, headers=token("matrix:compute"))
        mismatched = await client.post("/api/matmul", json={"a": [[1, 2]], "b": [[1, 2]]}, headers=token("matrix:compute"))
        too_large = await client.post("/api/matmul", json={"a": [[1.0]] * 513, "b": [[1.0]]}, headers=token("matrix:compute"))
    assert anonymous.status_code == 401
    assert unscoped.status_code == 403
    assert ok.status_code == 200, ok.text
    np.testing.assert_allclose(np.array(ok.json()["c"]), a @ b, rtol=1e-12, atol=1e-12)
    for response in (ragged, mismatched, too_large):
        assert response.status_code == 422, response.text
        assert response.json()["errors"]
