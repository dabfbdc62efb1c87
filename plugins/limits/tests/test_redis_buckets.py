"""Token buckets in a real Redis: one budget for every client object that
shares the server, refill by Redis's clock, idle buckets expire."""

from __future__ import annotations

import coredis
import trio
from wasmkernel_limits.redis_store import RedisBuckets

from wasmkernel.testing import RedisServer


async def test_two_stores_share_one_budget(redis_server: RedisServer) -> None:
    first_client = coredis.Redis.from_url(redis_server.url)
    second_client = coredis.Redis.from_url(redis_server.url)
    async with first_client, second_client:
        stores = [RedisBuckets(first_client, rate=0.1, burst=5), RedisBuckets(second_client, rate=0.1, burst=5)]
        decisions = [await stores[i % 2].take("client:10.0.0.1") for i in range(12)]
        other = await stores[0].take("client:10.0.0.2")
        ttl = await first_client.pttl("wasmkernel:ratelimit:client:10.0.0.1")
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 7
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[-1].retry_after == 10 and decisions[-1].limit == 5
    assert other.allowed and other.remaining == 4
    # Full again after 5 tokens at 0.1/s = 50 s, plus a second of slack.
    assert 49_000 < ttl <= 51_000


async def test_concurrent_takes_never_overspend(redis_server: RedisServer) -> None:
    client = coredis.Redis.from_url(redis_server.url)
    allowed: list[bool] = []
    async with client:
        store = RedisBuckets(client, rate=0.01, burst=20, timeout=10.0)

        async def take() -> None:
            allowed.append((await store.take("k")).allowed)

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(take)
    assert allowed.count(True) == 20 and len(allowed) == 100


async def test_refills_at_rate(redis_server: RedisServer) -> None:
    """On Redis's clock (no mock clock): a token per 0.5 s is slow enough that
    takes made together on a busy machine still fall within one token."""
    client = coredis.Redis.from_url(redis_server.url)
    async with client:
        store = RedisBuckets(client, rate=2.0, burst=1)
        assert (await store.take("k")).allowed
        assert not (await store.take("k")).allowed
        await trio.sleep(1.0)  # 2 tokens' worth, capped at the burst of 1
        allowed: list[bool] = []

        async def take() -> None:
            allowed.append((await store.take("k")).allowed)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(take)
        assert sorted(allowed) == [False, False, True]
