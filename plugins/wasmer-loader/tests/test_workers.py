"""wasmer-only behaviour: calls run in Python 3.10 worker processes, which are
started and warmed as serving starts, killed on timeout or when their client goes
away, lost when they crash, and replaced in the background."""

# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs
from wasmkernel_wasm.artifacts import write_cached
from wasmkernel_wasm.testing import config, dist, loader_of, make_app, use_loader  # noqa: F401  (fixtures)
from wasmkernel_wasmer_loader.environment import BOOT
from wasmkernel_wasmer_loader.pool import WorkerPool

from wasmkernel import Application, StartupError
from wasmkernel.testing import running, wait_until


@pytest.fixture
def loader_name() -> str:
    return str(use_loader("wasmer-loader"))


def workers() -> dict[int, str]:
    """This process's worker children: pid → state (R running, S sleeping...)."""
    found = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if BOOT.encode() in command and state != "Z":
                found[int(child)] = state
    return found


def warmed_up(app: Application) -> Callable[[], bool]:
    """The startup warm-up ended (the loader says ready: both workers warmed
    and given back) and no worker runs. A worker waiting for its preload
    sleeps like an idle one, so the process states alone do not say the
    warm-up ended; a test waits for this before it takes the running worker
    for its call's."""

    def check() -> bool:
        states = workers()
        return loader_of(app).readiness()[0] and len(states) == 2 and "R" not in states.values()

    return check


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` (no wall-clock bound on how long it may take, only a cap a loaded machine does not reach)."""
    await wait_until(condition, timeout=180, interval=0.02, what=what)


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_startup_starts_and_warms_the_workers_on_python_310(make_app: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMKERNEL_TEST_SECRET", "never in a worker")
    with capture_logs() as logs:
        async with running(make_app(config)):
            await wait_for(lambda: bool(events(logs, "wasm.workers_warm")), "the startup warm-up")
            pids = workers()
            assert len(pids) == 2
            for pid in pids:  # the environment's interpreter, a venv of a CPython 3.10
                assert os.path.basename(os.path.realpath(f"/proc/{pid}/exe")).startswith("python3.10")
                assert b"WASMKERNEL_TEST_SECRET" not in Path(f"/proc/{pid}/environ").read_bytes()  # none of the server's variables
        assert not workers()  # stopped with the application
    warm = events(logs, "wasm.workers_warm")
    assert [entry["workers"] for entry in warm] == [2]
    loaded = [entry["module"] for entry in events(logs, "wasm.module_loaded")]
    assert logs.index(warm[0]) > max(logs.index(entry) for entry in events(logs, "wasm.module_loaded"))  # compiled, then warmed
    assert sorted(loaded) == ["faults", "hello", "matmul", "wagi"]


async def test_the_application_serves_while_the_workers_warm_up(make_app: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    release = trio.Event()
    warm = WorkerPool.warm

    async def held(self: WorkerPool, count: int, preload: Any) -> list[int]:
        await release.wait()
        pids: list[int] = await warm(self, count, preload)
        return pids

    monkeypatch.setattr(WorkerPool, "warm", held)
    app = make_app(config)
    async with running(app) as client:
        loader = loader_of(app)
        ready, detail = loader.readiness()
        assert (ready, detail["workers"]) == (False, "warming up")  # started and serving, not ready yet
        assert (await client.get("/hello/early")).text == "Hello, early!\n"  # the call started a worker itself
        release.set()
        await wait_for(lambda: loader.readiness()[0], "readiness after the warm-up")
        assert len(workers()) == 2  # the warm-up started only the one missing


async def test_without_prewarm_a_worker_starts_on_the_first_call(make_app: Any, config: dict[str, Any]) -> None:
    async with running(make_app(config | {"prewarm": False})) as client:
        assert not workers()
        assert (await client.get("/hello/lazy")).text == "Hello, lazy!\n"
        assert len(workers()) == 1


async def test_timeout_kills_the_worker_and_a_replacement_is_warmed(make_app: Any, config: dict[str, Any], dist: Path) -> None:
    # The faults module under a second name with a short time limit (the spin never ends: only its 504 is awaited).
    config["modules"].append({"name": "spinner", "path": str(dist / "faults.wasm"), "kind": "http", "timeout": 2.0})
    config["routes"].append({"path": "/spinner/faults/{what}", "module": "spinner"})
    with capture_logs() as logs:
        app = make_app(config)
        async with running(app) as client:
            await wait_for(warmed_up(app), "the warm-up")
            before = set(workers())
            response = await client.get("/spinner/faults/spin")
            assert response.status_code == 504
            await wait_for(lambda: len(events(logs, "wasm.workers_warm")) == 2, "a replacement worker warmed")
            after = set(workers())
            assert len(before & after) == 1  # the spinning one was killed, the other kept
            assert (await client.get("/faults/ok")).status_code == 200
    assert [entry["workers"] for entry in events(logs, "wasm.workers_warm")] == [2, 1]


async def test_client_going_away_kills_its_call_and_worker(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 60.0
    app = make_app(config)
    async with running(app) as client:
        await wait_for(warmed_up(app), "the warm-up")
        before = set(workers())
        with trio.CancelScope() as scope:

            async def leave_when_spinning() -> None:
                await wait_for(lambda: "R" in workers().values(), "a spinning worker")
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(leave_when_spinning)
                await client.get("/faults/spin")
        await wait_for(lambda: len(workers()) == 2 and "R" not in workers().values() and set(workers()) != before, "the spinner killed and replaced")
        assert len(before & set(workers())) == 1
        assert loader_of(app).metrics.errors["faults", "handle", "cancelled"] == 1


async def test_killed_worker_fails_only_its_request(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][2]["timeout"] = 60.0
    app = make_app(config)
    async with running(app) as client:
        results = {}

        async def spin() -> None:
            results["spin"] = await client.get("/faults/spin")

        await wait_for(warmed_up(app), "the warm-up")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            busy = await wait_until(
                lambda: next((pid for pid, state in workers().items() if state == "R"), None), timeout=180, interval=0.02, what="a spinning worker"
            )
            os.kill(busy, signal.SIGKILL)
        assert results["spin"].status_code == 503
        assert "worker lost" in results["spin"].json()["detail"]
        assert (await client.get("/faults/ok")).status_code == 200
        await wait_for(lambda: len(workers()) == 2, "a replacement worker")
        assert busy not in workers()


async def test_bogus_interpreter_stops_startup_with_one_line(make_app: Any, config: dict[str, Any]) -> None:
    app = make_app(config | {"python": "/nonexistent/python3.10"})
    with pytest.raises(StartupError) as info:
        async with running(app):
            pass
    message = str(info.value)
    assert "\n" not in message
    assert "'/nonexistent/python3.10' is not a working CPython 3.10" in message
    assert "pyenv install 3.10" in message and "wasmtime loader needs none" in message
    assert "wasmer" not in sys.modules


async def test_a_cached_artifact_wasmer_refuses_makes_the_loader_unready_naming_the_module(make_app: Any, config: dict[str, Any]) -> None:
    """Cached artifacts are trusted once their sha256 frame checks (no 3.10
    process starts when every module is a hit); one wasmer cannot load fails
    the warm-up, which serving does not wait for: /readyz says not ready,
    naming the module and the file to remove, and the log says it once."""
    async with running(make_app(config | {"prewarm": False})):
        pass
    for artifact in Path(config["cache_dir"]).glob("*.wasmer"):
        write_cached(artifact, b"a well-framed artifact wasmer cannot load")
    app = make_app(config)
    with capture_logs() as logs:
        async with running(app):  # serving starts before the warm-up finds it
            loader = loader_of(app)
            await wait_for(lambda: loader.readiness()[1].get("workers") != "warming up", "the warm-up's end")
            ready, detail = loader.readiness()
    assert not ready
    message = detail["workers"]
    assert "\n" not in message and "its compiled artifact cannot be loaded" in message and "to recompile it" in message
    assert [entry["error"] for entry in events(logs, "wasm.worker_start_failed")] == [message]
