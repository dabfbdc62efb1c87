"""RedisLink against a real redis-server: health, outages logged once,
recovery after a restart."""

from __future__ import annotations

from typing import Any

import coredis
import structlog
import trio
from wasmkernel_redis import Backoff
from wasmkernel_redis.link import RedisLink

from tests.redis_server import RedisServer


def link_to(server: RedisServer, **options: Any) -> RedisLink:
    client = coredis.Redis.from_url(server.url, connect_timeout=0.5, stream_timeout=0.5)
    return RedisLink(client, f"127.0.0.1:{server.port}", **options)


async def test_up_then_down_then_up_again(redis_server: RedisServer) -> None:
    link = link_to(redis_server, interval=0.05, backoff=Backoff(0.02, 0.1))
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            assert link.up and link.outages == 0 and link.ping_seconds < 0.5
            redis_server.kill()
            with trio.fail_after(3):
                while link.up:
                    await trio.sleep(0.01)
            link.mark_down(ConnectionError("seen by a consumer too"))
            await trio.sleep(0.3)  # several failed pings with backoff
            assert link.outages == 1 and "Error" in link.last_error
            redis_server.start()
            with trio.fail_after(3):
                while not link.up:
                    await trio.sleep(0.01)
            assert await link.client.ping() == b"PONG"
            nursery.cancel_scope.cancel()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [("redis.connected", "info"), ("redis.down", "warning"), ("redis.up", "info")], logs
    assert logs[2]["down_seconds"] > 0


async def test_down_at_startup_counts_as_an_outage(redis_server: RedisServer) -> None:
    redis_server.kill()
    link = link_to(redis_server, interval=0.05, backoff=Backoff(0.02, 0.05))
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        assert not link.up and link.outages == 1
        redis_server.start()
        with trio.fail_after(3):
            while not link.up:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert link.outages == 1
