"""RedisLink against a real redis-server: health, outages logged once,
recovery after a restart."""

from __future__ import annotations

from typing import Any

import coredis
import structlog
import trio
from wasmkernel_redis import Backoff
from wasmkernel_redis.link import RedisLink

from wasmkernel.testing import RedisServer, wait_until


class CountingLink(RedisLink):
    """Counts its health checks, so a test can wait for a few of them."""

    checks = 0

    async def check(self) -> bool:
        self.checks += 1
        return await super().check()


def link_to(server: RedisServer, **options: Any) -> CountingLink:
    client = coredis.Redis.from_url(server.url, connect_timeout=5.0, stream_timeout=5.0)
    return CountingLink(client, f"127.0.0.1:{server.port}", timeout=5.0, **options)


async def test_up_then_down_then_up_again(redis_server: RedisServer) -> None:
    link = link_to(redis_server, interval=0.05, backoff=Backoff(0.02, 0.1))
    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            assert link.up and link.outages == 0 and 0 < link.ping_seconds <= link.timeout
            redis_server.kill()
            await wait_until(lambda: not link.up)
            link.mark_down(ConnectionError("seen by a consumer too"))
            checks = link.checks
            await wait_until(lambda: link.checks >= checks + 3)  # several failed pings with backoff
            assert link.outages == 1 and "Error" in link.last_error
            redis_server.start()
            await wait_until(lambda: link.up)
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
        await wait_until(lambda: link.up)
        nursery.cancel_scope.cancel()
    assert link.outages == 1
