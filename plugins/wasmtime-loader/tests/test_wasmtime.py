"""wasmtime-only behaviour: calls run in threads, stopped by epoch deadlines."""

# ruff: noqa: F811

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from wasmkernel_wasm import WasmMemoryLimit, WasmTimeout

from wasmkernel.testing import running

# The shared fixtures (config, dist, make_app) live in the repository's
# tests/wasm: make it importable when this directory is run on its own. Tests
# take them as arguments, hence the file-wide F811 exemption.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from wasmkernel_wasm.testing import config, dist, loader_of, make_app, use_loader  # noqa: F401  (fixtures)


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmtime-loader"))


def _child_processes() -> set[str]:
    return {child for task in Path(f"/proc/{os.getpid()}/task").iterdir() for child in (task / "children").read_text().split()}


async def test_timeout_interrupts_the_call_in_its_thread(make_app: Any, config: dict[str, Any]) -> None:
    config["workers"] = 1  # the next call can only run once the spinning thread has returned
    app = make_app(config)
    children = _child_processes()
    async with running(app):
        loader = loader_of(app)
        start = time.perf_counter()
        with pytest.raises(WasmTimeout, match=r"function .spin. exceeded its time limit of 0\.3 s"):
            await loader.call("faults", "spin", timeout=0.3)
        assert 0.3 <= time.perf_counter() - start < 0.45
        start = time.perf_counter()
        assert (await loader.call("faults", "ok", 1)).value == 2
        assert time.perf_counter() - start < 0.2
        assert _child_processes() == children  # nothing was spawned, nothing was killed


async def test_stop_interrupts_calls_in_flight(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    async with running(app):

        async def spin() -> None:
            with pytest.raises(trio.Cancelled):
                await loader_of(app).call("faults", "spin", timeout=30.0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        start = time.perf_counter()
    assert time.perf_counter() - start < 0.5  # the abandoned thread was interrupted, not waited for
    assert loader_of(app)._threads.borrowed_tokens == 0  # and it has returned


async def test_memory_limit_drops_the_kept_instance(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2] |= {"stateful": True, "memory_limit_mb": 8}
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        assert [(await loader.call("faults", "counter")).value for _ in range(2)] == [1, 2]
        with pytest.raises(WasmMemoryLimit, match="module 'faults' function 'grow' exceeded its memory limit of 8 MiB"):
            await loader.call("faults", "grow", 100)
        assert (await loader.call("faults", "counter")).value == 1  # a fresh instance


async def test_wasi_read_only_dir_is_enforced(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("hello")
    config["modules"][3] |= {"dirs": [{"host": str(data), "guest": "/data"}]}
    async with running(make_app(config)) as client:
        lines = (await client.get("/wagi/x?read=/data/f.txt&write=/data/f.txt")).text.splitlines()
    assert "read=ok 5" in lines
    assert any(line.startswith("write=denied") for line in lines)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
async def test_two_calls_run_in_parallel(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        n = 300
        await loader.call("matmul", "bench_checksum", n, 0, n, 0)  # warm up
        durations: list[float] = []

        async def one() -> None:
            durations.append((await loader.call("matmul", "bench_checksum", n, 0, n, 0)).duration_ms / 1000)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
        wall = time.perf_counter() - start
    assert wall < 0.75 * sum(durations), (wall, durations)


async def test_uninterruptible_code_times_out_but_runs_to_its_end(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][0]["compiler"] = "cranelift-uninterruptible"
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        start = time.perf_counter()
        with pytest.raises(WasmTimeout, match="function 'bench_checksum' exceeded its time limit"):
            await loader.call("matmul", "bench_checksum", 600, 0, 600, 0, timeout=0.02)
        assert time.perf_counter() - start < 0.1
        assert loader.modules()[0].compiler == "cranelift-uninterruptible"
        assert (await loader.call("matmul", "bench_checksum", 100, 0, 100, 1)).value == 749850
