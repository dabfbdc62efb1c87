"""One component call's host state, shared by the guest's thread and the event loop.

The guest runs in a worker thread; request and response bodies, outgoing
requests and timers are fed or drained by tasks in the event loop. All of
that state is guarded by one condition variable (`Call.cond`): the guest
blocks on it (in `Call.wait`, which also ends at the call's deadline or
when the call is stopped), the event loop's side changes state under it
and notifies. The event loop's side waits for the guest through `Wakeup`s
the guest sets with `TrioToken.run_sync_soon` (never blocking).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from wasmkernel_components.table import GuestFault, Table

#: How often a blocked guest re-checks its deadline (seconds).
RECHECK = 0.05
#: How much of a guest's stdout / stderr is kept for the log.
CONSOLE_LIMIT = 4096


class Stopped(GuestFault):
    """The call was stopped (timeout, client gone, shutdown): the guest's blocked host call traps."""


class Wakeup:
    """A flag the guest's thread raises and an event-loop task awaits."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._event = trio.Event()
        #: A `_set` is scheduled and has not run yet: another `set` would wake the loop for nothing.
        self._pending = False

    def arm(self) -> trio.Event:
        """A fresh event to await, installed before the waiter checks its condition (no lost wakeups)."""
        self._event = trio.Event()
        return self._event

    def set(self) -> None:
        """From any thread; wakes the event loop at most once per scheduled wakeup."""
        if not self._pending:
            self._pending = True
            self._token.run_sync_soon(self._set)

    def _set(self) -> None:
        self._pending = False  # before setting: a `set` from now on schedules anew
        self._event.set()


@attrs.define(eq=False)
class Call:
    """What host functions need during one instance's call."""

    component: str
    token: trio.lowlevel.TrioToken
    deadline: float
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    cond: threading.Condition = attrs.field(factory=threading.Condition)
    table: Table = attrs.field(factory=Table)
    stopped: str | None = None
    #: What the guest wrote to stdout and stderr (the first `CONSOLE_LIMIT` bytes of each, unless `stdout_limit` says more).
    stdout: bytearray = attrs.field(factory=bytearray)
    stderr: bytearray = attrs.field(factory=bytearray)
    stdout_limit: int = CONSOLE_LIMIT
    #: The exit status `wasi:cli/exit.exit` asked for.
    exit_status: int | None = None
    #: Starts an event-loop task for this call (set by whoever runs the call).
    spawner: Callable[[Callable[[], Awaitable[Any]]], None] | None = None
    #: Per-interface host state (e.g. the wasi:http request), by interface.
    state: dict[str, Any] = attrs.field(factory=dict)
    #: Cancel scopes of host operations run in the event loop for this call (the host API's `Scope`).
    scopes: set[trio.CancelScope] = attrs.field(factory=set)

    def stop(self, reason: str) -> None:
        """Make every blocked or future host wait of this call trap, and cancel its
        host operations in the event loop (any thread)."""
        with self.cond:
            if self.stopped is None:
                self.stopped = reason
            self.cond.notify_all()
            scopes = list(self.scopes)
        for scope in scopes:
            self.token.run_sync_soon(scope.cancel)

    # -- the wasm host API's `Scope`: a key-value operation ends with this call --------

    @property
    def at(self) -> float:
        """When the call must end (monotonic seconds; 0 once it was stopped)."""
        return 0.0 if self.stopped is not None else self.deadline

    def attach(self, scope: trio.CancelScope) -> None:
        """In the event loop: `scope` runs an operation for this call."""
        with self.cond:
            if self.stopped is None:
                self.scopes.add(scope)
                return
        scope.cancel()

    def detach(self, scope: trio.CancelScope) -> None:
        with self.cond:
            self.scopes.discard(scope)

    def check(self) -> None:
        if self.stopped is not None:
            raise Stopped(f"the call was stopped: {self.stopped}")
        if time.monotonic() >= self.deadline:
            raise Stopped("the call exceeded its time limit")

    def wait(self, ready: Callable[[], bool], until: float | None = None) -> None:
        """Block the guest until `ready()` (checked under `cond`) or `until`
        (monotonic seconds); `Stopped` at the deadline or when stopped."""
        with self.cond:
            while not ready():
                self.check()
                now = time.monotonic()
                if until is not None and now >= until:
                    return
                limit = min(self.deadline, until if until is not None else self.deadline)
                self.cond.wait(min(RECHECK, max(limit - now, 0.0)))

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def spawn(self, task: Callable[[], Awaitable[Any]]) -> None:
        """Run `task` in the event loop, in the call's nursery (from the guest's thread)."""
        if self.spawner is None:
            raise GuestFault("this call cannot start host tasks")
        self.token.run_sync_soon(self.spawner, task)

    def console(self, stream: str, data: bytes) -> None:
        buffer, limit = (self.stdout, self.stdout_limit) if stream == "stdout" else (self.stderr, CONSOLE_LIMIT)
        room = limit - len(buffer)
        if room > 0:
            buffer += data[:room]


_current = threading.local()


def current() -> Call:
    """The call the calling thread runs (`GuestFault` outside one)."""
    call: Call | None = getattr(_current, "call", None)
    if call is None:
        raise GuestFault("no component call is running in this thread")
    return call


def bind(call: Call | None) -> None:
    _current.call = call
