"""Events, the `Broker` protocol (the transport between publishers and this
process's subscribers) and the in-process broker.

A broker carries an event from `publish` to the `deliver` callback of every
process that runs it: the in-process broker calls it at once; a distributed
one (e.g. `broker-redis`) sends the event through its server and calls
`deliver` when the event comes back, on every instance. A broker assigns
event ids: unique per channel, in delivery order.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

#: A channel name: letters, digits and ``_.:-``, 1 to 128 characters.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: An event type (the SSE ``event:`` field): the same alphabet.
EVENT_NAME = CHANNEL_NAME


def check_channel(name: str) -> str:
    """`name` if it is a valid channel name; ValueError saying why not."""
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
        raise ValueError(f"invalid channel name {name!r}: use 1-128 letters, digits or '_.:-'")
    return name


def check_event_type(name: str) -> str:
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
        raise ValueError(f"invalid event type {name!r}: use 1-128 letters, digits or '_.:-'")
    return name


@attrs.frozen
class Event:
    """One published event: `data` is its JSON text (serialised once for
    every subscriber), `event` its type, `id` what the broker assigned."""

    channel: str
    id: str
    event: str
    data: str


#: Where a broker hands the events it receives (called on the event loop; never blocks).
Deliver = Callable[[Event], None]


class BrokerUnavailable(Exception):
    """The broker could not take the event: it was delivered to nobody
    (raised to the publisher; an endpoint that lets it escape answers 503:
    the channels plugin maps it at the error boundary, with `Retry-After`
    when `retry_after` is set)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Broker(Protocol):
    """The transport under `Channels`: the `MemoryBroker`, unless a broker
    plugin installs its own with `Channels.use_broker`."""

    #: Short name for metrics, logs and /readyz ("memory", "redis").
    name: str

    @property
    def up(self) -> bool:
        """Whether a publish can be delivered right now."""

    def status(self) -> dict[str, Any]:
        """Health detail for /readyz (cheap, non-blocking)."""

    async def publish(self, channel: str, event: str, data: str) -> Event:
        """Send an event to every subscriber of `channel` on every instance;
        return it with its id. `BrokerUnavailable` if it cannot be sent."""

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hand every event received to `deliver` until cancelled; call
        ``task_status.started()`` once publishing may begin (up or not)."""


class MemoryBroker:
    """The in-process broker: `publish` delivers at once to this process's
    subscribers. Ids are ``<epoch>-<n>``: `n` counts up per channel from 1,
    the epoch is drawn per broker, so an id from before a restart is never
    mistaken for a new one. Always up."""

    name = "memory"

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)
        self._deliver: Deliver | None = None
        self._counters: dict[str, itertools.count[int]] = {}

    @property
    def up(self) -> bool:
        return True

    def status(self) -> dict[str, Any]:
        return {"status": "up", "broker": self.name}

    async def publish(self, channel: str, event: str, data: str) -> Event:
        if self._deliver is None:
            raise BrokerUnavailable("The in-process broker is not running (the application has not started)")
        counter = self._counters.setdefault(channel, itertools.count(1))
        published = Event(channel, f"{self.epoch}-{next(counter)}", event, data)
        self._deliver(published)
        await trio.lowlevel.checkpoint()
        return published

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._deliver = deliver
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._deliver = None
