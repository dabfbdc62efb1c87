"""Channels and the in-process broker, without HTTP: fan-out, history and
resume, per-subscriber bounded queues and their overflow policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from wasmkernel_channels import BrokerUnavailable, Channels, Event, MemoryBroker, Subscription, event_data


async def next_data(subscription: Subscription) -> Any:
    event = await subscription.next_event(1)
    assert event is not None, "no event within 1 s"
    return event_data(event)


def epoch(channels: Channels) -> str:
    assert isinstance(channels.broker, MemoryBroker)
    return str(channels.broker.epoch)


@pytest.fixture
async def channels() -> AsyncIterator[Channels]:
    hub = Channels(MemoryBroker(), history=3, queue_size=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.broker.run, hub.deliver)
        yield hub
        nursery.cancel_scope.cancel()


async def test_publish_fans_out_to_every_subscriber_of_the_channel(channels: Channels) -> None:
    with channels.subscribe("news") as first, channels.subscribe("news") as second, channels.subscribe("other") as other:
        published = await channels.publish("news", {"text": "hi"}, event="post")
        assert published == Event("news", f"{epoch(channels)}-1", "post", '{"text":"hi"}')
        assert await first.next_event(1) == published
        assert await second.next_event(1) == published
        assert await other.next_event(0.05) is None
    assert channels.subscriber_count == 0
    assert channels.counters.published == 1 and channels.counters.delivered == 2


async def test_history_is_bounded_and_resume_replays_after_the_given_id(channels: Channels) -> None:
    for n in range(5):
        await channels.publish("news", n)
    ids = [event.id for event in channels.history("news")]
    assert ids == [f"{epoch(channels)}-{n}" for n in (3, 4, 5)]
    with channels.subscribe("news", last_event_id=ids[0]) as resumed:
        assert [await next_data(resumed) for _ in range(2)] == [3, 4]
        await channels.publish("news", 5)
        assert (await resumed.next_event(1)) == Event("news", f"{epoch(channels)}-6", "message", "5")
    # An id the history no longer holds (too old, or from another epoch) replays all of it.
    for unknown in (f"{epoch(channels)}-1", "00000000-5"):
        with channels.subscribe("news", last_event_id=unknown) as old:
            assert [event_data(e) for e in old.replay] == [3, 4, 5]
    with channels.subscribe("news") as fresh:
        assert fresh.replay == []


async def test_a_full_queue_closes_only_that_subscriber(channels: Channels) -> None:
    with channels.subscribe("news") as slow, channels.subscribe("news") as fast:
        for n in range(6):
            await channels.publish("news", n)
            assert await next_data(fast) == n
        assert slow.overflowed
        # The slow one gets what was queued before the overflow, then ends.
        received = [event_data(event) async for event in slow]
        assert received == [0, 1, 2, 3]
        assert channels.counters.overflow_closes == 1
        await channels.publish("news", "after")
        assert await next_data(fast) == "after"
        assert channels.subscriber_count == 1


async def test_drop_policy_drops_events_for_the_slow_subscriber_only() -> None:
    hub = Channels(MemoryBroker(), queue_size=2, overflow="drop")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.broker.run, hub.deliver)
        with hub.subscribe("c") as slow:
            for n in range(5):
                await hub.publish("c", n)
            assert not slow.overflowed and slow.dropped == 3
            assert [await next_data(slow) for _ in range(2)] == [0, 1]
            await hub.publish("c", 5)
            assert await next_data(slow) == 5
        assert hub.counters.dropped == 3
        nursery.cancel_scope.cancel()


async def test_invalid_names_and_a_stopped_broker_are_refused(channels: Channels) -> None:
    with pytest.raises(ValueError, match="invalid channel name"):
        await channels.publish("bad name", 1)
    with pytest.raises(ValueError, match="invalid event type"):
        await channels.publish("ok", 1, event="bad\nline")
    with pytest.raises(ValueError, match=r"NaN|Out of range"):
        await channels.publish("ok", float("nan"))
    stopped = Channels(MemoryBroker())
    with pytest.raises(BrokerUnavailable):
        await stopped.publish("ok", 1)
    assert stopped.counters.publish_failures == 1


async def test_max_channels_bounds_the_channels_kept() -> None:
    hub = Channels(MemoryBroker(), max_channels=2)
    hub.subscribe("a").close()
    hub.subscribe("b").close()
    with pytest.raises(ValueError, match="too many channels"):
        hub.subscribe("c")
    assert hub.names() == ["a", "b"]
