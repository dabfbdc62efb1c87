"""The Redis broker against a real redis-server: two applications share
their channels; an outage is reported and survived; a broken subscription
catches up from the history in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from wasmkernel_broker_redis import RedisBroker
from wasmkernel_channels import CHANNELS, BrokerUnavailable, Channels, Event, MemoryBroker
from wasmkernel_redis import REDIS_LINK, Backoff

from tests.redis_server import RedisServer
from wasmkernel import Application, RegistryError
from wasmkernel.testing import app_from, running

FAST = {"health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 0.3, "command_timeout": 0.3}


def make_app(url: str, history: int = 100) -> Application:
    return app_from(
        {
            "redis": {"config": {**FAST, "url": url}},
            "broker-redis": {"config": {"min_backoff": 0.02, "max_backoff": 0.1, "publish_timeout": 0.3, "history": history}},
            "channels": {},
            "router": {},
            "health": {},
            "metrics": {},
        }
    )


def hub(app: Application) -> Channels:
    return app.services.get(CHANNELS, needed_by="test")


@asynccontextmanager
async def two_apps(url: str) -> AsyncIterator[tuple[Application, httpx.AsyncClient, Application, httpx.AsyncClient]]:
    first, second = make_app(url), make_app(url)
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(running(first, client=("127.0.0.1", 50001)))
        two = await stack.enter_async_context(running(second, client=("127.0.0.1", 50002)))
        yield first, one, second, two


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def test_without_a_redis_url_the_in_process_broker_serves() -> None:
    app = make_app("")
    assert isinstance(hub(app).broker, MemoryBroker)


async def test_an_event_published_on_one_instance_reaches_the_other(redis_server: RedisServer) -> None:
    async with two_apps(redis_server.url) as (first, _, second, _):
        assert isinstance(hub(first).broker, RedisBroker)
        with hub(first).subscribe("news") as here, hub(second).subscribe("news") as there:
            published = await hub(first).publish("news", {"n": 1}, event="post")
            assert published.id.endswith("-1"), published
            with trio.fail_after(5):
                assert await there.next_event() == published
                assert await here.next_event() == published
            again = await hub(second).publish("news", {"n": 2})
            with trio.fail_after(5):
                assert await here.next_event() == again
        # Both instances hold the same history, so either can resume a client.
        assert [e.id for e in hub(first).history("news")] == [e.id for e in hub(second).history("news")] == [published.id, again.id]


async def test_redis_outage_refuses_publishes_ends_subscriptions_after_and_recovers(redis_server: RedisServer) -> None:
    """Subscribers stay connected through the outage; once Redis is back
    (restarted empty: what was published just before may be lost) their
    subscriptions end, so their clients reconnect and catch up; new ones
    receive again."""
    async with two_apps(redis_server.url) as (first, one, second, two):
        with hub(second).subscribe("news") as subscriber:
            redis_server.kill()
            await wait_for(lambda: not hub(first).broker.up)
            with pytest.raises(BrokerUnavailable):
                await hub(first).publish("news", "lost?")
            ready = await one.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["channels"]["status"] == "down" and ready.json()["channels"]["broker"] == "redis"
            metrics = (await one.get("/metrics")).text
            assert 'wasmkernel_channels_broker_up{broker="redis"} 0.0' in metrics
            assert 'wasmkernel_channels_publish_failures_total{broker="redis"} 1.0' in metrics
            assert 'wasmkernel_broker_outages_total{broker="redis"} 1.0' in metrics

            assert hub(second).subscriber_count == 1  # still connected during the outage

            redis_server.start()
            await wait_for(lambda: hub(first).broker.up and hub(second).broker.up)
            assert (await one.get("/readyz")).status_code == 200
            with trio.fail_after(5), pytest.raises(trio.EndOfChannel):
                await subscriber.next_event()
            assert hub(second).subscriber_count == 0
            assert 'wasmkernel_channels_interruptions_total{broker="redis"} 1.0' in (await two.get("/metrics")).text
            assert 'wasmkernel_broker_resets_total{broker="redis"} 1.0' in (await two.get("/metrics")).text
        with hub(second).subscribe("news") as again:
            published = await hub(first).publish("news", "after the outage")
            with trio.fail_after(5):
                assert await again.next_event() == published


async def test_a_broken_subscription_catches_up_from_the_history(redis_server: RedisServer) -> None:
    app = make_app(redis_server.url)
    link = app.services.get(REDIS_LINK, needed_by="test")
    received: list[Event] = []
    async with running(app):
        other = hub(app)
        broker = RedisBroker(link, backoff=Backoff(0.02))
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run, received.append)
            first = await other.publish("news", 1)
            await wait_for(lambda: len(received) == 1)
            nursery.cancel_scope.cancel()  # the subscription breaks
        missed = [await other.publish("news", n) for n in (2, 3)]
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run, received.append)
            assert received == [first, *missed]  # caught up, nothing twice
            live = await other.publish("news", 4)
            await wait_for(lambda: len(received) == 4)
            assert received[-1] == live
            nursery.cancel_scope.cancel()


async def test_a_publish_failure_restarts_the_subscription_and_a_late_answer_is_no_outage(redis_server: RedisServer) -> None:
    app = make_app(redis_server.url)
    link = app.services.get(REDIS_LINK, needed_by="test")
    async with running(app):
        broker = RedisBroker(link, backoff=Backoff(0.02))
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run, lambda event: None)
            broker.timeout = 1e-9
            # No answer in time: the publisher hears "may have been published"; the broker stays up.
            with pytest.raises(BrokerUnavailable, match="may have been published"):
                await broker.publish("news", "post", '"late"')
            assert broker.up and broker.outages == 0
            # A command that fails marks it down; resubscribing (the subscription itself never broke) brings it back.
            broker.timeout = 5.0
            broker._down(ConnectionError("the command connection broke"))
            broker._subscription.cancel()
            assert not broker.up
            await wait_for(lambda: broker.up)
            assert (await broker.publish("news", "post", '"after"')).data == '"after"'
            nursery.cancel_scope.cancel()


def test_reversed_backoff_bounds_stop_startup_naming_the_key() -> None:
    with pytest.raises(RegistryError, match=r"\[plugins.broker-redis\] config.min_backoff: must not exceed max_backoff \(1\)"):
        app_from({"channels": {}, "broker-redis": {"config": {"min_backoff": 2.0, "max_backoff": 1.0}}})


async def test_ids_never_repeat_after_redis_lost_its_state(redis_server: RedisServer) -> None:
    """Issue 22: the epoch was drawn once per process and written again when
    Redis had lost its key, so new ids repeated delivered ones and were
    skipped as duplicates: events acknowledged to their publisher never
    reached anyone. Each publish now offers a fresh epoch."""
    app = make_app(redis_server.url)
    link = app.services.get(REDIS_LINK, needed_by="test")
    received: list[Event] = []
    async with running(app):
        publisher = hub(app)
        watcher = RedisBroker(link, backoff=Backoff(0.02))
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run, received.append)
            before = [await publisher.publish("news", n) for n in (1, 2)]
            await wait_for(lambda: len(received) == 2)
            await link.client.flushall()  # as a restart without persistence leaves it
            after = await publisher.publish("news", 3)
            assert after.id.rpartition("-")[0] != before[0].id.rpartition("-")[0] and after.id.endswith("-1")
            await wait_for(lambda: len(received) == 3)
            assert received == [*before, after]
            nursery.cancel_scope.cancel()


async def test_events_missed_beyond_the_history_interrupt_the_channel(redis_server: RedisServer) -> None:
    """A subscription broken while more events were published than the
    history holds: those in the history are caught up, and the channel's
    streams are ended so their clients reload what they missed."""
    app = make_app(redis_server.url, history=2)
    link = app.services.get(REDIS_LINK, needed_by="test")
    received: list[Event] = []
    interrupted: list[str] = []
    async with running(app):
        other = hub(app)
        watcher = RedisBroker(link, backoff=Backoff(0.02), interrupt=lambda channel, reason: interrupted.append(channel))
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run, received.append)
            first = await other.publish("news", 1)
            await wait_for(lambda: len(received) == 1)
            nursery.cancel_scope.cancel()
        within = [await other.publish("news", 2)]
        async with trio.open_nursery() as nursery:  # one missed, held by the history: no interruption
            await nursery.start(watcher.run, received.append)
            assert received == [first, *within] and interrupted == []
            nursery.cancel_scope.cancel()
        missed = [await other.publish("news", n) for n in (3, 4, 5, 6)]
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run, received.append)
            assert received == [first, *within, *missed[-2:]]  # the history holds the last two
            assert interrupted == ["news"]
            nursery.cancel_scope.cancel()


async def test_a_redis_restart_interrupts_every_channel_in_use(redis_server: RedisServer) -> None:
    """Redis restarted (its run id changed): what was published just before
    may be lost, even on a channel that never delivered anything here, so
    every channel with subscribers is interrupted once; delivery goes on."""
    app = make_app(redis_server.url)
    link = app.services.get(REDIS_LINK, needed_by="test")
    received: list[Event] = []
    interrupted: list[str] = []
    async with running(app):
        other = hub(app)
        watcher = RedisBroker(
            link, backoff=Backoff(0.02), interrupt=lambda channel, reason: interrupted.append(channel), channels_in_use=lambda: ["quiet", "news"]
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run, received.append)
            await other.publish("news", 1)
            await wait_for(lambda: len(received) == 1)
            redis_server.kill()
            await wait_for(lambda: not watcher.up)
            redis_server.start()
            await wait_for(lambda: watcher.up, timeout=15)
            assert sorted(interrupted) == ["news", "quiet"] and watcher.resets == 1
            await wait_for(lambda: other.broker.up, timeout=15)
            after = await other.publish("news", 2)
            await wait_for(lambda: len(received) == 2)
            assert received[-1] == after
            nursery.cancel_scope.cancel()
