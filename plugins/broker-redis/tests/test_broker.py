"""The Redis broker against a real redis-server: two applications share
their channels; an outage is reported and survived; a broken subscription
catches up from the history in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
import trio
from wasmkernel_broker_redis import RedisBroker
from wasmkernel_channels import CHANNELS, BrokerUnavailable, Channels, Event, MemoryBroker
from wasmkernel_redis import REDIS_LINK, Backoff

from wasmkernel import Application, RegistryError
from wasmkernel.testing import RedisServer, app_from, running, wait_until

FAST = {"health_interval": 0.05, "min_backoff": 0.02, "max_backoff": 0.1, "connect_timeout": 5.0, "command_timeout": 5.0}


def make_app(url: str) -> Application:
    return app_from(
        {
            "redis": {"config": {**FAST, "url": url}},
            "broker-redis": {"config": {"min_backoff": 0.02, "max_backoff": 0.1, "publish_timeout": 5.0}},
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


def test_without_a_redis_url_the_in_process_broker_serves() -> None:
    app = make_app("")
    assert isinstance(hub(app).broker, MemoryBroker)


async def test_an_event_published_on_one_instance_reaches_the_other(redis_server: RedisServer) -> None:
    async with two_apps(redis_server.url) as (first, _, second, _):
        assert isinstance(hub(first).broker, RedisBroker)
        with hub(first).subscribe("news") as here, hub(second).subscribe("news") as there:
            published = await hub(first).publish("news", {"n": 1}, event="post")
            assert published.id.endswith("-1"), published
            with trio.fail_after(30):
                assert await there.next_event() == published
                assert await here.next_event() == published
            again = await hub(second).publish("news", {"n": 2})
            with trio.fail_after(30):
                assert await here.next_event() == again
        # Both instances hold the same history, so either can resume a client.
        assert [e.id for e in hub(first).history("news")] == [e.id for e in hub(second).history("news")] == [published.id, again.id]


async def test_redis_outage_refuses_publishes_keeps_subscribers_and_recovers(redis_server: RedisServer) -> None:
    async with two_apps(redis_server.url) as (first, one, second, _):
        with hub(second).subscribe("news") as subscriber:
            redis_server.kill()
            await wait_until(lambda: not hub(first).broker.up)
            with pytest.raises(BrokerUnavailable):
                await hub(first).publish("news", "lost?")
            ready = await one.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["channels"]["status"] == "down" and ready.json()["channels"]["broker"] == "redis"
            metrics = (await one.get("/metrics")).text
            assert 'wasmkernel_channels_broker_up{broker="redis"} 0.0' in metrics
            assert 'wasmkernel_channels_publish_failures_total{broker="redis"} 1.0' in metrics
            assert 'wasmkernel_broker_outages_total{broker="redis"} 1.0' in metrics

            redis_server.start()
            await wait_until(lambda: hub(first).broker.up and hub(second).broker.up)
            assert (await one.get("/readyz")).status_code == 200
            published = await hub(first).publish("news", "after the outage")
            with trio.fail_after(30):
                assert await subscriber.next_event() == published  # the same subscription, still open
            assert hub(second).subscriber_count == 1


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
            await wait_until(lambda: len(received) == 1)
            nursery.cancel_scope.cancel()  # the subscription breaks
        missed = [await other.publish("news", n) for n in (2, 3)]
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run, received.append)
            assert received == [first, *missed]  # caught up, nothing twice
            live = await other.publish("news", 4)
            await wait_until(lambda: len(received) == 4)
            assert received[-1] == live
            nursery.cancel_scope.cancel()


async def test_a_publish_failure_restarts_the_subscription_and_a_late_answer_is_no_outage(redis_server: RedisServer) -> None:
    app = make_app(redis_server.url)
    link = app.services.get(REDIS_LINK, needed_by="test")
    async with running(app):
        broker = RedisBroker(link, backoff=Backoff(0.02), timeout=1e-9)
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run, lambda event: None)
            # No answer in time: the publisher hears "may have been published"; the broker stays up.
            with pytest.raises(BrokerUnavailable, match="may have been published"):
                await broker.publish("news", "post", '"late"')
            assert broker.up and broker.outages == 0
            # A command that fails marks it down; resubscribing (the subscription itself never broke) brings it back.
            broker.timeout = 5.0
            broker._down(ConnectionError("the command connection broke"))
            broker._subscription.cancel()
            assert not broker.up
            await wait_until(lambda: broker.up)
            assert (await broker.publish("news", "post", '"after"')).data == '"after"'
            nursery.cancel_scope.cancel()


def test_reversed_backoff_bounds_stop_startup_naming_the_key() -> None:
    with pytest.raises(RegistryError, match=r"\[plugins.broker-redis\] config.min_backoff: must not exceed max_backoff \(1\)"):
        app_from({"channels": {}, "broker-redis": {"config": {"min_backoff": 2.0, "max_backoff": 1.0}}})
