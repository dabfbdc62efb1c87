"""wasmtime-only behaviour: calls run in threads, stopped by epoch deadlines.

Calls run in real threads, so virtual time cannot stand in for the clock:
these tests check order and counts (a thread still running or returned, no
shutdown warning), and the few durations they bound are scaled by a baseline
measured in the same test (`baseline`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from wasmkernel_wasm import ModuleLoader, WasmMemoryLimit, WasmTimeout
from wasmkernel_wasm.testing import loader_of, use_loader

from wasmkernel.testing import running, time_calls, wait_until


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmtime-loader"))


def _child_processes() -> set[str]:
    return {child for task in Path(f"/proc/{os.getpid()}/task").iterdir() for child in (task / "children").read_text().split()}


def _threads(loader: ModuleLoader) -> int:
    """Call threads still running, abandoned ones included."""
    return int(loader._threads.borrowed_tokens)


async def baseline(loader: ModuleLoader) -> float:
    """Median seconds of a trivial call here and now (grows with the machine's load)."""
    return (await time_calls(lambda: loader.call("faults", "ok", 1), 5)).median


@pytest.mark.latency
async def test_timeout_interrupts_the_call_in_its_thread(make_app: Any, config: dict[str, Any]) -> None:
    config["workers"] = 1  # the next call can only run once the spinning thread has returned
    app = make_app(config)
    children = _child_processes()
    async with running(app):
        loader = loader_of(app)
        call = await baseline(loader)
        start = time.perf_counter()
        with pytest.raises(WasmTimeout, match=r"function .spin. exceeded its time limit of 0\.3 s"):
            await loader.call("faults", "spin", timeout=0.3)
        assert 0.3 <= time.perf_counter() - start < 0.3 + max(0.15, 10 * call)
        await wait_until(lambda: _threads(loader) == 0, what="the spinning thread interrupted")
        start = time.perf_counter()
        assert (await loader.call("faults", "ok", 1)).value == 2
        assert time.perf_counter() - start < max(0.2, 10 * call)
        assert _child_processes() == children  # nothing was spawned, nothing was killed


async def test_stop_interrupts_calls_in_flight(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    with structlog.testing.capture_logs() as logs:
        async with running(app):

            async def spin() -> None:
                with pytest.raises(trio.Cancelled):
                    await loader_of(app).call("faults", "spin", timeout=30.0)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(spin)
                await wait_until(lambda: _threads(loader_of(app)) == 1, what="the spin running in its thread")
                nursery.cancel_scope.cancel()
    # At shutdown the abandoned thread was interrupted, not waited for (that
    # would take STOP_GRACE and log "wasm.calls_abandoned"), and it has returned.
    assert [entry for entry in logs if entry["event"] == "wasm.calls_abandoned"] == []
    assert _threads(loader_of(app)) == 0


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


@pytest.mark.latency
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
async def test_two_calls_run_in_parallel(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config)
    async with running(app):
        loader = loader_of(app)
        n = 300  # both calls' own durations are the baseline of the wall time
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
        with pytest.raises(WasmTimeout, match="function 'bench_checksum' exceeded its time limit"):
            await loader.call("matmul", "bench_checksum", 600, 0, 600, 0, timeout=0.02)
        assert _threads(loader) == 1  # answered at the limit, while the call still runs
        await wait_until(lambda: _threads(loader) == 0, what="the uninterruptible call running to its end")
        assert loader.modules()[0].compiler == "cranelift-uninterruptible"
        assert (await loader.call("matmul", "bench_checksum", 100, 0, 100, 1)).value == 749850
