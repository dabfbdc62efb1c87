"""`wasi:cli`, `wasi:clocks` and `wasi:random`.

Environment and arguments are what the registry gives the component;
stdin is the call's input (empty for HTTP handlers), stdout and stderr are
captured (bounded) and logged after the call; there is no terminal.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from wasmtime.component import ResourceHost

from wasmkernel_components.call import current
from wasmkernel_components.interface import Interface
from wasmkernel_components.table import GuestFault
from wasmkernel_components.wasi.io import INPUT, OUTPUT, POLLABLE, BytesSource, InputStream, OutputStream, Pollable

_NS = 1_000_000_000


class ExitCalled(GuestFault):
    """`wasi:cli/exit.exit`: unwinds the guest; the call ends with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the component exited with status {status}")
        self.status = status


class Console:
    """stdout or stderr: captured into the call (bounded), never blocking."""

    def __init__(self, name: str) -> None:
        self.name = name

    def writable(self) -> bool:
        return True

    def capacity(self) -> int:
        return 1 << 20

    def write(self, data: bytes) -> None:
        current().console(self.name, data)


def _stdin(store: Any) -> ResourceHost:
    call = current()
    data = call.state.get("stdin", b"")
    return call.table.new(INPUT, InputStream(BytesSource(data)))


def _exit(store: Any, status: Any) -> None:
    code = status if isinstance(status, int) else (1 if status is not None and getattr(status, "tag", "ok") == "err" else 0)
    current().exit_status = code
    raise ExitCalled(code)


def _exit_with_code(store: Any, code: int) -> None:
    current().exit_status = code & 0xFF
    raise ExitCalled(code & 0xFF)


def _subscribe(store: Any, at_ns: int) -> ResourceHost:
    return current().table.new(POLLABLE, Pollable(lambda: False, until=at_ns / _NS))


def _wall_now(store: Any) -> dict[str, int]:
    now = time.time_ns()
    return {"seconds": now // _NS, "nanoseconds": now % _NS}


_secure = random.SystemRandom()
_LIMIT = 1 << 20


def _bytes(size: int) -> bytes:
    if size > _LIMIT:
        raise GuestFault(f"asked for {size} random bytes; at most {_LIMIT} at once")
    return os.urandom(size)


def _no_terminal(store: Any) -> None:
    return None


INTERFACES = {
    "wasi:cli/environment": Interface(
        {},
        {
            "get-environment": lambda store: list(current().env),
            "get-arguments": lambda store: list(current().args),
            "initial-cwd": lambda store: None,
        },
    ),
    "wasi:cli/exit": Interface({}, {"exit": _exit, "exit-with-code": _exit_with_code}),
    "wasi:cli/stdin": Interface({}, {"get-stdin": _stdin}),
    "wasi:cli/stdout": Interface({}, {"get-stdout": lambda store: current().table.new(OUTPUT, OutputStream(Console("stdout")))}),
    "wasi:cli/stderr": Interface({}, {"get-stderr": lambda store: current().table.new(OUTPUT, OutputStream(Console("stderr")))}),
    "wasi:cli/terminal-input": Interface({"terminal-input": object}, {}),
    "wasi:cli/terminal-output": Interface({"terminal-output": object}, {}),
    "wasi:cli/terminal-stdin": Interface({}, {"get-terminal-stdin": _no_terminal}),
    "wasi:cli/terminal-stdout": Interface({}, {"get-terminal-stdout": _no_terminal}),
    "wasi:cli/terminal-stderr": Interface({}, {"get-terminal-stderr": _no_terminal}),
    "wasi:clocks/monotonic-clock": Interface(
        {},
        {
            "now": lambda store: time.monotonic_ns(),
            "resolution": lambda store: 1,
            "subscribe-instant": _subscribe,
            "subscribe-duration": lambda store, ns: _subscribe(store, time.monotonic_ns() + ns),
        },
    ),
    "wasi:clocks/wall-clock": Interface({}, {"now": _wall_now, "resolution": lambda store: {"seconds": 0, "nanoseconds": 1}}),
    "wasi:random/random": Interface({}, {"get-random-bytes": lambda store, size: _bytes(size), "get-random-u64": lambda store: _secure.getrandbits(64)}),
    "wasi:random/insecure": Interface(
        {}, {"get-insecure-random-bytes": lambda store, size: _bytes(size), "get-insecure-random-u64": lambda store: _secure.getrandbits(64)}
    ),
    "wasi:random/insecure-seed": Interface({}, {"insecure-seed": lambda store: (_secure.getrandbits(64), _secure.getrandbits(64))}),
}
