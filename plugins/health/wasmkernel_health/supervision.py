"""Supervised background tasks: a plugin's long-running task that dies is
logged, reported as not ready, and restarted.

A plugin creates one `Supervisor` and starts each background task through it
in ``app.nursery`` (``await app.nursery.start(supervisor.run, "name", fn)``).
A `fn` with a ``task_status`` parameter is started like any ``nursery.start``
target (it reports when it is ready); any other is ready at once. A failure
before the task is ready stops startup as usual; after that,
an exception ending the task (or the task returning) is logged
(``task.crashed`` with the traceback, or ``task.ended``) and the task is
started again after a backoff (doubling from `backoff` to `max_backoff`
seconds, reset once it has run for `max_backoff`). `readiness` is a probe for
the health plugin's ``wasmkernel_readiness`` hook: not ready while any task
is down, with each task's restarts and last error as detail.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import structlog
import trio

log = structlog.get_logger("wasmkernel.health.supervision")

#: A task `Supervisor.run` starts: ``async def fn(task_status=trio.TASK_STATUS_IGNORED)``.
TaskFunction = Callable[..., Awaitable[Any]]


@attrs.define
class TaskState:
    """What `/readyz` shows of one supervised task."""

    running: bool = False
    restarts: int = 0
    last_error: str | None = None


@attrs.define
class Supervisor:
    """Runs and restarts the background tasks of one plugin (`owner`)."""

    owner: str
    backoff: float = 0.1
    max_backoff: float = 10.0
    tasks: dict[str, TaskState] = attrs.field(factory=dict)

    async def run(self, name: str, fn: TaskFunction, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run `fn` as task `name` until cancelled, restarting it whenever it ends."""
        state = self.tasks.setdefault(name, TaskState())
        delay, first = self.backoff, True
        while True:
            began = trio.current_time()
            try:
                async with trio.open_nursery() as nursery:
                    if "task_status" in inspect.signature(fn).parameters:
                        await nursery.start(fn)
                    else:
                        nursery.start_soon(fn)
                    state.running = True
                    if first:
                        first = False
                        task_status.started()
                log.error("task.ended", owner=self.owner, task=name, restarts=state.restarts)
                state.last_error = "the task returned"
            except Exception as exc:
                if first:
                    raise _lone(exc) from None
                log.exception("task.crashed", owner=self.owner, task=name, restarts=state.restarts)
                state.last_error = type(_lone(exc)).__name__
            state.running = False
            if trio.current_time() - began >= self.max_backoff:
                delay = self.backoff
            await trio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
            state.restarts += 1

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(every task running, {name: {running, restarts, last_error}})."""
        return all(state.running for state in self.tasks.values()), {name: attrs.asdict(state) for name, state in self.tasks.items()}


def _lone(exc: BaseException) -> BaseException:
    """A nursery's only error as itself (what a failing start raised)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
