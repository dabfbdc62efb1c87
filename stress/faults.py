"""Faults under load: a background load measures latency while faults are
injected one after another, round robin, for a bounded time.

    .venv/bin/python -m stress.faults --duration 300
    .venv/bin/python -m stress.faults --duration 60     # quick

Faults: WASM trap, infinite loop (504), memory bomb (507), stack exhaustion,
a WASM worker SIGKILLed mid-call, the module file replaced by garbage and by
a truncated copy (hot reload must keep the old module), clients that
disconnect mid-body, and slowloris connections. After each fault the server
must answer `/faults/ok` within 5 s ("recovered"). The background load
(/hello and a WASM handler) must see no unexpected answer. Writes
stress/results/faults.csv and faults-background.csv.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

from stress.load import Recorder, Scenario, generate, role_of, table, tree, write_csv
from tests.reliability.harness import DIST, Instance, full_plugins, registry_toml, spawn, token, wasm_config

TIMEOUT = 1.0
Fault = Callable[[Instance, httpx.AsyncClient, Path], Awaitable[bool]]


async def expect_status(client: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await client.get(path)).status_code == status


async def trap(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    return await expect_status(client, "/faults/trap", 500)


async def spin(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    started = time.monotonic()
    return await expect_status(client, "/faults/spin", 504) and time.monotonic() - started < TIMEOUT + 1.5


async def memory_bomb(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    return await expect_status(client, "/faults/oom", 507)


async def stack(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    return await expect_status(client, "/faults/stack", 500)


async def kill_worker(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    statuses: list[int] = []

    async def call() -> None:
        statuses.append((await client.get("/faults/spin")).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await trio.sleep(0.3)
        busy = [p for p in tree(instance.process.pid) if role_of(p) == "wasm-worker" and p.cpu_percent(interval=0.05) > 50]
        for process in busy[:1]:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
    return bool(busy) and statuses[0] in (500, 503, 504)


async def _reload(module: Path, content: bytes, client: httpx.AsyncClient) -> bool:
    original = module.read_bytes()
    module.write_bytes(content)
    await trio.sleep(0.8)
    served = (await client.get("/faults/ok")).text == "ok"
    module.write_bytes(original)
    await trio.sleep(0.8)
    return served


async def garbage_reload(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    return await _reload(module, b"not wasm at all" * 100, client)


async def truncated_reload(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    return await _reload(module, module.read_bytes()[:1000], client)


async def disconnects(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    head = f"POST /api/matmul HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token()}\r\nContent-Type: application/json\r\nContent-Length: 9000\r\n\r\n"
    for _ in range(20):
        stream = await trio.open_tcp_stream("127.0.0.1", instance.port)
        await stream.send_all(head.encode() + b'{"a": [[1')
        await stream.aclose()
    return True


async def slowloris(instance: Instance, client: httpx.AsyncClient, module: Path) -> bool:
    streams = [await trio.open_tcp_stream("127.0.0.1", instance.port) for _ in range(50)]
    for stream in streams:
        await stream.send_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
    await trio.sleep(6)  # hypercorn's keep-alive timeout (5 s) closes them
    closed = 0
    for stream in streams:
        with trio.move_on_after(0.5):
            try:
                if await stream.receive_some(100) == b"":
                    closed += 1
            except trio.BrokenResourceError:
                closed += 1
        await stream.aclose()
    return closed == len(streams)


FAULTS: dict[str, Fault] = {
    "trap": trap,
    "spin (timeout)": spin,
    "memory bomb": memory_bomb,
    "stack exhaustion": stack,
    "worker SIGKILL": kill_worker,
    "garbage .wasm reload": garbage_reload,
    "truncated .wasm reload": truncated_reload,
    "client disconnects x20": disconnects,
    "slowloris x50": slowloris,
}


async def recovered(client: httpx.AsyncClient) -> bool:
    with trio.move_on_after(5):
        while True:
            try:
                if (await client.get("/faults/ok")).text == "ok":
                    return True
            except httpx.HTTPError:
                pass
            await trio.sleep(0.1)
    return False


async def run(duration: float, concurrency: int, workdir: Path) -> int:
    modules = workdir / "modules"
    modules.mkdir()
    for name in ("matmul", "hello", "faults", "wagi_echo"):
        shutil.copy(DIST / f"{name}.wasm", modules / f"{name}.wasm")
    config = wasm_config(workdir / "cache", dist=modules, faults_timeout=TIMEOUT, watch=True)
    instance = spawn(registry_toml(full_plugins(workdir, wasm=config)), workdir)
    results: defaultdict[str, dict[str, Any]] = defaultdict(lambda: {"injected": 0, "failed_cleanly": 0, "recovered": 0})
    background = Recorder()
    try:
        load = [Scenario("hello", "GET", "/hello", weight=3), Scenario("wasm http handler", "GET", "/wasm/hello/x")]
        async with trio.open_nursery() as nursery, httpx.AsyncClient(base_url=instance.base, timeout=30) as client:
            nursery.start_soon(lambda: generate(instance.base, load, concurrency=concurrency, seconds=duration, recorder=background, pause=0.01))
            deadline = trio.current_time() + duration - 8
            while trio.current_time() < deadline:
                for name, fault in FAULTS.items():
                    if trio.current_time() >= deadline:
                        break
                    row = results[name]
                    row["injected"] += 1
                    row["failed_cleanly"] += await fault(instance, client, modules / "faults.wasm")
                    row["recovered"] += await recovered(client)
                    await trio.sleep(0.5)
        alive = instance.process.poll() is None
        crashes = [r for r in instance.log_lines() if r.get("event") == "request.failed" or r.get("level") == "critical"]
    finally:
        instance.stop()
    fault_rows = [{"fault": name, **row} for name, row in results.items()]
    print(table(fault_rows, "\nfaults injected"))
    print(table(background.rows(), "\nbackground load during the faults"))
    print(f"\nserver alive: {alive}; crash lines logged: {len(crashes)}")
    write_csv("faults", fault_rows)
    write_csv("faults-background", background.rows())
    clean = all(r["injected"] == r["failed_cleanly"] == r["recovered"] for r in results.values())
    return 0 if alive and clean and not background.unexpected and not crashes else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="background clients (default 8)")
    args = parser.parse_args()
    if not 20 <= args.duration <= 3600:
        parser.error("--duration must be between 20 and 3600 seconds")
    print(f"faults: {args.duration:.0f} s, {args.concurrency} background clients", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-faults-") as workdir:
        return trio.run(run, args.duration, args.concurrency, Path(workdir))


if __name__ == "__main__":
    raise SystemExit(main())
