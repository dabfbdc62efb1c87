"""Polling waits: the way a test waits for something another task, thread or
process does. Never ``sleep(x)`` and hope: on a busy machine x is too short,
on a quiet one it is wasted. The timeout only turns a hang into a failure;
it is no bound the test asserts, so it is generous."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, overload

import trio

T = TypeVar("T")
#: What a predicate returns while the condition does not hold yet (any falsy value does).
NotYet = None | Literal[False]

#: Seconds before a wait gives up (a hang, not a slow machine).
DEFAULT_TIMEOUT = 30.0


def _describe(what: str | Callable[[], str] | None, predicate: Callable[..., object], last: object) -> str:
    if callable(what):
        what = what()
    return f"{what or getattr(predicate, '__qualname__', repr(predicate))} (last value: {last!r})"


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T | NotYet]], *, timeout: float = ..., interval: float = ..., what: str | Callable[[], str] | None = ...
) -> T: ...


@overload
async def wait_until(predicate: Callable[[], T | NotYet], *, timeout: float = ..., interval: float = ..., what: str | Callable[[], str] | None = ...) -> T: ...


async def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.01,
    what: str | Callable[[], str] | None = None,
) -> Any:
    """Call `predicate` (sync or async) every `interval` seconds until it
    returns a true value, and return that value. `AssertionError` naming
    `what` (or the predicate) and its last value after `timeout` seconds of
    trio's clock (virtual under `MockClock`)."""
    deadline = trio.current_time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if trio.current_time() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {_describe(what, predicate, value)}")
        await trio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], T | NotYet],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    what: str | Callable[[], str] | None = None,
) -> T:
    """`wait_until` for synchronous tests (blocks the calling thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {_describe(what, predicate, value)}")
        time.sleep(interval)
