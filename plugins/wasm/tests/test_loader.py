"""Behaviour every module loader plugin shares, through the kernel (run once per loader: `loader_name`).

Modules run in worker processes or threads, on the real clock: these tests
assert order and counts; the durations they bound are scaled by a baseline
measured in the same test."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from structlog.testing import capture_logs
from wasmkernel_wasm import ArrayIn, ArrayOut, WasmTrap
from wasmkernel_wasm.testing import base_config, loader_of

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running, time_requests, wait_until


async def test_matmul_matches_numpy(make_app: Any, config: dict[str, Any]) -> None:
    n, k, m = 37, 21, 45
    rng = np.random.default_rng(1)
    a, b = rng.random((n, k)), rng.random((k, m))
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        for function in ("matmul_naive", "matmul_fast"):
            result = await loader.call("matmul", function, ArrayIn.of(a), ArrayIn.of(b), ArrayOut(n * m), n, k, m)
            np.testing.assert_allclose(np.frombuffer(result.outputs[0]).reshape(n, m), a @ b, rtol=1e-12)
        checksum = await loader.call("matmul", "bench_checksum", 100, 0, 100, 1)
        assert checksum.value == 749850
        with pytest.raises(Exception, match="no exported function 'nope'") as info:
            await loader.call("matmul", "nope")
        assert "/" not in str(info.value)


async def test_hello_route(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(config)) as client:
        response = await client.get("/hello/ada")
        assert (response.status_code, response.text) == (200, "Hello, ada!\n")
        assert response.headers["content-type"].startswith("text/plain")
        response = await client.get("/hello/ada", params={"format": "json"})
        assert response.json() == {"message": "Hello, ada!"}


async def test_wagi_echo_grants_nothing_by_default(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(config)) as client:
        response = await client.post("/wagi/a/b?x=1&env=HOME&env=X_MATCHED_ROUTE&read=/etc/passwd&headers=1", content=b"hi", headers={"X-Probe": "yes"})
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[:4] == ["method=POST", "path=/wagi/a/b", "query=x=1&env=HOME&env=X_MATCHED_ROUTE&read=/etc/passwd&headers=1", "body=HI"]
    assert "env=unset" in lines
    assert "env=/wagi/{rest:path}" in lines
    assert any(line.startswith("read=denied") for line in lines)
    assert "header.x-probe=yes" in lines


async def test_wagi_env_and_read_only_dir(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("hello")
    config["modules"][3] |= {"env": {"GREETING": "hi"}, "dirs": [{"host": str(data), "guest": "/data"}]}
    async with running(make_app(config)) as client:
        response = await client.get("/wagi/x?env=GREETING&read=/data/f.txt&write=/data/f.txt")
    lines = response.text.splitlines()
    assert "env=hi" in lines
    assert "read=ok 5" in lines
    assert (data / "f.txt").read_text() == "hello"  # read-only: denied, or a per-call copy (wasmer)


async def test_trap_is_500_then_next_call_succeeds(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    async with running(app) as client:
        with capture_logs() as logs:
            response = await client.get("/faults/trap")
        assert response.status_code == 500
        # Issue 22 class 15: the trap's details go to the log, never to the client.
        assert response.json()["detail"] == "module 'faults' function 'handle' trapped (the server log says why)"
        (line,) = [entry for entry in logs if entry["event"] == "wasm.call_failed"]
        assert (line["module"], line["function"], line["reason"]) == ("faults", "handle", "unreachable")
        assert (await client.get("/faults/ok")).status_code == 200
        with pytest.raises(WasmTrap, match="module 'faults' function 'trap' trapped"):
            await loader_of(app).call("faults", "trap")
        assert (await loader_of(app).call("faults", "ok", 41)).value == 42


@pytest.mark.latency
async def test_spin_times_out_while_other_requests_stay_fast(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 1.0
    app = make_app(config)
    async with running(app) as client:
        baseline = await time_requests(client, "/faults/ok", 10)
        results: dict[str, Any] = {}

        async def spin() -> None:
            start = time.perf_counter()
            results["spin"] = await client.get("/faults/spin")
            results["spin_seconds"] = time.perf_counter() - start

        slots = loader_of(app)._limiter  # the loader's worker slots
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            await wait_until(lambda: slots.borrowed_tokens == 1, what="the spin holding a worker")
            during = await time_requests(client, "/faults/ok", 10)
            # Served meanwhile: all ten answered before the spin was.
            assert "spin" not in results
        assert results["spin"].status_code == 504
        assert "exceeded its time limit of 1 s" in results["spin"].json()["detail"]
        assert 1.0 <= results["spin_seconds"] < 1.0 + max(1.0, 50 * baseline.median)
        assert during.median < max(0.05, 5 * baseline.median)
        assert (await client.get("/faults/ok")).status_code == 200


async def test_memory_bomb_is_507_and_stack_overflow_500(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 30.0  # exhausting the stack takes wasmer ~1 s on a busy machine
    async with running(make_app(config)) as client:
        response = await client.get("/faults/oom")
        assert response.status_code == 507
        assert "memory limit of 32 MiB" in response.json()["detail"]
        with capture_logs() as logs:
            response = await client.get("/faults/stack")
        assert response.status_code == 500
        assert "call stack" not in response.text
        assert any("call stack exhausted" in entry.get("reason", "") for entry in logs)
        assert (await client.get("/faults/ok")).status_code == 200


async def test_configured_memory_limit_caps_growth(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["memory_limit_mb"] = 4
    app = make_app(config)
    async with running(app):
        pages = (await loader_of(app).call("faults", "grow_pages")).value
        assert pages == 4 * 16 - 17  # grown from the initial 17 pages up to the 4 MiB cap
        assert loader_of(app).modules()[2].memory_limit_mb == 4


async def test_state_does_not_leak_between_calls_unless_stateful(make_app: Any, config: dict[str, Any]) -> None:
    config["workers"] = 1
    app = make_app(config)
    async with running(app) as client:
        assert [(await client.get("/faults/counter")).text for _ in range(3)] == ["1", "1", "1"]
    config["modules"][2]["stateful"] = True
    app = make_app(config)
    async with running(app) as client:
        assert [(await client.get("/faults/counter")).text for _ in range(3)] == ["1", "2", "3"]


async def test_second_start_hits_the_compile_cache(make_app: Any, config: dict[str, Any]) -> None:
    """The second start compiles nothing: every artifact is the first start's, untouched."""
    config |= {"prewarm": False, "workers": 1}
    artifacts = []
    for expected in ("compiled", "hit"):
        app = make_app(config)
        async with running(app) as client:
            assert {info.cache for info in loader_of(app).modules()} == {expected}
            assert (await client.get("/hello/x")).status_code == 200
        # Files only: a loader's own folders (wasmer's worker code) are not compile artifacts.
        artifacts.append({path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in Path(config["cache_dir"]).iterdir() if path.is_file()})
    assert artifacts[1] == artifacts[0] and len(artifacts[0]) == len(config["modules"])


async def test_corrupt_cache_file_is_recompiled(make_app: Any, config: dict[str, Any]) -> None:
    config |= {"prewarm": False, "workers": 1}
    async with running(make_app(config)):
        pass
    for artifact in Path(config["cache_dir"]).iterdir():
        if artifact.is_file():  # not a loader's own folders (wasmer's worker code)
            artifact.write_bytes(artifact.read_bytes()[:100])
    app = make_app(config)
    async with running(app) as client:
        assert {info.cache for info in loader_of(app).modules()} == {"compiled"}
        assert (await client.get("/hello/x")).status_code == 200


async def test_sha256_pin_mismatch_stops_startup(make_app: Any, config: dict[str, Any], dist: Path) -> None:
    config["modules"][1]["sha256"] = "0" * 64
    with pytest.raises(StartupError, match="wasm module 'hello': sha256 mismatch"):
        async with running(make_app(config)):
            pass
    config["modules"][1]["sha256"] = hashlib.sha256((dist / "hello.wasm").read_bytes()).hexdigest()
    async with running(make_app(config)) as client:
        assert (await client.get("/hello/x")).status_code == 200


def test_bad_config_is_refused(make_app: Any, config: dict[str, Any]) -> None:
    with pytest.raises(RegistryError, match=r"config.modules\[0\].compiler: unknown compiler 'llvm'"):
        make_app(config | {"modules": [config["modules"][0] | {"compiler": "llvm"}], "routes": []})
    with pytest.raises(RegistryError, match="is a compute module"):
        make_app(config | {"routes": [{"path": "/m", "module": "matmul"}]})
    with pytest.raises(RegistryError, match=r"modules\[0\].kind"):
        make_app(config | {"modules": [config["modules"][0] | {"kind": "nope"}]})


async def test_hot_reload_survives_garbage_and_picks_up_new_module(make_app: Any, dist: Path, tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    shutil.copy(dist / "hello.wasm", module)
    config = base_config(dist, tmp_path / "cache", watch=True, watch_interval=0.05)
    config["modules"][1]["path"] = str(module)
    app = make_app(config)
    with capture_logs() as logs:
        async with running(app) as client:
            module.write_bytes(b"\0asm garbage")
            await wait_until(lambda: any(e["event"] == "wasm.reload_failed" and e.get("module") == "hello" for e in logs), what="the garbage refused")
            assert (await client.get("/hello/x")).status_code == 200
            assert loader_of(app).modules()[1].generation == 1
            shutil.copy(dist / "faults.wasm", module)  # a different valid http module
            await wait_until(lambda: loader_of(app).modules()[1].generation == 2, what="the new module loaded")
            assert (await client.get("/hello/x")).status_code == 404  # faults answers unknown paths with 404


async def test_metrics_count_calls_and_errors(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    async with running(app) as client:
        await client.get("/faults/ok")
        await client.get("/faults/trap")
        await client.get("/faults/oom")
    samples = [s for _, source in app.hooks.gather("wasmkernel_metric_sources") for s in source.collect()]
    calls = {(s.labels["module"], s.labels["function"]): s.value for s in samples if s.name == "wasm_calls_total"}
    errors = {s.labels["kind"]: s.value for s in samples if s.name == "wasm_errors_total"}
    assert calls[("faults", "handle")] == 3
    assert errors == {"trap": 1, "memory": 1}
