"""`RedisBroker`: the channels' `Broker` over Redis pub/sub.

Publishing is one Lua script, atomic in Redis: it gives the event the next id
of its channel (``<epoch>-<n>``; the epoch is set by the first publish after
Redis started empty, so ids never repeat across a Redis restart), appends it
to the channel's history list in Redis (the last `history` events) and
PUBLISHes it. Every instance's broker is subscribed to the pattern of all
channels and hands each event to its `deliver` callback, in Redis's order;
an instance's own events come back the same way.

Redis down (a command or the subscription fails): the broker is down (its
`up`, /readyz, metrics), every publish raises `BrokerUnavailable` at once
(delivered to nobody; the publisher knows), local subscribers stay connected,
and the subscription is restarted with exponential `backoff`; the broker is
up again once it has resubscribed.
A publish with no answer within `timeout` seconds raises `BrokerUnavailable`
saying it may have been published (Redis may be slow, or this event loop
late), and leaves the broker up: a late answer is no outage. On resubscribing it reads the history list of
every channel it has seen and delivers the events it missed meanwhile (those
published by other instances while only its subscription was broken); ids
already delivered are skipped, so nothing is delivered twice.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

import structlog
import trio
from coredis.retry import NoRetryPolicy
from wasmkernel_channels import BrokerUnavailable, Deliver, Event
from wasmkernel_redis import REDIS_ERRORS, Backoff, RedisLink, redis_failure

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

log = structlog.get_logger("wasmkernel.broker.redis")

PUBLISH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local id = epoch .. '-' .. redis.call('INCR', KEYS[2])
local message = id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3]
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('RPUSH', KEYS[3], message)
  redis.call('LTRIM', KEYS[3], -keep, -1)
end
redis.call('PUBLISH', KEYS[4], message)
return id
"""


def parse_id(event_id: str) -> tuple[str, int]:
    epoch, _, number = event_id.rpartition("-")
    return epoch, int(number)


class RedisBroker:
    """See the module docstring. `link` is the redis plugin's `RedisLink`."""

    name = "redis"

    def __init__(
        self,
        link: RedisLink,
        *,
        prefix: str = "wasmkernel:channels:",
        history: int = 100,
        timeout: float = 3.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.link = link
        self.prefix = prefix
        self.history = history
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.outages = 0
        self.last_error = "not subscribed yet"
        self._up = False
        self._subscription = trio.CancelScope()
        self._deliver: Deliver | None = None
        #: channel -> (epoch, number) of the last event delivered.
        self._last: dict[str, tuple[str, int]] = {}
        self._script = link.client.register_script(PUBLISH)
        self._epoch = secrets.token_hex(4)

    @property
    def up(self) -> bool:
        return self._up

    def status(self) -> dict[str, Any]:
        if self._up:
            return {"status": "up", "broker": self.name, "address": self.link.address}
        return {"status": "down", "broker": self.name, "address": self.link.address, "error": self.last_error, "outages": self.outages}

    def _key(self, kind: str, channel: str | None = None) -> str:
        return f"{self.prefix}{kind}" if channel is None else f"{self.prefix}{kind}:{channel}"

    # -- publishing ------------------------------------------------------------

    async def publish(self, channel: str, event: str, data: str) -> Event:
        if not self._up:
            raise BrokerUnavailable(f"The Redis broker is down ({self.last_error}); the event was not published", retry_after=1)
        keys = [self._key("epoch"), self._key("seq", channel), self._key("history", channel), self._key("channel", channel)]
        try:
            with trio.fail_after(self.timeout):
                raw: Any = await self._script(keys=keys, args=[self._epoch, event, data, str(self.history)])
        except trio.TooSlowError:
            log.warning("broker.publish_timeout", broker=self.name, channel=channel, timeout=self.timeout)
            late = f"Redis did not answer within {self.timeout:g} s; the event may have been published"
            raise BrokerUnavailable(late, retry_after=1) from None
        except REDIS_ERRORS as exc:
            self._down(exc)
            self._subscription.cancel()  # resubscribing brings the broker up again
            raise BrokerUnavailable(f"Redis failed ({type(exc).__name__}); the event was not published", retry_after=1) from None
        event_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        return Event(channel, event_id, event, data)

    # -- receiving -------------------------------------------------------------

    async def run(self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, deliver, and resubscribe with backoff after a failure."""
        self._deliver = deliver
        started = False
        while True:
            try:
                with trio.CancelScope() as self._subscription:
                    async with self.link.client.pubsub(
                        patterns=[self._key("channel", "*")], retry_policy=NoRetryPolicy(), ignore_subscribe_messages=True
                    ) as pubsub:
                        await self._catch_up()
                        self._mark_up()
                        self.backoff.reset()
                        if not started:
                            task_status.started()
                            started = True
                        async for message in pubsub:
                            self._receive(message)
                if not self._subscription.cancelled_caught:
                    self._down("the subscription ended")
            except BaseException as exc:
                self._down(_failure(exc))
            if not started:
                task_status.started()
                started = True
            await self.backoff.wait()

    def _receive(self, message: Any) -> None:
        if message.get("type") != "pmessage":
            return
        channel = _text(message["channel"]).removeprefix(self._key("channel", ""))
        self._accept(channel, _text(message["data"]))

    def _accept(self, channel: str, message: str) -> None:
        event_id, event, data = [*message.split("\n", 2), "", ""][:3]
        try:
            epoch, number = parse_id(event_id)
        except ValueError:
            log.warning("broker.malformed_message", channel=channel[:128])
            return
        last = self._last.get(channel)
        if last is not None and last[0] == epoch and number <= last[1]:
            return  # already delivered (caught up from the history)
        self._last[channel] = (epoch, number)
        assert self._deliver is not None
        self._deliver(Event(channel, event_id, event, data))

    async def _catch_up(self) -> None:
        """Deliver what each channel seen so far got while we were away."""
        for channel in list(self._last):
            with trio.fail_after(self.timeout):
                entries = await self.link.client.lrange(self._key("history", channel), 0, -1)
            for entry in entries:
                self._accept(channel, _text(entry))

    # -- health ----------------------------------------------------------------

    def _mark_up(self) -> None:
        if not self._up:
            log.info("broker.up", broker=self.name, address=self.link.address, outages=self.outages)
        self._up = True
        self.last_error = ""

    def _down(self, error: BaseException | str) -> None:
        self.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self._up or self.outages == 0:
            self.outages += 1
            log.warning("broker.down", broker=self.name, address=self.link.address, error=self.last_error, outage=self.outages)
        self._up = False
        if not isinstance(error, str):
            self.link.mark_down(error)


def _failure(exc: BaseException) -> BaseException:
    """The Redis failure `exc` is; re-raises anything else. A cancellation
    (shutdown) wins over the errors coredis's pub/sub raises while it cleans
    up a connection the redis plugin is closing."""
    if isinstance(exc, BaseExceptionGroup):
        cancelled, _ = exc.split(trio.Cancelled)
        if cancelled is not None:
            raise cancelled from None
    failure = exc if isinstance(exc, trio.TooSlowError) else redis_failure(exc)
    if failure is None:
        raise exc
    return failure


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
