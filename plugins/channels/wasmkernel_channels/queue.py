"""`EventQueue`: a subscriber's bounded queue of events."""

from __future__ import annotations

import collections
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")


class EventQueue(Generic[T]):
    """A bounded FIFO feeding one task: a deque and the task waiting on it (a
    fraction of a memory channel's cost per event and per subscriber). `put`
    never waits: it returns False when the queue is full or closed; `get`
    raises `trio.EndOfChannel` once it is closed and empty."""

    __slots__ = ("_consumer", "closed", "items", "size")

    def __init__(self, size: int) -> None:
        self.items: collections.deque[T] = collections.deque()
        self.size, self.closed = size, False
        self._consumer: trio.lowlevel.Task | None = None

    def put(self, item: T) -> bool:
        if self.closed or len(self.items) >= self.size:
            return False
        self.items.append(item)
        self._wake()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._consumer is not None:
            task, self._consumer = self._consumer, None
            trio.lowlevel.reschedule(task)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._consumer = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def get(self) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self.items:
            if self.closed:
                raise trio.EndOfChannel
            self._consumer = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        return self.items.popleft()
