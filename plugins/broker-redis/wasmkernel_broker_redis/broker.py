"""`RedisBroker`: the channels' `Broker` over Redis pub/sub.

Publishing is one Lua script, atomic in Redis: it gives the event the next id
of its channel (``<epoch>-<n>``), appends it to the channel's history list in
Redis (the last `history` events) and PUBLISHes it. The epoch is set by the
first publish after Redis started empty, from a random value each publish
offers: after Redis lost its state (a restart without persistence, a
FLUSHALL) ids start again at 1 under a new epoch and never repeat ones
already delivered. Every instance's broker is subscribed to the pattern of all
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
already delivered are skipped, so nothing is delivered twice. When it cannot
vouch that nothing was missed — Redis restarted (its run id changed: what
was published just before may be lost, or, restored from a saved state,
its counters may be behind ids already delivered, so the epoch is
replaced), Redis lost its state (the epoch changed), or more events were
missed than the history holds — it interrupts the channels (`interrupt`,
the channels plugin's `Channels.interrupt`): their streams end so their
clients reconnect and catch up, rather than silently missing events that
were acknowledged to their publishers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

import structlog
import trio
from coredis.retry import NoRetryPolicy
from wasmkernel_channels import BrokerUnavailable, Deliver, Event
from wasmkernel_redis import REDIS_ERRORS, Backoff, RedisLink, redis_failure

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


#: Replace the epoch (KEYS[1]) if it is still ARGV[1]; the epoch now.
ROTATE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
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
        interrupt: Callable[[str, str], None] | None = None,
        channels_in_use: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.link = link
        self.prefix = prefix
        self.history = history
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.interrupt = interrupt
        #: Channels with local subscribers (caught up after an outage too).
        self.channels_in_use = channels_in_use
        self.outages = 0
        self.resets = 0
        self.last_error = "not subscribed yet"
        self._up = False
        self._subscription = trio.CancelScope()
        self._deliver: Deliver | None = None
        #: channel -> (epoch, number) of the last event delivered.
        self._last: dict[str, tuple[str, int]] = {}
        #: Redis's epoch and server run id, as last seen (None: not subscribed yet).
        self._epoch: str | None = None
        self._run_id: str | None = None
        self._script = link.client.register_script(PUBLISH)
        self._rotate = link.client.register_script(ROTATE)

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
                raw: Any = await self._script(keys=keys, args=[secrets.token_hex(8), event, data, str(self.history)])
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
        self._epoch = epoch
        assert self._deliver is not None
        self._deliver(Event(channel, event_id, event, data))

    async def _catch_up(self) -> None:
        """After (re)subscribing: notice a Redis that lost or rewound its
        state, deliver what each channel seen so far, or subscribed to here,
        got while we were away, and interrupt the channels for which nothing
        missed can be vouched (see the module docstring)."""
        client = self.link.client
        with trio.fail_after(self.timeout):
            server = await client.info("server")
            stored = await client.get(self._key("epoch"))
        run_id, epoch = str(server.get("run_id", "")), None if stored is None else _text(stored)
        restarted = self._run_id is not None and run_id != self._run_id
        if restarted or (self._epoch is not None and epoch != self._epoch):  # (None -> an epoch: the first publish)
            epoch = await self._reset(epoch, restarted=restarted)
        for channel in {*self._last, *self.channels_in_use()}:
            with trio.fail_after(self.timeout):
                entries = [_text(entry) for entry in await client.lrange(self._key("history", channel), 0, -1)]
                published = await client.get(self._key("seq", channel))
            if epoch is not None and published is not None and self._missed_beyond_history(channel, epoch, int(published), entries):
                self._interrupt(channel, "events were missed beyond the broker's history: reconnect to catch up")
            for entry in entries:
                self._accept(channel, entry)
        self._run_id, self._epoch = run_id, epoch  # (the history may hold older epochs)

    def _missed_beyond_history(self, channel: str, epoch: str, published: int, entries: list[str]) -> bool:
        """Whether `channel` got more events since the last one delivered here
        than its history in Redis still holds."""
        last = self._last.get(channel)
        if last is None or last[0] != epoch:
            return False
        held = {_entry_id(entry) for entry in entries}
        return any((epoch, number) not in held for number in range(last[1] + 1, published + 1))

    async def _reset(self, epoch: str | None, *, restarted: bool) -> str | None:
        """Redis restarted or lost its state since we last looked: what was
        published just before may never have reached us. Every channel in
        use is interrupted, and ids start again under a new epoch (a Redis
        that restarted from a saved state keeps its epoch and counters,
        possibly from before ids we delivered: its epoch is replaced)."""
        self.resets += 1
        log.warning("broker.reset", broker=self.name, address=self.link.address, restarted=restarted, previous_epoch=self._epoch, epoch=epoch)
        if restarted and epoch is not None and epoch == self._epoch:
            with trio.fail_after(self.timeout):
                epoch = _text(await self._rotate(keys=[self._key("epoch")], args=[epoch, secrets.token_hex(8)]))
        for channel in sorted({*self._last, *self.channels_in_use()}):
            self._interrupt(channel, "the broker lost or rewound its state (Redis restarted): reconnect to catch up")
        self._last.clear()
        return epoch

    def _interrupt(self, channel: str, reason: str) -> None:
        if self.interrupt is not None:
            self.interrupt(channel, reason)

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


def _entry_id(entry: str) -> tuple[str, int] | None:
    """(epoch, number) of a history entry, None if malformed."""
    try:
        return parse_id(entry.split("\n", 1)[0])
    except ValueError:
        return None


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
