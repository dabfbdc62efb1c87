"""`Channels`: named channels, their replay history and their subscribers.

Publishing goes through the broker; every event the broker delivers is
appended to its channel's history (the last `history` events) and queued to
each subscriber without waiting. Each subscriber has its own bounded queue
(`queue_size` events), so a slow one never delays the others; when its queue
is full the `overflow` policy applies to that subscriber alone:

- ``"close"`` (default): the subscription ends after the events already
  queued (`Subscription.overflowed` is True); an SSE client reconnects with
  ``Last-Event-ID`` and resumes from the history, a WebSocket is closed 1013
  at once.
- ``"drop"``: the new event is dropped for that subscriber (counted in
  `Subscription.dropped` and the metrics); the subscription goes on.

A subscription made with a `last_event_id` starts with the history after
that id; an id the history no longer holds (too old, or from before a
restart) replays the whole history, so delivery is at least once: clients
skip ids they have seen.

When the broker cannot vouch that a channel's subscribers got every event
(Redis lost its state, or more events were missed than its history holds),
it calls `Channels.interrupt`: every subscription of the channel ends as an
overflowing one does (SSE streams after their queued events, WebSockets
closed 1013), so clients reconnect and catch up (the feed page reloads its
posts) instead of silently missing events.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Literal

import attrs
import structlog
import trio

from wasmkernel import Request, StartupError, WebSocket, WebSocketDisconnect, dump_json
from wasmkernel_channels.broker import Broker, Event, MemoryBroker, check_channel, check_event_type
from wasmkernel_channels.queue import EventQueue
from wasmkernel_channels.sse import EventStream, last_event_id

log = structlog.get_logger("wasmkernel.channels")

Overflow = Literal["close", "drop"]
#: The close code of a WebSocket the server ends: its queue overflowed, or
#: its channel was interrupted ("try again later").
TRY_AGAIN_LATER = 1013


@attrs.define(eq=False)
class Counters:
    """Totals for metrics."""

    published: int = 0
    publish_failures: int = 0
    delivered: int = 0
    dropped: int = 0
    overflow_closes: int = 0
    interruptions: int = 0


class Subscription:
    """One subscriber of one channel: iterate it for `Event`s (the replayed
    ones first); use it as a context manager, or `close()` it, to leave.
    `on_end` is called with the reason when the server ends it (the "close"
    overflow policy, `Channels.interrupt`)."""

    __slots__ = ("_channels", "_queue", "channel", "dropped", "on_end", "overflowed", "replay")

    def __init__(self, channels: Channels, channel: str, replay: list[Event], queue_size: int) -> None:
        self.channel = channel
        self.replay = replay
        self.dropped = 0
        self.overflowed = False
        self.on_end: Callable[[str], None] | None = None
        self._channels = channels
        self._queue: EventQueue[Event] = EventQueue(queue_size)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channels._unsubscribe(self)
        self._queue.close()

    def end(self, reason: str) -> None:
        """End it from the server's side, after the events already queued:
        its client should reconnect and catch up."""
        self.close()
        if self.on_end is not None:
            self.on_end(reason)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        with contextlib.suppress(trio.EndOfChannel):
            while True:
                yield await self.get()

    async def get(self) -> Event:
        """The next event (the replayed ones first); `trio.EndOfChannel` once
        the subscription has ended."""
        if self.replay:
            return self.replay.pop(0)
        return await self._queue.get()

    async def next_event(self, timeout: float = math.inf) -> Event | None:
        """The next event, or None after `timeout` seconds without one;
        `trio.EndOfChannel` once the subscription has ended."""
        with trio.move_on_after(timeout):
            return await self.get()
        return None

    def _offer(self, event: Event, policy: Overflow) -> bool:
        """Queue `event` without waiting; False if it was not queued (the
        queue is full, or closed)."""
        if self._queue.put(event):
            return True
        if self._queue.closed:
            return False
        if policy == "drop":
            self.dropped += 1
            return False
        self.overflowed = True
        log.warning("channels.subscriber_overflow", channel=self.channel, policy=policy)
        self.end("send queue overflow: the client does not read")
        return False


@attrs.define(eq=False)
class _Channel:
    history: collections.deque[Event]
    subscribers: set[Subscription] = attrs.field(factory=set)


class Channels:
    """The channels of one application (the `CHANNELS` service)."""

    def __init__(
        self,
        broker: Broker,
        *,
        history: int = 100,
        queue_size: int = 256,
        overflow: Overflow = "close",
        max_channels: int = 1000,
        retry_ms: int = 2000,
        keepalive: float = 15.0,
    ) -> None:
        self.broker = broker
        self.retry_ms = retry_ms
        self.keepalive = keepalive
        self.history_size = history
        self.queue_size = queue_size
        self.overflow: Overflow = overflow
        self.max_channels = max_channels
        self.counters = Counters()
        self._channels: dict[str, _Channel] = {}

    def use_broker(self, broker: Broker, provider: str) -> None:
        """Replace the in-process broker with `broker` (from plugin
        `provider`; before startup, e.g. in its `wasmkernel_routes` hook)."""
        if not isinstance(self.broker, MemoryBroker):
            raise StartupError(f"plugin '{provider}' and another plugin both provide the channels' broker ({self.broker.name}): enable only one")
        self.broker = broker

    @property
    def subscriber_count(self) -> int:
        return sum(len(channel.subscribers) for channel in self._channels.values())

    def names(self) -> list[str]:
        return sorted(self._channels)

    def _channel(self, name: str) -> _Channel:
        check_channel(name)
        found = self._channels.get(name)
        if found is None:
            if len(self._channels) >= self.max_channels:
                raise ValueError(f"too many channels (max_channels = {self.max_channels})")
            found = self._channels[name] = _Channel(collections.deque(maxlen=self.history_size))
        return found

    async def publish(self, channel: str, data: Any, event: str = "message") -> Event:
        """Publish `data` (JSON-serialisable; a `str` is sent as the JSON
        string it is) as an event of type `event`; returns it with its id.
        `BrokerUnavailable` when the broker cannot deliver it (to nobody:
        never half-sent, never silently lost)."""
        self._channel(channel)
        check_event_type(event)
        text = dump_json(data).decode()
        try:
            published = await self.broker.publish(channel, event, text)
        except BaseException:
            self.counters.publish_failures += 1
            raise
        self.counters.published += 1
        return published

    def deliver(self, event: Event) -> None:
        """Record `event` and queue it to every subscriber of its channel
        (the broker's `Deliver` callback)."""
        try:
            channel = self._channel(event.channel)
        except ValueError as exc:
            log.warning("channels.event_dropped", channel=event.channel[:128], reason=str(exc))
            return
        channel.history.append(event)
        for subscriber in list(channel.subscribers):
            if subscriber._offer(event, self.overflow):
                self.counters.delivered += 1
            elif subscriber.overflowed:
                self.counters.overflow_closes += 1
            else:
                self.counters.dropped += 1

    def interrupt(self, channel: str, reason: str) -> None:
        """End every subscription of `channel` (see the module docstring): the
        broker cannot vouch its subscribers got every event."""
        found = self._channels.get(channel)
        if found is None or not found.subscribers:
            return
        log.warning("channels.interrupted", channel=channel, subscribers=len(found.subscribers), reason=reason)
        self.counters.interruptions += 1
        for subscriber in list(found.subscribers):
            subscriber.end(reason)

    def history(self, channel: str, after: str | None = None) -> list[Event]:
        """The channel's recent events (after the event with id `after`, when
        the history holds it)."""
        events = list(self._channel(channel).history)
        if after is not None:
            for index, event in enumerate(events):
                if event.id == after:
                    return events[index + 1 :]
        return events

    def subscribe(self, channel: str, last_event_id: str | None = None) -> Subscription:
        """A new subscription; with `last_event_id` it first replays the
        history after it (see the module docstring). Replay and live events
        are taken at one instant: nothing is missed or repeated between them."""
        found = self._channel(channel)
        replay = self.history(channel, last_event_id) if last_event_id is not None else []
        subscription = Subscription(self, channel, replay, self.queue_size)
        found.subscribers.add(subscription)
        return subscription

    def event_stream(self, request: Request, channel: str) -> EventStream:
        """An SSE response of `channel` for `request`, resuming after its
        ``Last-Event-ID`` (see `wasmkernel_channels.sse`)."""
        subscription = self.subscribe(channel, last_event_id(request))
        return EventStream(request, subscription, retry_ms=self.retry_ms, keepalive=self.keepalive)

    async def serve_websocket(self, ws: WebSocket, channel: str, subprotocol: str | None = None) -> None:
        """Accept `ws` and send it `channel`'s events (first the history after
        its ``last_event_id`` query parameter, if given), one text message
        each, until either side ends. The subscription exists before the
        handshake completes: a client that acts once connected (e.g. posts)
        misses nothing. A task in the connection's nursery sends
        them from the subscription's queue, so a client that stops reading
        stalls only that task; its queue overflowing ("close" policy) or the
        channel being interrupted closes it 1013. Its messages are read and discarded (`discard_incoming`):
        the kernel's limits still apply to them."""
        self._channel(channel)  # a bad name is refused before the handshake
        ws.discard_incoming = True
        with self.subscribe(channel, last_event_id(ws)) as subscription:
            await ws.accept(subprotocol)
            subscription.on_end = lambda reason: ws.close_nowait(TRY_AGAIN_LATER, reason)
            ws.nursery.start_soon(_forward, subscription, ws)
            await ws.wait_closed()

    def _unsubscribe(self, subscription: Subscription) -> None:
        channel = self._channels.get(subscription.channel)
        if channel is not None:
            channel.subscribers.discard(subscription)


async def _forward(subscription: Subscription, ws: WebSocket) -> None:
    """Send `subscription`'s events to `ws` until either ends (reading its
    queue directly: one frame less on each of thousands of waiting tasks)."""
    with contextlib.suppress(WebSocketDisconnect, trio.EndOfChannel):
        while subscription.replay:
            await ws.send(subscription.replay.pop(0).data)
        while True:
            await ws.send((await subscription._queue.get()).data)


def event_data(event: Event) -> Any:
    """The event's data, parsed."""
    return json.loads(event.data)
