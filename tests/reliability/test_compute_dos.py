"""Anonymous compute must not starve everyone, for both loaders: a call's
time limit starts when it starts (not while it waits for a worker); the
queue is bounded (503 + Retry-After beyond); one module cannot take every
worker; a client that goes away cancels its call (real server, HTTP/1.1 and
HTTP/2 stream reset)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import httpx
import pytest
import trio
import trio.testing
from wasmkernel_wasm import WasmTimeout, WasmUnavailable
from wasmkernel_wasm.testing import LOADERS, base_config, dist, loader_of, use_loader, wasm_plugins

from tests.reliability.harness import Instance, full_plugins, installed, registry_toml, spawn, wasm_built, wasm_config
from wasmkernel.testing import app_from, running, time_requests, wait_until_sync

__all__ = ["dist"]

SPIN = 0.3


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return str(use_loader(str(request.param)))


def app(loader: str, dist: Path, tmp_path: Path, **overrides: Any) -> Any:
    config = base_config(dist, tmp_path / "cache", **overrides)
    return app_from({"router": {}, **wasm_plugins(loader, config)})


async def test_time_limit_starts_when_the_call_starts(loader_name: str, dist: Path, tmp_path: Path) -> None:
    application = app(loader_name, dist, tmp_path, workers=1)
    finished: list[float] = []
    async with running(application):
        loader = loader_of(application)
        start = time.monotonic()

        async def spin() -> None:
            with pytest.raises(WasmTimeout):
                await loader.call("faults", "spin", timeout=SPIN)
            finished.append(time.monotonic() - start)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(spin)
    # One worker: each call ran its full time limit, one after the other.
    assert sorted(finished)[-1] >= 3 * SPIN * 0.9, finished


async def test_full_queue_is_503_with_retry_after(loader_name: str, dist: Path, tmp_path: Path) -> None:
    application = app(loader_name, dist, tmp_path, workers=1, max_queued=2)
    refused: list[WasmUnavailable] = []
    async with running(application):
        loader = loader_of(application)

        async def spin() -> None:
            try:
                await loader.call("faults", "spin", timeout=SPIN)
            except WasmTimeout:
                pass
            except WasmUnavailable as exc:
                refused.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(spin)
                await trio.testing.wait_all_tasks_blocked()  # running, queued or refused before the next
        assert (await loader.call("faults", "ok", 1)).value == 2
    assert len(refused) >= 2
    assert all(exc.retry_after == 1 for exc in refused)


@pytest.mark.latency
async def test_one_module_cannot_take_every_worker(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = base_config(dist, tmp_path / "cache")
    config["modules"][2] |= {"max_concurrency": 1, "timeout": 1.0}
    application = app_from({"router": {}, **wasm_plugins(loader_name, config)})
    async with running(application) as client:
        baseline = await time_requests(client, "/hello/ada", 5)
        slots = loader_of(application)._limiter  # type: ignore[attr-defined]  # the loader's worker slots
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(client.get, "/faults/spin")
            await trio.testing.wait_all_tasks_blocked()  # one spin on a worker, the other waiting for the module
            assert slots.borrowed_tokens == 1
            start = time.monotonic()
            response = await client.get("/hello/ada")
            elapsed = time.monotonic() - start
        assert response.status_code == 200 and elapsed < max(0.5, 20 * baseline.median), (elapsed, baseline.median)


# -- client disconnect, through a real server ------------------------------------


@pytest.fixture(scope="module", params=LOADERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    loader = str(request.param)
    use_loader(loader)
    if not wasm_built() or not installed("errors", "hello"):
        pytest.skip("guest modules not built (make wasm)")
    workdir = tmp_path_factory.mktemp(f"dos-{loader}")
    plugins = full_plugins(workdir, wasm=wasm_config(workdir / "cache", faults_timeout=20.0))
    if loader != "wasmer-loader":
        plugins = {(loader if name == "wasmer-loader" else name): value for name, value in plugins.items()}
    instance = spawn(registry_toml(plugins), workdir)
    yield instance
    instance.stop()


def hello_time(server: Instance) -> float:
    start = time.monotonic()
    assert httpx.get(server.base + "/wasm/hello/ada", timeout=30).status_code == 200
    return time.monotonic() - start


def spins_in_progress(server: Instance, count: int) -> None:
    wait_until_sync(lambda: server.in_progress("faults") == count, what=f"{count} spin requests in progress")


@pytest.mark.server
def test_client_that_disconnects_cancels_its_call(server: Instance) -> None:
    sockets = []
    for _ in range(2):  # as many as there are workers
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /faults/spin HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(sock)
    spins_in_progress(server, 2)
    for sock in sockets:
        sock.close()
    spins_in_progress(server, 0)
    # Without cancellation both workers would spin for 20 s.
    assert hello_time(server) < 8.0  # a spinning call would hold its worker for 20 s
    assert server.process.poll() is None


@pytest.mark.server
def test_http2_stream_reset_cancels_its_call(server: Instance) -> None:
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        streams = []
        for _ in range(2):  # as many as there are workers
            stream = connection.get_next_available_stream_id()
            connection.send_headers(stream, [(":method", "GET"), (":path", "/faults/spin"), (":scheme", "http"), (":authority", "x")], end_stream=True)
            streams.append(stream)
        sock.sendall(connection.data_to_send())
        spins_in_progress(server, 2)
        for stream in streams:
            connection.reset_stream(stream)
        sock.sendall(connection.data_to_send())
        spins_in_progress(server, 0)
        # The connection stays open: only the streams were reset.
        assert hello_time(server) < 8.0  # a spinning call would hold its worker for 20 s
    assert server.process.poll() is None
