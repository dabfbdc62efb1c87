"""`wasmkernel.Supervisor`: a background task that dies is logged, reported
as not ready and restarted; one that fails before it is ready fails startup."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs
from wasmkernel_health import Supervisor


async def test_a_task_that_dies_is_reported_and_restarted(autojump_clock: trio.testing.MockClock) -> None:
    supervisor = Supervisor("test", backoff=1.0, max_backoff=4.0)
    runs: list[float] = []
    release = trio.Event()

    async def flaky(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        runs.append(trio.current_time())
        task_status.started()
        if len(runs) <= 3:
            await trio.sleep(0.5)
            raise RuntimeError(f"crash {len(runs)}")
        await release.wait()

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "flaky", flaky)
            assert supervisor.readiness() == (True, {"flaky": {"running": True, "restarts": 0, "last_error": None}})
            await trio.sleep(0.6)  # the first run died; the restart waits its backoff
            ready, detail = supervisor.readiness()
            assert not ready and detail["flaky"] == {"running": False, "restarts": 0, "last_error": "RuntimeError"}
            while len(runs) < 4:
                await trio.sleep(0.1)
            assert supervisor.readiness()[0] and supervisor.tasks["flaky"].restarts == 3
            nursery.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert gaps == pytest.approx([1.5, 2.5, 4.5])  # 0.5 s of running, then backoffs of 1, 2, 4 s
    assert [entry["event"] for entry in logs].count("task.crashed") == 3


async def test_a_task_that_returns_is_restarted_too(autojump_clock: trio.testing.MockClock) -> None:
    supervisor = Supervisor("test")
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await trio.sleep_forever()

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, "once", once)
            while runs < 2:
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert any(entry["event"] == "task.ended" for entry in logs)


async def test_a_task_failing_before_it_is_ready_fails_startup() -> None:
    async def broken(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("address in use")

    async with trio.open_nursery() as nursery:
        with pytest.raises(OSError, match="address in use"):
            await nursery.start(Supervisor("test").run, "broken", broken)
